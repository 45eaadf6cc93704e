"""VideoDiT: adaLN-Zero identity at init, where each layout mixes frames, label conditioning, fused/reference parity."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers.models.embeddings import (
    get_1d_sincos_pos_embed_from_grid,
    get_2d_sincos_pos_embed,
    get_timestep_embedding,
)

from models.attention import SplitHeadAttention
from models.diffusion.dit import LAYOUTS, VideoDiT
from models.diffusion.dit_blocks import DiTBlock, TimestepEmbedder, sincos_1d, sincos_2d

TEMPORAL_LAYOUTS = ("interleaved", "late_fusion", "divided", "split_heads")  # layouts with a separate temporal path
MIXING_LAYOUTS = (*TEMPORAL_LAYOUTS, "joint")
B, C, T, S = 2, 3, 4, 8  # batch, latent channels, frames, latent side


def tiny(layout: str, **kwargs) -> VideoDiT:
    kwargs = {"embed_dim": 32, "depth": 2, "num_heads": 4, **kwargs}
    return VideoDiT(input_size=S, num_frames=T, in_channels=C, patch_size=2, layout=layout, **kwargs).eval()


def inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(B, C, T, S, S, generator=gen), torch.tensor([3, 700])


@torch.no_grad()
def randomise_conditioning_(model: VideoDiT, std: float = 0.2) -> None:
    """Give the adaLN-Zero modulations and the zero final layer small random values (temporal proj untouched)."""
    layers = [block.adaLN_modulation[-1] for block in model.blocks]
    layers += [model.final_layer.adaLN_modulation[-1], model.final_layer.linear]
    for layer in layers:
        layer.weight.normal_(std=std)
        layer.bias.normal_(std=std)


@torch.no_grad()
def randomise_temporal_(model: VideoDiT, std: float = 0.2) -> None:
    """Give the zero-initialised temporal output projections random values."""
    for block in model.blocks:
        if hasattr(block, "temporal_attn"):
            block.temporal_attn.proj.weight.normal_(std=std)
            block.temporal_attn.proj.bias.normal_(std=std)
        if isinstance(getattr(block, "attn", None), SplitHeadAttention):
            block.attn.proj.weight[:, block.attn.proj.in_features // 2 :].normal_(std=std)


@torch.no_grad()
def randomise_all_(model: VideoDiT, std: float = 0.1) -> None:
    for param in model.parameters():
        param.normal_(std=std)


def change_frame(x: torch.Tensor, frame: int) -> torch.Tensor:
    x = x.clone()
    x[:, :, frame] += torch.randn(x[:, :, frame].shape, generator=torch.Generator().manual_seed(1))
    return x


@pytest.mark.parametrize("layout", LAYOUTS)
def test_init_blocks_are_identity_and_output_is_zero(layout):
    model = tiny(layout, num_classes=3)
    tokens, cond = torch.randn(B, T, 16, 32), torch.randn(B, 32)
    for block in model.blocks:
        assert torch.equal(block(tokens, cond), tokens)
    x, timesteps = inputs()
    out = model(x, timesteps, torch.tensor([0, 3]))
    assert out.shape == x.shape and out.dtype == x.dtype
    assert torch.equal(out, torch.zeros_like(x))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_permuting_frames_permutes_output(layout):
    """Without a temporal position embedding the model is equivariant to frame order."""
    model = tiny(layout, temporal_pos_embed="none")
    randomise_conditioning_(model)
    x, timesteps = inputs()
    perm = torch.tensor([2, 0, 3, 1])
    out = model(x, timesteps)
    torch.testing.assert_close(model(x[:, :, perm], timesteps), out[:, :, perm], atol=1e-5, rtol=1e-5)
    assert out.abs().mean() > 1e-2


@pytest.mark.parametrize("layout", MIXING_LAYOUTS)
def test_frame_order_comes_only_from_the_temporal_embedding(layout):
    """With mixing switched on, equivariance holds without a temporal embedding and breaks with one."""
    x, timesteps = inputs()
    perm = torch.tensor([2, 0, 3, 1])
    for pos, equivariant in (("none", True), ("sincos", False)):
        model = tiny(layout, temporal_pos_embed=pos)
        randomise_conditioning_(model)
        randomise_temporal_(model)
        gap = (model(x[:, :, perm], timesteps) - model(x, timesteps)[:, :, perm]).abs().max()
        assert (gap < 1e-5) == equivariant, (pos, gap)


@pytest.mark.parametrize("layout", (*TEMPORAL_LAYOUTS, "space_only"))
def test_zero_temporal_or_space_only_keeps_frames_independent(layout):
    model = tiny(layout)
    if layout == "space_only":
        randomise_all_(model)
    else:
        randomise_conditioning_(model)  # zero-initialised temporal proj kept: the model is an image model
    x, timesteps = inputs()
    out, out_changed = model(x, timesteps), model(change_frame(x, 1), timesteps)
    others = [0, 2, 3]
    torch.testing.assert_close(out_changed[:, :, others], out[:, :, others], atol=1e-6, rtol=0)
    assert (out_changed[:, :, 1] - out[:, :, 1]).abs().max() > 1e-3


@pytest.mark.parametrize("layout", MIXING_LAYOUTS)
def test_temporal_layouts_mix_frames_once_trained(layout):
    model = tiny(layout)
    randomise_conditioning_(model)
    randomise_temporal_(model)
    x, timesteps = inputs()
    gap = (model(change_frame(x, 1), timesteps) - model(x, timesteps)).abs()
    for frame in (0, 2, 3):
        assert gap[:, :, frame].max() > 1e-4, frame


@pytest.mark.parametrize(("mixers", "pattern"), [
    (("space",), "frame"), (("time",), "position"), (("split_heads",), "frame|position"),
    (("joint",), "all"), (("space", "time"), "all"),
])
def test_block_attention_reaches_the_right_tokens(mixers, pattern):
    """Which input tokens one output token (frame 1, patch 5) depends on, found by autograd."""
    torch.manual_seed(0)
    block = DiTBlock(32, 4, 4.0, mixers, fused_attn=True)  # default init: every gate and proj non-zero
    x = torch.randn(B, T, 16, 32, requires_grad=True)
    block(x, torch.randn(B, 32))[0, 1, 5].sum().backward()
    reached = x.grad.abs().sum(-1) > 0  # (b t n)
    same_frame = torch.zeros(T, 16, dtype=torch.bool)
    same_frame[1] = True
    same_position = torch.zeros(T, 16, dtype=torch.bool)
    same_position[:, 5] = True
    expected = {"frame": same_frame, "position": same_position, "frame|position": same_frame | same_position,
                "all": torch.ones(T, 16, dtype=torch.bool)}[pattern]
    assert torch.equal(reached[0], expected)
    assert not reached[1].any()  # clips never mix


@pytest.mark.parametrize("layout", ("interleaved", "late_fusion", "divided"))
def test_zero_temporal_proj_still_receives_gradient(layout):
    """Gate 1 + proj 0 is trainable; adaLN-Zero's gate 0 + proj 0 would be a saddle with zero gradient."""
    model = tiny(layout)
    with torch.no_grad():
        model.final_layer.linear.weight.normal_(std=0.2)  # as after the first optimiser step
    x, timesteps = inputs()
    model(x, timesteps).square().mean().backward()
    temporal = [block for block in model.blocks if hasattr(block, "temporal_attn")]
    assert temporal and all(block.temporal_attn.proj.weight.grad.abs().max() > 0 for block in temporal)

    for block in temporal:  # the saddle: zero gate as well
        with torch.no_grad():
            block.adaLN_modulation[-1].bias.zero_()
    model.zero_grad()
    model(x, timesteps).square().mean().backward()
    assert all(block.temporal_attn.proj.weight.grad.abs().max() == 0 for block in temporal)


