"""REPA (Yu et al. 2024): the alignment loss against a patch-by-patch loop, the frozen encoder against the classifier
it wraps, and a video stage trained with it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from models.diffusion.repa import Alignment, FrameEncoder, Projector, alignment_loss, block_output

from .test_label_sets import multi_set_config, write_multi_set_cache
from .test_metrics_identity import make_frame_run


def loop_loss(tokens, features, projector):
    """Plain reference: each frame's g x g grid of projected tokens and f x f feature grid, the finer one averaged
    over its (g/f)^2 or (f/g)^2 blocks, then minus the mean cosine similarity over frames and patches."""
    b, t, n, _ = tokens.shape
    g, f = round(n ** 0.5), features.shape[-1]
    sims = []
    for i in range(b):
        for j in range(t):
            z = projector(tokens[i, j]).reshape(g, g, -1)  # (g g e), row-major like the DiT's patches
            y = features[i, j].permute(1, 2, 0)  # (f f e)
            side = min(g, f)
            for r in range(side):
                for c in range(side):
                    zs = z[r * g // side:(r + 1) * g // side, c * g // side:(c + 1) * g // side].reshape(-1, z.shape[-1])
                    ys = y[r * f // side:(r + 1) * f // side, c * f // side:(c + 1) * f // side].reshape(-1, y.shape[-1])
                    sims.append(F.cosine_similarity(zs.mean(0), ys.mean(0), dim=0))
    return -torch.stack(sims).mean()


@pytest.mark.parametrize("g, f", [(8, 4), (4, 8), (4, 4)])
def test_alignment_loss_is_the_patchwise_cosine_of_a_plain_loop(g, f):
    torch.manual_seed(0)
    projector = Projector(6, 16, 5)
    tokens, features = torch.randn(2, 3, g * g, 6), torch.randn(2, 3, 5, f, f)
    torch.testing.assert_close(alignment_loss(tokens, features, projector), loop_loss(tokens, features, projector))
    # known answers: features equal to the projected tokens give -1, their negatives +1
    with torch.no_grad():
        same = rearrange(projector(tokens), "b t (h w) e -> b t e h w", h=g)
    if g == f:
        assert alignment_loss(tokens, same, projector).item() == pytest.approx(-1.0, abs=1e-6)
        assert alignment_loss(tokens, -same, projector).item() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="square token grid"):
        alignment_loss(torch.randn(2, 3, 12, 6), features, projector)
    with pytest.raises(ValueError, match="divide one another"):
        alignment_loss(torch.randn(2, 3, 36, 6), features, projector)


def test_frame_encoder_is_the_classifiers_stage_on_normalised_frames(tmp_path):
    net = make_frame_run(tmp_path / "frame_digit")
    encoder = FrameEncoder(tmp_path / "frame_digit", stage=3)
    assert encoder.out_dim == 256
    video = torch.rand(2, 1, 3, 64, 64) * 2 - 1  # grey, in [-1, 1] as the autoencoder decodes
    frames = ((video + 1) / 2).expand(-1, 3, -1, -1, -1)  # [0, 1], grey -> 3 channels
    normalised = (frames - 0.0) / 0.5  # mmnist data.mean 0, std 0.5
    with torch.no_grad():  # stage 3 of the resnet: stem, layer1, layer2, layer3 run by hand
        x = net.backbone.maxpool(net.backbone.act1(net.backbone.bn1(net.backbone.conv1(
            normalised.permute(0, 2, 1, 3, 4).reshape(6, 3, 64, 64)))))
        expected = net.backbone.layer3(net.backbone.layer2(net.backbone.layer1(x))).reshape(2, 3, 256, 4, 4)
    torch.testing.assert_close(encoder(video), expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="encoder_stage=9"):
        FrameEncoder(tmp_path / "frame_digit", stage=9)
    with pytest.raises(FileNotFoundError):
        FrameEncoder(tmp_path / "missing", stage=3)


def test_alignment_checks_its_fields_and_the_encoders_width(tmp_path):
    make_frame_run(tmp_path / "frame_digit")
    with pytest.raises(ValueError, match="model.repa.depth=3"):
        Alignment(str(tmp_path / "frame_digit"), depth=3, embed_dim=8, num_blocks=2)
    with pytest.raises(ValueError, match="model.repa.weight"):
        Alignment(str(tmp_path / "frame_digit"), depth=1, embed_dim=8, num_blocks=2, weight=0.0)
    with pytest.raises(ValueError, match="model.repa.encoder is not set"):
        Alignment("", depth=1, embed_dim=8, num_blocks=2)
    wrong = Alignment(str(tmp_path / "frame_digit"), depth=1, embed_dim=8, num_blocks=2, encoder_dim=128)
    with pytest.raises(ValueError, match="encoder_dim=128, but stage 3 .* has 256 channels"):
        wrong(torch.randn(1, 2, 16, 8), torch.zeros(1, 1, 2, 64, 64))


def test_block_output_collects_what_the_block_returns_and_unhooks():
    block = nn.Linear(3, 3)
    x = torch.randn(2, 3)
    with block_output(block) as seen:
        y = block(x)
    block(x)  # after the context: not collected
    assert len(seen) == 1 and seen[0] is y


def test_a_video_stage_trains_with_repa_and_samples_without_its_encoder(tmp_path, tiny_autoencoder):
    import shutil

    from models.diffusion.generate import load_model
    from train import train

    make_frame_run(tmp_path / "frame_digit")
    cache = write_multi_set_cache(tmp_path / "cache")
    run = tmp_path / "video"
    repa = (f"+model.repa={{encoder: {tmp_path / 'frame_digit'}, depth: 1, weight: 0.5, encoder_stage: 3, "
            "encoder_dim: 256, projector_dim: 16}")
    train(multi_set_config(cache, tiny_autoencoder, run, "model.init_from=null", "model.num_cond_frames=1",
                           "callbacks.motion_curve.every_n_steps=1000", "model.num_log_samples=0",
                           "trainer.log_every_n_steps=1", repa))
    logged = next(run.rglob("metrics.csv")).read_text().splitlines()[0].split(",")
    assert "train/repa" in logged
    shutil.rmtree(tmp_path / "frame_digit")  # sampling needs no encoder: the projector is in the checkpoint
    model = load_model(run / "checkpoints" / "last.ckpt")
    assert model.repa is not None and model.repa.depth == 1
    optimized = {id(p) for group in model.parameter_groups() for p in group["params"]}
    assert all(id(p) in optimized for p in model.repa.parameters())  # the projector trains with the net
    assert model.sample({"digit": torch.tensor([3]), "direction": torch.tensor([1])}, num_inference_steps=2,
                        cond_latents=torch.zeros(1, 4, 1, 16, 16)).shape == (1, 4, 8, 16, 16)


def test_the_alignment_gradient_reaches_the_denoiser_through_the_hooked_block():
    """Minimising the alignment loss alone turns the hooked tokens (and the projector) towards the features: the
    loss falls from about 0 (random directions) towards -1, and the blocks up to the hooked one get gradients, the
    ones after it none."""
    from models.diffusion.dit import VideoDiT

    torch.manual_seed(0)
    net = VideoDiT(input_size=16, num_frames=3, in_channels=4, patch_size=2, embed_dim=32, depth=2, num_heads=4,
                   num_classes=0)
    align = Alignment("unused", depth=1, embed_dim=32, num_blocks=2, encoder_dim=8, projector_dim=16)
    features = torch.randn(2, 3, 8, 4, 4)
    align._encoder = (lambda frames: features,)  # a fixed target in place of a classifier
    optimizer = torch.optim.Adam([*net.parameters(), *align.parameters()], lr=1e-2)
    x, t = torch.randn(2, 4, 3, 16, 16), torch.tensor([10, 500])
    losses = []
    for _ in range(30):
        with block_output(net.blocks[0]) as hidden:
            net(x, t)
        loss = align(hidden[0], torch.zeros(2, 1, 3, 64, 64))
        optimizer.zero_grad()
        loss.backward()
        if not losses:
            assert all(p.grad is None or not p.grad.any() for p in net.blocks[1].parameters())
            assert any(p.grad is not None and p.grad.any() for p in net.blocks[0].parameters())
        optimizer.step()
        losses.append(loss.item())
    assert abs(losses[0]) < 0.2 and losses[-1] < -0.8
