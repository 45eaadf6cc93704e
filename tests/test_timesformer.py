"""TimeSformer against independent references: plain attention, explicit loops, and defining invariances."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from models.attention import Attention, reference_attention
from models.recognition.timesformer import ATTENTION_TYPES, TimeSformer


def tiny(attention_type: str = "divided_space_time", **kwargs) -> TimeSformer:
    config = dict(img_size=32, patch_size=8, in_chans=3, num_classes=5, num_frames=4, embed_dim=32, depth=2,
                  num_heads=4, attention_type=attention_type, drop_path_rate=0.0)
    config.update(kwargs)
    return TimeSformer(**config)


def randomize_zero_inits(model: TimeSformer) -> None:
    """Give time_embed and temporal_fc non-zero values so that the temporal path matters."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        if hasattr(model, "time_embed"):
            model.time_embed.copy_(torch.randn(model.time_embed.shape, generator=generator))
        for block in model.blocks:
            if hasattr(block, "temporal_fc"):
                block.temporal_fc.weight.copy_(0.2 * torch.randn(block.temporal_fc.weight.shape, generator=generator))


def test_sdpa_matches_reference_attention():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 4, 17, 8, dtype=torch.float64) for _ in range(3))
    expected = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1) @ v  # closed form
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(reference_attention(q, k, v), expected)
    torch.testing.assert_close(fused, expected)


