"""The loss probe (models/diffusion/probe.py): each intervention against a closed form or a hand-written loss."""
from __future__ import annotations

import torch
from diffusers import DDPMScheduler

from models.diffusion.dit import VideoDiT
from models.diffusion.probe import AS_GIVEN, REVERSED, TEMPORAL_OFF, loss_probe, probe_table, temporal_off

SCHEDULER = {"num_train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2", "prediction_type": "v_prediction"}


def dit(**kwargs) -> VideoDiT:
    args = dict(input_size=8, num_frames=4, in_channels=4, patch_size=2, embed_dim=32, depth=2, num_heads=4,
                label_embed_std=1.0, timestep_embed_init="torch", num_classes={"digit": 10, "direction": 8})
    return VideoDiT(**{**args, **kwargs})


def randomise_(model: torch.nn.Module, std: float = 0.1) -> torch.nn.Module:
    with torch.no_grad():
        for param in model.parameters():
            param.add_(std * torch.randn_like(param))
    return model


def data(n: int = 6):
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(n, 4, 4, 8, 8, generator=generator)
    labels = {"digit": torch.randint(0, 10, (n,), generator=generator),
              "direction": torch.randint(0, 8, (n,), generator=generator)}
    return latents, labels


def test_as_given_is_the_training_loss_written_out_by_hand():
    torch.manual_seed(0)
    net = randomise_(dit()).eval()
    latents, labels = data()
    result = loss_probe(net, SCHEDULER, latents, labels, bands=((100, 300),), seed=3, batch_size=4)
    # the same draws, in the order the probe makes them
    generator = torch.Generator().manual_seed(3)
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.randint(100, 300, (len(latents),), generator=generator)
    scheduler = DDPMScheduler.from_config(SCHEDULER)
    alpha_bar = scheduler.alphas_cumprod[timesteps].view(-1, 1, 1, 1, 1)
    x_noisy = alpha_bar.sqrt() * latents + (1 - alpha_bar).sqrt() * noise
    v = alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * latents  # Salimans & Ho 2022
    with torch.no_grad():
        expected = (net(x_noisy, timesteps, labels) - v).square().mean().item()
    assert abs(result[AS_GIVEN]["100-300"] - expected) < 1e-6


def test_an_ignored_input_leaves_the_loss_unchanged_and_a_used_one_does_not():
    torch.manual_seed(0)
    net = randomise_(dit())
    with torch.no_grad():  # the direction table all equal: the model cannot tell directions apart
        net.y_embedders["direction"].embedding_table.weight[:] = net.y_embedders["direction"].embedding_table.weight[0]
    latents, labels = data()
    result = loss_probe(net, SCHEDULER, latents, labels, bands=((0, 500), (500, 1000)))
    for band in ("0-500", "500-1000"):
        assert abs(result["direction null"][band] - result[AS_GIVEN][band]) < 1e-6
        assert abs(result["direction wrong"][band] - result[AS_GIVEN][band]) < 1e-6
        assert abs(result["digit wrong"][band] - result[AS_GIVEN][band]) > 1e-4
        assert abs(result[TEMPORAL_OFF][band] - result[AS_GIVEN][band]) > 1e-4
    assert list(result) == [AS_GIVEN, "digit null", "digit wrong", "direction null", "direction wrong", TEMPORAL_OFF,
                            REVERSED]
    table = probe_table(result)
    assert table.count("\n") == 1 + len(result) and "×1.00" in table


def test_temporal_attention_at_zero_output_and_no_frame_index_make_the_probes_no_ops():
    torch.manual_seed(0)
    net = dit(temporal_pos_embed="none")  # zero_init_temporal: temporal attention outputs zero, no frame index
    latents, labels = data()
    result = loss_probe(net, SCHEDULER, latents, labels, bands=((0, 1000),))
    assert abs(result[TEMPORAL_OFF]["0-1000"] - result[AS_GIVEN]["0-1000"]) < 1e-6
    assert abs(result[REVERSED]["0-1000"] - result[AS_GIVEN]["0-1000"]) < 1e-6  # per-frame model: order is moot


def test_temporal_off_zeroes_a_copy_and_space_only_has_nothing_to_turn_off():
    net = randomise_(dit())
    before = {key: value.clone() for key, value in net.state_dict().items()}
    off = temporal_off(net)
    assert all(torch.equal(before[key], value) for key, value in net.state_dict().items())
    assert all(block.temporal_attn.proj.weight.abs().max() == 0 for block in off.blocks)
    assert temporal_off(dit(layout="space_only", tubelet_size=1)) is None


def test_bad_bands_and_labels_raise():
    import pytest

    latents, labels = data()
    with pytest.raises(ValueError, match="bands="):
        loss_probe(dit(), SCHEDULER, latents, labels, bands=((500, 1200),))
    with pytest.raises(ValueError, match="labels for 3 clips"):
        loss_probe(dit(), SCHEDULER, latents, {k: v[:3] for k, v in labels.items()}, bands=((0, 10),))
