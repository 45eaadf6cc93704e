"""ViViT models 1-4: each model's defining property against a plain loop or autograd, and training through train.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from models.attention import SplitHeadAttention
from models.recognition.vivit import VARIANTS, FactorisedBlock, ViViT


def tiny(variant: int, **kw) -> ViViT:
    torch.manual_seed(0)
    args = dict(img_size=32, patch_size=8, tubelet_size=2, in_chans=3, num_classes=5, num_frames=8, embed_dim=16,
                depth=2, num_heads=2, temporal_depth=1, variant=variant)
    return ViViT(**{**args, **kw}).eval()


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_classifies_and_learns(variant):
    model = tiny(variant).train()
    video = torch.randn(3, 3, 8, 32, 32)
    labels = torch.tensor([0, 3, 4])
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    first = F.cross_entropy(model(video), labels).item()
    for _ in range(60):
        loss = F.cross_entropy(model(video), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert model(video).shape == (3, 5) and loss.item() < 0.3 * first  # it can fit three clips
    assert model.no_weight_decay() and all(n.endswith(("cls_token", "pos_embed")) for n in model.no_weight_decay())


def plain_attention(x: torch.Tensor, attn) -> torch.Tensor:
    """One-head self-attention over a (n d) sequence, written out from the layer's weights."""
    q, k, v = (x @ attn.qkv.weight.T + attn.qkv.bias).chunk(3, dim=-1)
    weights = torch.softmax(q @ k.T / q.shape[-1] ** 0.5, dim=-1)
    return (weights @ v) @ attn.proj.weight.T + attn.proj.bias


def test_model_3_block_with_one_head_equals_an_explicit_loop():
    torch.manual_seed(0)
    block = FactorisedBlock(dim=8, num_heads=1, mixer="factorised", fused_attn=True).eval()
    x = torch.randn(2, 3, 5, 8)  # (b t n d)
    expected = x.clone()
    with torch.no_grad():
        for b in range(2):
            for n in range(5):  # temporal attention at every patch position
                expected[b, :, n] += plain_attention(block.temporal_norm(x[b, :, n]), block.temporal_attn)
        after_time = expected.clone()
        for b in range(2):
            for t in range(3):  # then spatial attention in every frame
                expected[b, t] += plain_attention(block.norm1(after_time[b, t]), block.attn)
        expected = expected + block.mlp(block.norm2(expected))
        torch.testing.assert_close(block(x), expected, atol=1e-5, rtol=1e-5)


def test_model_4_spatial_heads_see_one_frame_and_temporal_heads_one_position():
    torch.manual_seed(0)
    attn = SplitHeadAttention(dim=8, num_heads=2).eval()
    with torch.no_grad():  # proj = identity, so output channels [0, 4) are the spatial heads and [4, 8) the temporal
        attn.proj.weight.copy_(torch.eye(8))
        attn.proj.bias.zero_()
    x = torch.randn(1, 4, 6, 8, requires_grad=True)  # (b t n d)
    out = attn(x)
    t0, n0 = 2, 3
    (spatial,) = torch.autograd.grad(out[0, t0, n0, :4].sum(), x, retain_graph=True)
    (temporal,) = torch.autograd.grad(out[0, t0, n0, 4:].sum(), x)
    reach_s, reach_t = spatial[0].abs().sum(-1) > 0, temporal[0].abs().sum(-1) > 0  # (t n) which tokens it reads
    assert reach_s[t0].all() and not reach_s[torch.arange(4) != t0].any()
    assert reach_t[:, n0].all() and not reach_t[:, torch.arange(6) != n0].any()
    with pytest.raises(ValueError, match="even"):
        SplitHeadAttention(dim=9, num_heads=3)


def test_model_2_spatial_encoder_is_frame_independent():
    model = tiny(2)
    video = torch.randn(2, 3, 8, 32, 32)
    changed = video.clone()
    changed[:, :, 2:4] = torch.randn(2, 3, 2, 32, 32)  # tubelet 1 only
    with torch.no_grad():
        before, after = model.spatial_features(video), model.spatial_features(changed)  # (b t d)
        assert before.shape == (2, 4, 16)
        torch.testing.assert_close(after[:, [0, 2, 3]], before[:, [0, 2, 3]])
        assert (after[:, 1] - before[:, 1]).abs().max() > 1e-3
        assert (model(changed) - model(video)).abs().max() > 1e-4  # the temporal encoder sees the change


def test_model_1_attends_jointly_over_all_tokens():
    """Changing one tubelet changes the CLS feature through any block, and every token's output in block 1."""
    model = tiny(1)
    tokens = torch.randn(1, 1 + 4 * 16, 16, requires_grad=True)
    out = model.blocks[0](tokens)
    (grad,) = torch.autograd.grad(out[0, 5].sum(), tokens)
    assert (grad[0].abs().sum(-1) > 0).all()  # token 5 reads every token, across frames and positions


def test_bad_configs_and_inputs_name_the_field():
    for kwargs, message in (({"variant": 5}, "variant=5"), ({"num_frames": 7}, "tubelet_size"),
                            ({"img_size": 30}, "patch_size"), ({"mlp_act": "relu"}, "mlp_act"),
                            ({"variant": 2, "temporal_depth": 0}, "temporal_depth")):
        with pytest.raises(ValueError, match=message):
            tiny(kwargs.pop("variant", 1), **kwargs)
    with pytest.raises(ValueError, match="built for 4 x 16"):
        tiny(3)(torch.randn(1, 3, 4, 32, 32))
    with pytest.raises(ValueError, match="variant=2 only"):
        tiny(1).spatial_features(torch.randn(1, 3, 8, 32, 32))


def test_fast_dev_run_through_train(train_config):
    """The experiment config wires ViViT into the classifier (model 2: the variant with the most parts)."""
    from train import train

    metrics = train(train_config("experiment=mmnist_direction_vivit", "model.net.variant=2", "model.net.embed_dim=32",
                                 "model.net.temporal_depth=1", "debug=fast_dev_run"))
    assert "train/loss" in metrics