def test_attention_module_fused_and_reference_paths_agree():
    torch.manual_seed(0)
    fused = Attention(32, num_heads=4, fused_attn=True)
    plain = Attention(32, num_heads=4, fused_attn=False)
    plain.load_state_dict(fused.state_dict())
    x = torch.randn(5, 11, 32)
    torch.testing.assert_close(fused(x), plain(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_model_fused_and_reference_paths_agree(attention_type):
    torch.manual_seed(0)
    fused = tiny(attention_type).eval()
    randomize_zero_inits(fused)
    plain = tiny(attention_type, fused_attn=False).eval()
    plain.load_state_dict(fused.state_dict())
    video = torch.randn(2, 3, 4, 32, 32)
    torch.testing.assert_close(fused(video), plain(video), atol=1e-5, rtol=1e-4)


def test_divided_block_matches_explicit_loop():
    """The divided block, recomputed with loops over patch positions and frames (official semantics)."""
    torch.manual_seed(0)
    model = tiny("divided_space_time").eval()
    randomize_zero_inits(model)
    block = model.blocks[0]
    b, t, n, d = 2, 4, 6, 32
    cls, x = torch.randn(b, d), torch.randn(b, t, n, d)

    with torch.no_grad():
        out_cls, out_x = block(cls, x)
        ref_x = x.clone()
        for i in range(b):
            for j in range(n):  # temporal attention over the t tokens of one patch position, CLS left out
                seq = x[i, :, j][None]  # (1 t d)
                ref_x[i, :, j] += block.temporal_fc(block.temporal_attn(block.temporal_norm1(seq)))[0]
        ref_cls = cls.clone()
        spatial_x = ref_x.clone()
        for i in range(b):
            cls_outs = []
            for f in range(t):  # spatial attention within one frame, with the CLS token repeated per frame
                seq = torch.cat([cls[i][None], ref_x[i, f]])[None]  # (1 1+n d)
                res = block.attn(block.norm1(seq))[0]
                cls_outs.append(res[0])
                spatial_x[i, f] += res[1:]
            ref_cls[i] += torch.stack(cls_outs).mean(0)  # the t CLS outputs are averaged
        ref_cls = ref_cls + block.mlp(block.norm2(ref_cls))
        ref_x = spatial_x + block.mlp(block.norm2(spatial_x))

    torch.testing.assert_close(out_cls, ref_cls, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_x, ref_x, atol=1e-5, rtol=1e-5)


def test_joint_block_is_full_attention_over_all_tokens():
    torch.manual_seed(0)
    block = tiny("joint_space_time").eval().blocks[0]
    cls, x = torch.randn(2, 32), torch.randn(2, 3, 4, 32)
    with torch.no_grad():
        out_cls, out_x = block(cls, x)
        seq = torch.cat([cls[:, None], x.reshape(2, 12, 32)], dim=1)  # time-major flattening
        seq = seq + block.attn(block.norm1(seq))
        seq = seq + block.mlp(block.norm2(seq))
    torch.testing.assert_close(out_cls, seq[:, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out_x, seq[:, 1:].reshape(2, 3, 4, 32), atol=1e-5, rtol=1e-5)


def test_space_only_ignores_frame_order_and_temporal_types_do_not():
    torch.manual_seed(0)
    video = torch.randn(2, 3, 4, 32, 32)
    perm = torch.tensor([2, 0, 3, 1])
    for attention_type in ATTENTION_TYPES:
        model = tiny(attention_type).eval()
        randomize_zero_inits(model)
        with torch.no_grad():
            same = torch.allclose(model(video), model(video[:, :, perm]), atol=1e-5)
        assert same == (attention_type == "space_only"), attention_type


def test_space_only_equals_mean_of_per_frame_vit_cls():
    """space_only: a ViT per frame, CLS averaged over frames before the final norm."""
    torch.manual_seed(0)
    model = tiny("space_only").eval()
    video = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        per_frame = []
        for f in range(4):
            single = tiny("space_only").eval()
            single.load_state_dict(model.state_dict())
            x, _ = single.patch_embed(video[:, :, f:f + 1])
            cls = single.cls_token[:, 0].expand(2, -1) + single.pos_embed[:, 0]
            x = x + single.pos_embed[:, None, 1:]
            for block in single.blocks:
                cls, x = block(cls, x)
            per_frame.append(cls)
        expected = model.head(model.norm(torch.stack(per_frame).mean(0)))
        torch.testing.assert_close(model(video), expected, atol=1e-5, rtol=1e-5)


def test_official_initialisation_zeroes_temporal_path():
    model = tiny("divided_space_time")
    assert torch.count_nonzero(model.time_embed) == 0
    for block in model.blocks:
        assert torch.count_nonzero(block.temporal_fc.weight) == 0
        assert torch.count_nonzero(block.temporal_fc.bias) == 0
    # At initialisation the divided model is exactly a per-frame image model: frame order cannot matter.
    video = torch.randn(1, 3, 4, 32, 32)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(video), model(video.flip(2)), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention_type", ATTENTION_TYPES)
def test_every_parameter_gets_a_gradient(attention_type):
    torch.manual_seed(0)
    model = tiny(attention_type)
    randomize_zero_inits(model)
    model(torch.randn(2, 3, 4, 32, 32)).square().sum().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
        assert param.grad.abs().sum() > 0, f"{name} has an all-zero gradient"


def test_eval_is_deterministic_and_stochastic_depth_is_gated_on_training():
    torch.manual_seed(0)
    model = tiny("divided_space_time", drop_path_rate=0.5, drop_rate=0.3, attn_drop_rate=0.3)
    randomize_zero_inits(model)
    video = torch.randn(2, 3, 4, 32, 32)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(video), model(video), rtol=0, atol=0)
        model.train()
        assert not torch.allclose(model(video), model(video))


def test_time_embed_is_resampled_nearest_and_pos_embed_on_its_2d_grid():
    model = tiny("divided_space_time", num_frames=4)
    with torch.no_grad():
        model.time_embed.copy_(torch.arange(4.0)[None, :, None].expand(1, 4, 32))
        # pos_embed varying only along x (columns) must stay column-only after 2D resampling
        grid = torch.arange(4.0)[None, :].expand(4, 4).reshape(1, 16, 1).expand(1, 16, 32)
        model.pos_embed[:, 1:].copy_(grid)
    resampled_time = model._time_embed(8)[0, :, 0]
    torch.testing.assert_close(resampled_time, torch.tensor([0.0, 0, 1, 1, 2, 2, 3, 3]))
    pos = model._pos_embed((8, 8))[0, 1:, 0].reshape(8, 8)
    torch.testing.assert_close(pos, pos[:1].expand(8, 8))  # every row identical
    assert pos[0, -1] > pos[0, 0]
    # and the model runs at another frame count and image size
    assert model(torch.randn(1, 3, 8, 64, 48)).shape == (1, 5)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(attention_type="divided"), "attention_type"),
        (dict(img_size=30), "img_size=30"),
        (dict(num_frames=0), "num_frames=0"),
        (dict(embed_dim=30), "embed_dim=30"),
    ],
)
def test_bad_config_values_raise_value_error_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        tiny(**kwargs)