def test_label_conditioning_and_null_label():
    model = tiny("divided", num_classes=3)
    randomise_conditioning_(model)
    x, timesteps = inputs()
    assert model.null_label == 3 and model.y_embedder.embedding_table.num_embeddings == 4
    out = {label: model(x, timesteps, torch.full((B,), label)) for label in range(4)}
    assert (out[0] - out[1]).abs().max() > 1e-3
    assert (out[0] - out[3]).abs().max() > 1e-3
    torch.testing.assert_close(model(x, timesteps, None), out[3], atol=0, rtol=0)

    uncond = tiny("divided")
    randomise_conditioning_(uncond)
    assert uncond.null_label == 0 and uncond.y_embedder.embedding_table.num_embeddings == 1
    torch.testing.assert_close(uncond(x, timesteps), uncond(x, timesteps, torch.zeros(B, dtype=torch.long)))


def test_timesteps_accept_int_float_and_scalar():
    model = tiny("divided")
    randomise_conditioning_(model)
    x, _ = inputs()
    ref = model(x, torch.tensor([10, 10]))
    torch.testing.assert_close(model(x, torch.tensor([10.0, 10.0])), ref)
    torch.testing.assert_close(model(x, torch.tensor(10)), ref)
    assert (model(x, torch.tensor([10, 900])) - ref)[1].abs().max() > 1e-3


