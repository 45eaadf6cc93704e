"""Attention that reads frame 0: FirstFrameAttention (spatial; Tune-A-Video, Text2Video-Zero) and
FirstFrameTemporalAttention (temporal; ConsistI2V), each against a per-query loop, and in the DiT."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

from models.attention import Attention, FirstFrameAttention, FirstFrameTemporalAttention, apply_rotary, rotary_tables
from models.diffusion.dit import VideoDiT, image_to_video_state_dict


ARGS = dict(input_size=8, in_channels=4, patch_size=2, embed_dim=32, depth=2, num_heads=4, num_classes=10)


def trained_image_model() -> VideoDiT:
    """A one-frame image DiT whose weights are moved off their (zero-output) initialisation."""
    torch.manual_seed(0)
    image = VideoDiT(num_frames=1, layout="space_only", temporal_pos_embed="none", **ARGS)
    with torch.no_grad():
        for param in image.parameters():
            param.add_(0.1 * torch.randn_like(param))
    return image


def loop_reference(attn: FirstFrameAttention, x: torch.Tensor) -> torch.Tensor:
    """The same attention one frame and one head at a time: keys are [frame f's tokens; frame 0's tokens]."""
    b, t, n, d = x.shape
    nh = attn.num_heads
    dh = d // nh
    q, k, v = attn.qkv(x).split(d, dim=-1)  # each (b t n d)
    out = torch.zeros(b, t, n, d, dtype=x.dtype)
    for f in range(t):
        keys, values = torch.cat([k[:, f], k[:, 0]], dim=1), torch.cat([v[:, f], v[:, 0]], dim=1)  # (b 2n d)
        for h in range(nh):
            heads = slice(h * dh, (h + 1) * dh)
            scores = q[:, f, :, heads] @ keys[..., heads].transpose(1, 2) / dh ** 0.5  # (b n 2n)
            out[:, f, :, heads] = scores.softmax(-1) @ values[..., heads]
    return attn.proj(out)


@pytest.mark.parametrize("fused", [True, False])
def test_matches_the_loop_reference(fused):
    torch.manual_seed(0)
    attn = FirstFrameAttention(16, num_heads=2, fused_attn=fused).double()
    x = torch.randn(2, 3, 5, 16, dtype=torch.float64)
    assert torch.allclose(attn(x), loop_reference(attn, x), atol=1e-10)


def test_frame_zero_is_plain_spatial_attention_and_later_frames_read_it():
    torch.manual_seed(0)
    first, plain = FirstFrameAttention(16, num_heads=4), Attention(16, num_heads=4)
    plain.load_state_dict(first.state_dict())  # same parameters, same keys
    x = torch.randn(2, 3, 6, 16)
    per_frame = rearrange(plain(rearrange(x, "b t n d -> (b t) n d")), "(b t) n d -> b t n d", b=2)
    out = first(x)
    assert torch.allclose(out[:, 0], per_frame[:, 0], atol=1e-6)  # frame 0 reads itself twice: unchanged
    assert not torch.allclose(out[:, 1:], per_frame[:, 1:], atol=1e-3)  # later frames also read frame 0
    assert torch.allclose(first(x[:, :1]), per_frame[:, :1], atol=1e-6)  # one frame: plain attention
    changed = x.clone()
    changed[:, 1] += 1.0  # frame 1 is read by frame 1 only
    moved = first(changed)
    assert torch.allclose(moved[:, [0, 2]], out[:, [0, 2]], atol=1e-6)
    assert not torch.allclose(moved[:, 1], out[:, 1], atol=1e-3)
    changed = x.clone()
    changed[:, 0] += 1.0  # frame 0 is read by every frame
    assert not torch.allclose(first(changed)[:, 2], out[:, 2], atol=1e-3)


def test_an_image_model_loads_and_frame_zero_stays_the_image_model():
    image = trained_image_model()
    video = VideoDiT(num_frames=4, layout="divided", temporal_pos_embed="none", first_frame_attention="spatial", **ARGS)
    plain = VideoDiT(num_frames=4, layout="divided", temporal_pos_embed="none", **ARGS)
    assert video.state_dict().keys() == plain.state_dict().keys()
    video.load_state_dict(image_to_video_state_dict(image.state_dict(), video), strict=True)
    x, timesteps, labels = torch.randn(2, 4, 4, 8, 8), torch.tensor([10, 900]), torch.tensor([3, 7])
    out = video(x, timesteps, labels)
    # temporal attentions start at zero, so frame 0 (which reads only itself) is the image model's frame 0
    assert torch.allclose(out[:, :, 0], image(x[:, :, :1], timesteps, labels)[:, :, 0], atol=1e-5)
    other = x.clone()
    other[:, :, 0] += 1.0  # but frame 2 now depends on frame 0 through the spatial attention alone
    assert not torch.allclose(video(other, timesteps, labels)[:, :, 2], out[:, :, 2], atol=1e-4)
    space_only = VideoDiT(num_frames=4, layout="space_only", temporal_pos_embed="none", first_frame_attention="spatial",
                          **ARGS)
    space_only.load_state_dict(image_to_video_state_dict(image.state_dict(), space_only), strict=True)
    assert not torch.allclose(space_only(other, timesteps, labels)[:, :, 2], space_only(x, timesteps, labels)[:, :, 2])
    for layout in ("joint", "split_heads"):
        with pytest.raises(ValueError, match="first_frame_attention=.spatial. needs spatial attentions"):
            VideoDiT(num_frames=4, layout=layout, first_frame_attention="spatial", **ARGS)


def temporal_loop_reference(attn: FirstFrameTemporalAttention, x: torch.Tensor) -> torch.Tensor:
    """The same attention one patch position and one frame at a time: keys are [patch p of frames 0..t-1; all of
    frame 0's patches], rotary positions by frame index (frame 0's patches at 0)."""
    b, t, n, d = x.shape
    nh = attn.num_heads
    dh = d // nh
    q, k, v = (z.reshape(b, t, n, nh, dh) for z in attn.qkv(x).split(d, dim=-1))  # (b t n nh dh)
    if attn.rope:
        cos, sin = rotary_tables(t, dh)  # (t dh)
        q = torch.stack([apply_rotary(q[:, f], cos[f], sin[f]) for f in range(t)], dim=1)
        k = torch.stack([apply_rotary(k[:, f], cos[f], sin[f]) for f in range(t)], dim=1)
    out = torch.zeros(b, t, n, nh, dh, dtype=x.dtype)
    for p in range(n):
        keys, values = torch.cat([k[:, :, p], k[:, 0]], dim=1), torch.cat([v[:, :, p], v[:, 0]], dim=1)  # (b t+n nh dh)
        for f in range(t):
            scores = torch.einsum("bhd,bmhd->bhm", q[:, f, p], keys) / dh ** 0.5
            out[:, f, p] = torch.einsum("bhm,bmhd->bhd", scores.softmax(-1), values)
    return attn.proj(out.reshape(b, t, n, d))


@pytest.mark.parametrize("rope,fused", [(False, True), (True, True), (True, False)])
def test_temporal_matches_the_loop_reference(rope, fused):
    torch.manual_seed(0)
    attn = FirstFrameTemporalAttention(16, num_heads=2, rope=rope, fused_attn=fused).double()
    x = torch.randn(2, 3, 5, 16, dtype=torch.float64)
    torch.set_default_dtype(torch.float64)
    try:
        expected = temporal_loop_reference(attn, x)
    finally:
        torch.set_default_dtype(torch.float32)
    assert torch.allclose(attn(x), expected, atol=1e-10)


def test_temporal_reads_all_of_frame_zero_and_only_its_own_patch_elsewhere():
    torch.manual_seed(0)
    attn = FirstFrameTemporalAttention(16, num_heads=2)
    x = torch.randn(1, 3, 6, 16)
    out = attn(x)
    for frame, patch, reaches in ((0, 4, True), (1, 4, False), (1, 2, True), (2, 2, True)):
        changed = x.clone()
        changed[0, frame, patch] += 1.0  # does the query at (frame 2, patch 2) read it?
        assert (not torch.allclose(attn(changed)[0, 2, 2], out[0, 2, 2], atol=1e-6)) == reaches, (frame, patch)


def test_temporal_keeps_the_image_models_step0_identity_and_bad_configs_raise():
    image = trained_image_model()
    video = VideoDiT(num_frames=4, layout="divided", temporal_pos_embed="none", temporal_rope=True,
                     first_frame_attention="temporal", **ARGS)
    video.load_state_dict(image_to_video_state_dict(image.state_dict(), video), strict=True)  # same keys
    x, timesteps, labels = torch.randn(2, 4, 4, 8, 8), torch.tensor([10, 900]), torch.tensor([3, 7])
    per_frame = torch.cat([image(x[:, :, f : f + 1], timesteps, labels) for f in range(4)], dim=2)
    assert torch.allclose(video(x, timesteps, labels), per_frame, atol=1e-6)  # proj at zero: the image model
    with pytest.raises(ValueError, match="first_frame_attention='temporal' needs separate temporal attentions"):
        VideoDiT(num_frames=4, layout="space_only", first_frame_attention="temporal", **ARGS)
    with pytest.raises(ValueError, match="first_frame_attention='temporal' needs separate temporal attentions"):
        VideoDiT(num_frames=4, layout="divided", temporal_window=3, first_frame_attention="temporal", **ARGS)
    with pytest.raises(ValueError, match="first_frame_attention='both' is not one of"):
        VideoDiT(num_frames=4, layout="divided", first_frame_attention="both", **ARGS)


def test_in_the_dit_a_temporal_block_reads_frame_zero_where_plain_temporal_attention_cannot():
    torch.manual_seed(0)
    models = {}
    for mode in ("temporal", "none"):
        model = VideoDiT(num_frames=4, layout="interleaved", temporal_pos_embed="none", first_frame_attention=mode,
                         **ARGS)
        model.blocks = model.blocks[1:2]  # the temporal block alone: no spatial hop inside the frame
        models[mode] = model
    with torch.no_grad():
        for param in models["temporal"].parameters():
            param.normal_(std=0.3)
    models["none"].load_state_dict(models["temporal"].state_dict())  # same weights, plain temporal attention
    assert isinstance(models["temporal"].blocks[0].temporal_attn, FirstFrameTemporalAttention)
    x, timesteps = torch.randn(2, 4, 4, 8, 8), torch.tensor([10, 900])
    other = x.clone()
    other[:, :, 0, 6:, 6:] += 1.0  # frame 0's bottom-right patch only
    for mode, reaches in (("temporal", True), ("none", False)):
        before, after = models[mode](x, timesteps), models[mode](other, timesteps)
        changed = not torch.allclose(after[:, :, 2, :2, :2], before[:, :, 2, :2, :2], atol=1e-6)  # frame 2, top-left
        assert changed == reaches, mode
