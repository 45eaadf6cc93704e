"""Inflating a timm ImageNet ViT (random weights, saved locally) into TimeSformer and ViViT, as the papers do."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer

from models.recognition.inflate import inflate_from_image_vit, inflate_patch_kernel
from models.recognition.pretrained import init_from_pretrained
from models.recognition.timesformer import TimeSformer
from models.recognition.vivit import ViViT

SIZES = dict(patch_size=8, embed_dim=16, depth=2, num_heads=2)


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    torch.manual_seed(0)
    model = VisionTransformer(img_size=32, num_classes=5, **SIZES).eval()
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.2)  # nothing at zero: a missed copy shows
    path = tmp_path_factory.mktemp("vit") / "vit_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return model, path


@pytest.mark.parametrize("attention_type", ["divided_space_time", "joint_space_time", "space_only"])
def test_a_one_frame_timesformer_from_a_vit_gives_the_vits_logits(vit, attention_type):
    image_model, path = vit
    net = TimeSformer(img_size=32, num_classes=5, num_frames=1, attention_type=attention_type, drop_path_rate=0.0,
                      **SIZES).eval()
    kept = init_from_pretrained(net, path)  # the same entry as model.pretrained=...
    assert set(kept) <= {"time_embed"} | {f"blocks.{i}.temporal_fc.{p}" for i in range(2) for p in ("weight", "bias")}
    frames = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(net(frames[:, :, None]), image_model(frames), rtol=0, atol=1e-5)
    if attention_type == "divided_space_time":  # the temporal branch starts as a copy of the spatial one
        torch.testing.assert_close(net.blocks[1].temporal_attn.qkv.weight, image_model.blocks[1].attn.qkv.weight)
        assert not net.blocks[1].temporal_fc.weight.any()


def test_position_embeddings_are_resampled_to_another_grid(vit):
    image_model, path = vit
    net = TimeSformer(img_size=48, num_classes=5, num_frames=2, **SIZES)
    inflate_from_image_vit(net, path)
    expected = resample_abs_pos_embed(image_model.pos_embed.detach(), new_size=[6, 6], old_size=[4, 4],
                                      num_prefix_tokens=1)
    torch.testing.assert_close(net.pos_embed.detach(), expected)


@pytest.mark.parametrize("method", ["central_frame", "filter"])
def test_tubelet_inflation_embeds_a_still_clip_as_the_2d_patch_embedding(vit, method):
    image_model, path = vit
    net = ViViT(num_classes=5, img_size=32, num_frames=4, tubelet_size=2, variant=1, **SIZES)
    inflate_from_image_vit(net, path, tubelet_init=method)
    frame = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    still = frame[:, :, None].expand(-1, -1, 4, -1, -1)
    with torch.no_grad():
        tokens = net.patch_embed.proj(still)  # (1 d t' gh gw)
        expected = image_model.patch_embed.proj(frame)  # (1 d gh gw)
    for t in range(tokens.shape[2]):
        torch.testing.assert_close(tokens[:, :, t], expected, rtol=1e-5, atol=1e-5)
    kernel = image_model.patch_embed.proj.weight.detach()
    central = inflate_patch_kernel(kernel, 3, "central_frame")
    assert torch.equal(central[:, :, 1], kernel) and not central[:, :, [0, 2]].any()


def test_vivit_models_report_what_the_image_model_cannot_fill(vit):
    _, path = vit
    kept = inflate_from_image_vit(ViViT(num_classes=5, img_size=32, num_frames=4, tubelet_size=2, variant=3, **SIZES),
                                  path)
    assert "blocks.0.temporal_attn.qkv.weight" in kept  # model 3's temporal attention is new
    kept = inflate_from_image_vit(ViViT(num_classes=5, img_size=32, num_frames=4, tubelet_size=2, variant=2, **SIZES),
                                  path)
    assert "temporal_blocks.0.attn.qkv.weight" in kept and "spatial_norm.weight" not in kept


def test_a_vit_of_another_depth_or_width_is_named(vit, tmp_path):
    _, path = vit
    with pytest.raises(ValueError, match="blocks.2|no place"):
        inflate_from_image_vit(TimeSformer(img_size=32, num_classes=5, num_frames=1, patch_size=8, embed_dim=16,
                                           depth=1, num_heads=2), path)
    with pytest.raises(ValueError, match="does not fit"):
        inflate_from_image_vit(TimeSformer(img_size=32, num_classes=5, num_frames=1, patch_size=8, embed_dim=32,
                                           depth=2, num_heads=2), path)
