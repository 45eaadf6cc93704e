"""Stage 1 of video latent diffusion: the frame autoencoder, its loaders, its training run and the latent cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate

from data.latents import LatentDataModule, cache_latents
from models.diffusion.autoencoder import FrameAutoencoder, load_frame_autoencoder
from models.diffusion.autoencoder_module import reconstruction_metrics, to_unit_range
from scripts.cache_latents import main as cache_latents_main
from tests.conftest import compose_config
from train import train

TINY_NET = dict(block_out_channels=(8, 16, 16), layers_per_block=1, latent_channels=4, norm_num_groups=4,
                sample_size=64)
TINY_NET_OVERRIDES = ["model.net.block_out_channels=[8,16,16]", "model.net.norm_num_groups=4"]
SMALL_CLIPS = ["data.num_frames=2", "data.crop_size=32", "data.resize_size=32", "data.train_scale=[32,32]"]


@pytest.fixture(scope="module")
def autoencoder() -> FrameAutoencoder:
    torch.manual_seed(0)
    return FrameAutoencoder(**TINY_NET, scaling_factor=0.7).eval()


def video(b: int = 2, t: int = 3, side: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.rand(b, 3, t, side, side, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def generation_datamodule(root: Path, batch_size: int = 8):
    """2-frame 32x32 clips of the tiny dataset in [-1, 1], through VideoDataModule."""
    cfg = compose_config("train", ["data=mmnist_generation", f"data.root={root}", "data.generate=null",
                                   "data.num_workers=0", f"data.batch_size={batch_size}", "paths.output_dir=.",
                                   *SMALL_CLIPS])
    return instantiate(cfg.data)


def test_encode_and_decode_are_the_per_frame_vae_with_scaling(autoencoder):
    clip = video()
    with torch.no_grad():
        latents = autoencoder.encode(clip)
        assert autoencoder.downsample_factor == 4 and autoencoder.latent_channels == 4
        assert latents.shape == (2, 4, 3, 4, 4) and latents.dtype == torch.float32
        decoded = autoencoder.decode(latents)
        assert decoded.shape == clip.shape and decoded.dtype == torch.float32
        for i in range(clip.shape[2]):  # reference: one frame at a time, no folding
            mean = autoencoder.vae.encode(clip[:, :, i]).latent_dist.mean
            torch.testing.assert_close(latents[:, :, i], mean * 0.7, rtol=1e-5, atol=1e-6)
            frame = autoencoder.vae.decode(latents[:, :, i] / 0.7).sample
            torch.testing.assert_close(decoded[:, :, i], frame, rtol=1e-5, atol=1e-6)
        first = autoencoder.encode(clip, sample=True, generator=torch.Generator().manual_seed(1))
        again = autoencoder.encode(clip, sample=True, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(first, again, rtol=0, atol=0)
    assert not torch.allclose(first, latents)


def test_downsample_factor_follows_the_levels():
    assert FrameAutoencoder(block_out_channels=(8,), norm_num_groups=4).downsample_factor == 1
    assert FrameAutoencoder(block_out_channels=(8, 8, 8, 8), norm_num_groups=4).downsample_factor == 8


def test_bad_inputs_raise_value_errors(autoencoder):
    with pytest.raises(ValueError, match="c=3"):
        autoencoder.encode(torch.zeros(1, 1, 2, 16, 16))
    with pytest.raises(ValueError, match="not divisible by 4"):
        autoencoder.encode(torch.zeros(1, 3, 2, 18, 18))
    with pytest.raises(ValueError, match="c=4"):
        autoencoder.decode(torch.zeros(1, 3, 2, 4, 4))
    with pytest.raises(ValueError, match="norm_num_groups=5"):
        FrameAutoencoder(block_out_channels=(8, 16), norm_num_groups=5)


def test_diffusers_folder_round_trip_gives_identical_outputs(autoencoder, tmp_path):
    autoencoder.save_pretrained(tmp_path / "vae")
    loaded = load_frame_autoencoder(tmp_path / "vae")
    assert loaded.scaling_factor == pytest.approx(0.7) and not loaded.training
    assert not any(p.requires_grad for p in loaded.parameters())
    clip = video(seed=3)
    with torch.no_grad():
        latents = autoencoder.encode(clip)
        torch.testing.assert_close(loaded.encode(clip), latents, rtol=0, atol=0)
        torch.testing.assert_close(loaded.decode(latents), autoencoder.decode(latents), rtol=0, atol=0)


def test_loader_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_frame_autoencoder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty"):
        load_frame_autoencoder(tmp_path / "empty")
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    torch.save({"state_dict": {}}, tmp_path / "run" / "checkpoints" / "x.ckpt")
    with pytest.raises(FileNotFoundError, match="config.yaml"):
        load_frame_autoencoder(tmp_path / "run" / "checkpoints" / "x.ckpt")


def test_psnr_matches_the_plain_formula_and_clamps():
    target = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    pred = target + 0.3 * torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))  # leaves [-1, 1]
    metrics = reconstruction_metrics("val/")
    metrics.update(to_unit_range(pred), to_unit_range(target))
    mse = (((pred + 1) / 2).clamp(0, 1) - (target + 1) / 2).square().mean(dim=(1, 2, 3))  # per frame
    expected = (10 * torch.log10(1 / mse)).mean()
    result = metrics.compute()
    torch.testing.assert_close(result["val/psnr"], expected, rtol=1e-5, atol=1e-5)
    assert 0 < result["val/ssim"] < 1


def autoencoder_config(root: Path, output_dir: Path, *overrides: str):
    return compose_config("train", [
        "experiment=mmnist_autoencoder", f"data.root={root}", "data.generate=null", "data.num_workers=0",
        "data.batch_size=4", *SMALL_CLIPS, *TINY_NET_OVERRIDES, "model.train_frames_per_clip=1",
        f"paths.output_dir={output_dir}", "~callbacks.progress_bar", "+trainer.enable_model_summary=false", *overrides,
    ])


def test_fast_dev_run_trains_validates_and_tests(tiny_mmnist, tmp_path):
    metrics = train(autoencoder_config(tiny_mmnist, tmp_path / "run", "debug=fast_dev_run"))
    expected = {"train/loss", "train/kl", "val/loss", "val/psnr", "val/ssim", "test/loss", "test/psnr", "test/ssim"}
    assert expected <= metrics.keys()
    assert all(torch.isfinite(torch.tensor(metrics[key])) for key in expected)


def test_checkpoint_stores_the_unit_variance_scale_and_loads_identically(tiny_mmnist, tmp_path):
    run = tmp_path / "run"
    metrics = train(autoencoder_config(tiny_mmnist, run, "trainer.max_epochs=1", "trainer.limit_train_batches=1",
                                       "trainer.limit_val_batches=1", "+trainer.num_sanity_val_steps=0",
                                       "trainer.log_every_n_steps=1", "test=false"))
    best = Path(metrics["best_model_path"])
    assert best == run / "checkpoints" / "best.ckpt"
    loaded = load_frame_autoencoder(best)
    assert loaded.scaling_factor == pytest.approx(metrics["val/scaling_factor"]) and loaded.scaling_factor != 1.0

    module = instantiate(autoencoder_config(tiny_mmnist, run).model)
    module.load_state_dict(torch.load(best, weights_only=True)["state_dict"], strict=True)
    datamodule = generation_datamodule(tiny_mmnist, batch_size=4)
    datamodule.setup("validate")
    batch = next(iter(datamodule.val_dataloader()))  # the one batch the scale was estimated on
    with torch.no_grad():
        latents = loaded.encode(batch["video"])
        torch.testing.assert_close(latents, module.net.eval().encode(batch["video"]), rtol=0, atol=0)
    assert latents.std().item() == pytest.approx(1.0, abs=1e-4)  # unit variance by construction


def test_cached_latents_equal_on_the_fly_encoding(autoencoder, tiny_mmnist, tmp_path):
    datamodule = generation_datamodule(tiny_mmnist)
    written = cache_latents(autoencoder, datamodule, tmp_path / "latents", splits=("test",), batch_size=5)
    assert list(written) == ["test"] and not list((tmp_path / "latents").glob("*.tmp"))
    latent_dm = LatentDataModule(tmp_path / "latents", num_classes=8, num_frames=2, crop_size=32, batch_size=8)
    datamodule.setup("test")
    latent_dm.setup("test")
    for cached, clips in zip(latent_dm.test_dataloader(), datamodule.test_dataloader(), strict=True):
        with torch.no_grad():
            torch.testing.assert_close(cached["latents"], autoencoder.encode(clips["video"]), rtol=0, atol=1e-5)
        torch.testing.assert_close(cached["label"], clips["label"])
    meta = latent_dm.datasets["test"].meta
    assert meta["scaling_factor"] == pytest.approx(0.7) and meta["num_frames"] == 2
    with pytest.raises(ValueError, match="data.num_frames=4"):
        LatentDataModule(tmp_path / "latents", num_frames=4, crop_size=32).setup("test")
    with pytest.raises(ValueError, match="data.crop_size=64"):
        LatentDataModule(tmp_path / "latents", num_frames=2, crop_size=64).setup("test")


def test_cache_script_with_a_diffusers_folder(autoencoder, tiny_mmnist, tmp_path):
    autoencoder.save_pretrained(tmp_path / "vae")
    cache_latents_main(["--autoencoder", str(tmp_path / "vae"), "--data", "mmnist_generation", "--splits", "val",
                        "--out", str(tmp_path / "latents"), "--num-workers", "0", f"data.root={tiny_mmnist}",
                        *SMALL_CLIPS])
    record = torch.load(tmp_path / "latents" / "val.pt", weights_only=True)
    assert record["latents"].shape == (16, 4, 2, 8, 8) and len(record["paths"]) == 16
    assert record["meta"]["data"]["mean"] == [0.5, 0.5, 0.5]


def test_eval_py_tests_a_stage_1_checkpoint(tiny_mmnist, tmp_path):
    """eval.py on an autoencoder run reports what the run logs (PSNR, SSIM), not a classifier's accuracy keys."""
    from eval import evaluate

    metrics = train(autoencoder_config(tiny_mmnist, tmp_path / "run", "trainer.max_epochs=1",
                                       "trainer.limit_train_batches=1", "trainer.limit_val_batches=1",
                                       "+trainer.num_sanity_val_steps=0", "test=false"))
    cfg = compose_config("eval", [f"ckpt_path={metrics['best_model_path']}", f"paths.output_dir={tmp_path / 'eval'}",
                                  "+run_overrides.data.num_workers=0"])
    result = evaluate(cfg)
    assert {"test/psnr", "test/ssim", "test/loss"} <= result.keys()
    assert json.loads((tmp_path / "eval" / "test_metrics.json").read_text())["test/psnr"] == result["test/psnr"]