def test_bad_input_raises_value_error():
    model = tiny()
    with pytest.raises(ValueError, match="channels"):
        model(torch.randn(1, 1, 4, 32, 32))
    with pytest.raises(ValueError, match="patch_size"):
        model(torch.randn(1, 3, 4, 30, 32))


def test_state_dict_uses_official_timesformer_names():
    keys = set(tiny("divided_space_time").state_dict())
    for name in ("cls_token", "pos_embed", "time_embed", "patch_embed.proj.weight", "norm.weight", "head.weight",
                 "blocks.0.norm1.weight", "blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight",
                 "blocks.0.temporal_norm1.weight", "blocks.0.temporal_attn.qkv.weight",
                 "blocks.0.temporal_attn.proj.weight", "blocks.0.temporal_fc.weight", "blocks.0.norm2.weight",
                 "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.weight"):
        assert name in keys, name
    assert not any(isinstance(m, nn.MultiheadAttention) for m in tiny().modules())


def test_tubelet_embedding_is_a_linear_map_of_each_tubelet():
    model = tiny(tubelet_size=2)
    video = torch.randn(2, 3, 4, 32, 32, generator=torch.Generator().manual_seed(3))
    tokens, grid = model.patch_embed(video)  # (b t' n d)
    assert tokens.shape == (2, 2, 16, 32) and grid == (4, 4)
    weight, bias = model.patch_embed.proj.weight, model.patch_embed.proj.bias  # (d c k p p), (d,)
    tubelet = video[1, :, 2:4, 8:16, 16:24]  # clip 1, second tubelet (frames 2-3), patch row 1, column 2
    expected = torch.einsum("dckpq,ckpq->d", weight, tubelet) + bias
    torch.testing.assert_close(tokens[1, 1, 1 * 4 + 2], expected, rtol=1e-5, atol=1e-5)
    assert model.time_embed.shape == (1, 2, 32)  # one entry per tubelet


def test_space_only_sees_frame_order_inside_a_tubelet():
    """Why the order-blind ablation keeps tubelet_size=1: a 2-frame tubelet already tells forward from backward."""
    torch.manual_seed(0)
    video = torch.randn(2, 3, 4, 32, 32)
    model = tiny("space_only", tubelet_size=2).eval()
    with torch.no_grad():
        swapped = video[:, :, [1, 0, 3, 2]]  # the same set of frames, each tubelet's two frames swapped
        assert not torch.allclose(model(video), model(swapped), atol=1e-5)
        assert torch.allclose(model(video), model(video[:, :, [2, 3, 0, 1]]), atol=1e-5)  # whole tubelets permute


def test_tubelet_size_must_divide_the_frames():
    with pytest.raises(ValueError, match="num_frames=4 is not divisible by tubelet_size=3"):
        tiny(tubelet_size=3)
    with pytest.raises(ValueError, match="num_frames=3 is not divisible by tubelet_size=2"):
        tiny(tubelet_size=2)(torch.randn(1, 3, 3, 32, 32))
