"""WindowedTemporalAttention: temporal attention over a patch neighbourhood, against a per-query loop."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

from models.attention import Attention, WindowedTemporalAttention, apply_rotary, rotary_tables
from models.diffusion.dit import VideoDiT, image_to_video_state_dict


def loop_reference(attn: WindowedTemporalAttention, x: torch.Tensor) -> torch.Tensor:
    """The same attention written one query position at a time: keys are gathered by explicit bounds checks."""
    b, t, gh, gw, d = x.shape
    nh, r = attn.num_heads, attn.window // 2
    q, k, v = attn.qkv(x).split(d, dim=-1)  # each (b t gh gw d)
    q, k, v = (z.reshape(b, t, gh, gw, nh, d // nh) for z in (q, k, v))  # (b t gh gw nh dh)
    if attn.rope:
        cos, sin = rotary_tables(t, d // nh)  # (t dh)
        q = torch.stack([apply_rotary(q[:, f], cos[f], sin[f]) for f in range(t)], dim=1)
        k = torch.stack([apply_rotary(k[:, f], cos[f], sin[f]) for f in range(t)], dim=1)
    out = torch.zeros(b, t, gh, gw, nh, d // nh)
    for i in range(gh):
        for j in range(gw):
            keys, values = [], []
            for f in range(t):
                for di in range(-r, r + 1):
                    for dj in range(-r, r + 1):
                        if 0 <= i + di < gh and 0 <= j + dj < gw:
                            keys.append(k[:, f, i + di, j + dj])
                            values.append(v[:, f, i + di, j + dj])
            keys, values = torch.stack(keys, dim=2), torch.stack(values, dim=2)  # (b nh m dh)
            for f in range(t):
                scores = torch.einsum("bhd,bhmd->bhm", q[:, f, i, j], keys) / (d // nh) ** 0.5
                out[:, f, i, j] = torch.einsum("bhm,bhmd->bhd", scores.softmax(-1), values)
    return attn.proj(out.reshape(b, t, gh, gw, d))


@pytest.mark.parametrize("window,rope,fused", [(3, False, True), (3, True, True), (5, False, False), (3, True, False)])
def test_matches_the_loop_reference(window, rope, fused):
    torch.manual_seed(0)
    attn = WindowedTemporalAttention(16, num_heads=2, window=window, rope=rope, fused_attn=fused).double()
    x = torch.randn(2, 3, 4, 5, 16, dtype=torch.float64)  # non-square grid: rows and columns not swapped
    torch.set_default_dtype(torch.float64)
    try:
        expected = loop_reference(attn, x)
    finally:
        torch.set_default_dtype(torch.float32)
    assert torch.allclose(attn(x), expected, atol=1e-10)


def test_window_one_is_plain_temporal_attention():
    torch.manual_seed(0)
    windowed, plain = WindowedTemporalAttention(16, num_heads=4, window=1), Attention(16, num_heads=4)
    plain.load_state_dict(windowed.state_dict())
    x = torch.randn(2, 3, 4, 4, 16)
    expected = rearrange(plain(rearrange(x, "b t gh gw d -> (b gh gw) t d")), "(b gh gw) t d -> b t gh gw d", b=2, gh=4)
    assert torch.allclose(windowed(x), expected, atol=1e-6)


def test_reach_is_the_window_and_nothing_beyond():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 5, 5, 16)
    for window, reach in ((1, 0), (3, 1), (5, 2)):
        attn = WindowedTemporalAttention(16, num_heads=2, window=window)
        for offset in range(3):
            moved = x.clone()
            moved[0, 0, 2 + offset, 2 + offset] += 1.0  # frame 0, `offset` patches down and right of (2, 2)
            changed = not torch.allclose(attn(moved)[0, 1, 2, 2], attn(x)[0, 1, 2, 2])
            assert changed == (offset <= reach), (window, offset)


def test_step0_identity_from_an_image_model_and_bad_windows():
    torch.manual_seed(0)
    args = dict(input_size=8, in_channels=4, patch_size=2, embed_dim=32, depth=2, num_heads=4, num_classes=10)
    image = VideoDiT(num_frames=1, layout="space_only", temporal_pos_embed="none", **args)
    with torch.no_grad():
        for param in image.parameters():
            param.add_(0.1 * torch.randn_like(param))
    video = VideoDiT(num_frames=4, layout="divided", temporal_pos_embed="none", temporal_window=3, **args)
    video.load_state_dict(image_to_video_state_dict(image.state_dict(), video), strict=True)  # same keys
    x, timesteps, labels = torch.randn(2, 4, 4, 8, 8), torch.tensor([10, 900]), torch.tensor([3, 7])
    per_frame = torch.cat([image(x[:, :, k : k + 1], timesteps, labels) for k in range(4)], dim=2)
    assert torch.allclose(video(x, timesteps, labels), per_frame, atol=1e-6)
    with torch.no_grad():  # once trained, a frame's output depends on the other frames
        for block in video.blocks:
            block.temporal_attn.proj.weight.normal_(std=0.3)
    other = x.clone()
    other[:, :, 0] += 1.0
    assert not torch.allclose(video(x, timesteps, labels)[:, :, 1], video(other, timesteps, labels)[:, :, 1])
    with pytest.raises(ValueError, match="temporal_window=2 must be a positive odd"):
        VideoDiT(num_frames=4, layout="divided", temporal_window=2, **args)
    with pytest.raises(ValueError, match="temporal_window=3 needs separate temporal attentions"):
        VideoDiT(num_frames=4, layout="space_only", temporal_window=3, **args)


def test_tubelets_and_interleaved_layouts_run_windowed():
    torch.manual_seed(0)
    args = dict(input_size=8, in_channels=4, patch_size=2, embed_dim=32, depth=2, num_heads=4, num_classes=10)
    x, timesteps = torch.randn(2, 4, 4, 8, 8), torch.tensor([10, 900])
    for kwargs in (dict(layout="divided", tubelet_size=2), dict(layout="interleaved"), dict(layout="late_fusion")):
        windowed = VideoDiT(num_frames=4, temporal_window=3, **kwargs, **args)
        plain = VideoDiT(num_frames=4, **kwargs, **args)
        with torch.no_grad():  # every path on, temporal attentions included
            for param in windowed.parameters():
                param.normal_(std=0.2)
        plain.load_state_dict(windowed.state_dict())
        # same weights: the window changes the output (it reads more keys) but not the shape
        out_windowed, out_plain = windowed(x, timesteps), plain(x, timesteps)
        assert out_windowed.shape == x.shape
        assert not torch.allclose(out_windowed, out_plain, atol=1e-5), kwargs