@pytest.mark.parametrize("layout", LAYOUTS)
def test_fused_attention_matches_reference(layout):
    fused, reference = tiny(layout, fused_attn=True), tiny(layout, fused_attn=False)
    randomise_all_(fused)
    reference.load_state_dict(fused.state_dict())
    x, timesteps = inputs()
    torch.testing.assert_close(fused(x, timesteps), reference(x, timesteps), atol=1e-5, rtol=1e-4)


def test_patches_return_to_their_place():
    """With identity blocks (init), output patch (frame, row, col) depends only on the same input patch."""
    model = tiny("divided")
    with torch.no_grad():
        model.final_layer.linear.weight.normal_(std=0.2)
    x = inputs()[0].requires_grad_(True)
    model(x, torch.tensor([0, 0]))[0, :, 2, 5, 2].sum().backward()  # frame 2, pixel (5, 2): patch (2, 1)
    expected = torch.zeros(T, S, S, dtype=torch.bool)
    expected[2, 4:6, 2:4] = True
    assert torch.equal(x.grad[0].abs().sum(0) > 0, expected)


def test_embeddings_follow_their_closed_forms():
    # Independent of diffusers, which now computes them: the formulas of Vaswani et al. / MAE / DiT entry by entry.
    d, positions = 8, torch.tensor([0.0, 1.0, 5.0])
    omega = 10000.0 ** (-torch.arange(d // 2, dtype=torch.float64) / (d // 2))
    expected = torch.cat([torch.sin(positions[:, None].double() * omega), torch.cos(positions[:, None].double() * omega)], 1)
    torch.testing.assert_close(sincos_1d(d, positions), expected.float())
    grid = sincos_2d(d, (2, 3))  # row-major patches; first half encodes the column, second the row
    torch.testing.assert_close(grid[4], torch.cat([sincos_1d(d // 2, torch.tensor([1.0]))[0],
                                                   sincos_1d(d // 2, torch.tensor([1.0]))[0]]))  # patch (1, 1)
    torch.testing.assert_close(grid[2], torch.cat([sincos_1d(d // 2, torch.tensor([2.0]))[0],
                                                   sincos_1d(d // 2, torch.tensor([0.0]))[0]]))  # patch (0, 2)
    steps = torch.tensor([0, 7, 999])
    freqs = torch.exp(-math.log(10000.0) * torch.arange(4, dtype=torch.float32) / 4)
    args = steps.float()[:, None] * freqs[None]
    torch.testing.assert_close(TimestepEmbedder.timestep_embedding(steps, 8), torch.cat([args.cos(), args.sin()], 1))


def test_embeddings_match_diffusers():
    torch.testing.assert_close(sincos_2d(32, (4, 4)), get_2d_sincos_pos_embed(32, 4, base_size=4).float())
    positions = torch.arange(6, dtype=torch.float32)
    torch.testing.assert_close(sincos_1d(32, positions), get_1d_sincos_pos_embed_from_grid(32, positions).float())
    timesteps = torch.tensor([0, 1, 250, 999])
    expected = get_timestep_embedding(timesteps, 256, flip_sin_to_cos=True, downscale_freq_shift=0)
    torch.testing.assert_close(TimestepEmbedder.timestep_embedding(timesteps, 256), expected)


def test_temporal_position_embeddings():
    learned = tiny("divided", temporal_pos_embed="learned")
    assert isinstance(learned.temp_embed, torch.nn.Parameter) and not learned.temp_embed.any()
    assert "temp_embed" in learned.state_dict()
    sincos = tiny("divided")
    assert "temp_embed" not in sincos.state_dict() and "pos_embed" not in sincos.state_dict()  # fixed buffers
    torch.testing.assert_close(sincos.temp_embed[0], sincos_1d(32, torch.arange(T)))
    assert tiny("divided", temporal_pos_embed="none").temp_embed is None


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layout": "diagonal"}, "layout='diagonal'"),
    ({"layout": "divided", "temporal_pos_embed": "rope"}, "temporal_pos_embed='rope'"),
    ({"layout": "interleaved", "depth": 3}, "depth=3"),
    ({"layout": "late_fusion", "depth": 1}, "depth=1"),
    ({"layout": "divided", "num_heads": 2, "embed_dim": 34}, "embed_dim=34"),
    ({"layout": "split_heads", "num_heads": 1}, "num_heads=1"),
    ({"layout": "divided", "num_heads": 3}, "num_heads=3"),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(**kwargs)


def test_bad_inputs_raise():
    model = tiny("divided")
    x, timesteps = inputs()
    with pytest.raises(ValueError, match="num_frames=4"):
        model(x[:, :, :3], timesteps)
    with pytest.raises(ValueError, match="input_size=8"):
        model(x[..., :4, :4], timesteps)
    with pytest.raises(ValueError, match="in_chans=3"):
        model(x[:, :2], timesteps)
    with pytest.raises(ValueError, match="timesteps"):
        model(x, torch.tensor([1, 2, 3]))
    tiny("divided", temporal_pos_embed="none")(x[:, :, :3], timesteps)  # any clip length without a time embedding


def test_tubelet_patches_return_to_their_place():
    """With identity blocks, output frame 2 depends only on the input tubelet (frames 2-3) of the same patch."""
    model = tiny("divided", tubelet_size=2)
    with torch.no_grad():
        model.final_layer.linear.weight.normal_(std=0.2)
    x = inputs()[0].requires_grad_(True)
    model(x, torch.tensor([0, 0]))[0, :, 2, 5, 2].sum().backward()  # frame 2, pixel (5, 2): tubelet (1, 2, 1)
    expected = torch.zeros(T, S, S, dtype=torch.bool)
    expected[2:4, 4:6, 2:4] = True
    assert torch.equal(x.grad[0].abs().sum(0) > 0, expected)


def test_space_only_tubelets_mix_frames_only_inside_their_tubelet():
    model = tiny("space_only", tubelet_size=2)
    randomise_all_(model)
    x, timesteps = inputs()
    gap = (model(change_frame(x, 1), timesteps) - model(x, timesteps)).abs()
    assert gap[:, :, 0].max() > 1e-4 and gap[:, :, 1].max() > 1e-4  # frame 1's tubelet is frames 0-1
    assert gap[:, :, 2:].max() < 1e-6


def test_tubelet_size_must_divide_the_frames():
    with pytest.raises(ValueError, match="num_frames=4 is not divisible by tubelet_size=3"):
        tiny("divided", tubelet_size=3)
    with pytest.raises(ValueError, match="tubelet_size=2"):
        tiny("divided", tubelet_size=2, temporal_pos_embed="none")(torch.randn(1, C, 3, S, S), torch.tensor([1]))


def test_conditioning_embeddings_start_at_the_configured_scale():
    dit = tiny("divided", num_classes=8)
    strong = tiny("divided", num_classes=8, label_embed_std=1.0, timestep_embed_init="torch")
    assert 0.01 < dit.y_embedder.embedding_table.weight.std() < 0.03
    assert 0.8 < strong.y_embedder.embedding_table.weight.std() < 1.2
    first = strong.t_embedder.mlp[0]
    assert first.weight.abs().max() <= first.in_features ** -0.5  # nn.Linear's Kaiming-uniform bound
    assert 0.01 < dit.t_embedder.mlp[0].weight.std() < 0.03
    timesteps = torch.tensor([10, 900])
    assert strong.t_embedder(timesteps).norm(dim=1).min() > 5 * dit.t_embedder(timesteps).norm(dim=1).max()
    with pytest.raises(ValueError, match="timestep_embed_init='big'"):
        tiny("divided", timestep_embed_init="big")
    with pytest.raises(ValueError, match="label_embed_std=0"):
        tiny("divided", label_embed_std=0)


def test_conv_stem_and_final_conv_work_per_frame_and_start_at_zero_output():
    model = tiny("space_only", conv_stem_depth=2, final_conv=True, temporal_pos_embed="none")
    x, timesteps = inputs()
    assert torch.count_nonzero(model(x, timesteps)) == 0  # the final conv starts as the identity of a zero output
    assert torch.equal(model.final_conv.weight[:, :, 1, 1], torch.eye(model.in_channels))
    randomise_all_(model)
    out = model(x, timesteps)
    order = torch.tensor([3, 0, 2, 1])
    permuted = model(x[:, :, order], timesteps)  # convolutions never mix frames: space_only stays per frame
    torch.testing.assert_close(permuted, out[:, :, order], atol=1e-5, rtol=1e-5)
    changed = model(change_frame(x, 0), timesteps)
    torch.testing.assert_close(changed[:, :, 1:], out[:, :, 1:], atol=1e-5, rtol=1e-5)


def test_rotary_embeddings_equal_complex_rotation_and_depend_on_offsets_only():
    """RoPE against its definition as complex multiplication (RoFormer eq. 12), and q_m·k_n a function of m − n."""
    from models.attention import apply_rotary, rotary_tables

    torch.manual_seed(0)
    n, dh = 6, 8
    q = torch.randn(2, 3, n, dh, dtype=torch.float64)
    cos, sin = rotary_tables(n, dh)
    # reference: channel pairs (i, i + dh/2) as complex numbers z_i, turned by exp(1j * pos * base^(-2i/dh))
    z = torch.complex(q[..., : dh // 2], q[..., dh // 2 :])
    theta = torch.arange(n, dtype=torch.float64)[:, None] * 10000.0 ** (-torch.arange(0, dh, 2, dtype=torch.float64)
                                                                           / dh)
    turned = z * torch.polar(torch.ones_like(theta), theta)
    expected = torch.cat([turned.real, turned.imag], dim=-1)
    assert torch.allclose(apply_rotary(q, cos.double(), sin.double()), expected, atol=1e-6)
    # the same q and k at positions (m, n) and (m + s, n + s) give the same score
    one_q, one_k = torch.randn(dh, dtype=torch.float64), torch.randn(dh, dtype=torch.float64)
    qs = apply_rotary(one_q.expand(n, dh), cos.double(), sin.double())
    ks = apply_rotary(one_k.expand(n, dh), cos.double(), sin.double())
    scores = qs @ ks.T  # (n n)
    for offset in range(-2, 3):
        diagonal = torch.diagonal(scores, offset)
        assert torch.allclose(diagonal, diagonal[0].expand_as(diagonal), atol=1e-9), offset
    assert not torch.allclose(torch.diagonal(scores, 1)[0], torch.diagonal(scores, 2)[0])


def test_temporal_rope_gives_order_without_breaking_the_step0_identity():
    from models.diffusion.dit import image_to_video_state_dict

    torch.manual_seed(0)
    args = dict(input_size=8, in_channels=4, patch_size=2, embed_dim=32, depth=2, num_heads=4, num_classes=10,
                label_embed_std=1.0, timestep_embed_init="torch")
    image = VideoDiT(num_frames=1, layout="space_only", temporal_pos_embed="none", **args)
    with torch.no_grad():
        for param in image.parameters():
            param.add_(0.1 * torch.randn_like(param))
    video = VideoDiT(num_frames=4, layout="divided", temporal_pos_embed="none", temporal_rope=True, **args)
    video.load_state_dict(image_to_video_state_dict(image.state_dict(), video), strict=True)  # no new keys
    x, timesteps, labels = torch.randn(2, 4, 4, 8, 8), torch.tensor([10, 900]), torch.tensor([3, 7])
    per_frame = torch.cat([image(x[:, :, k : k + 1], timesteps, labels) for k in range(4)], dim=2)
    assert torch.allclose(video(x, timesteps, labels), per_frame, atol=1e-6)
    # once the temporal branch is on, the model is no longer equivariant to reordering frames (no embedding needed)
    with torch.no_grad():
        for block in video.blocks:
            block.temporal_attn.proj.weight.normal_(std=0.3)
    flipped = video(x.flip(2), timesteps, labels).flip(2)
    assert not torch.allclose(video(x, timesteps, labels), flipped, atol=1e-4)
    plain = VideoDiT(num_frames=4, layout="divided", temporal_pos_embed="none", **args)
    plain.load_state_dict(video.state_dict())
    assert torch.allclose(plain(x, timesteps, labels), plain(x.flip(2), timesteps, labels).flip(2), atol=1e-5)
    with pytest.raises(ValueError, match="temporal_rope=true needs separate temporal attentions"):
        VideoDiT(num_frames=4, layout="space_only", temporal_rope=True, **args)
