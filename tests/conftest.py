"""Shared fixtures: a tiny Moving MNIST dataset made by the project's own builder, and config composition."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from data.moving_mnist_build import build_dataset

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")


def pytest_configure(config) -> None:
    """Under pytest-xdist (``make test`` runs ``-n auto``), one thread per worker.

    Each worker is a process of its own; with torch's default of one thread a core, two workers on two cores run four
    spinning OpenMP threads and the suite takes longer than on one worker (measured: 197 s against 174 s). The
    environment variables reach the scripts that tests start as subprocesses.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_mmnist(tmp_path_factory) -> Path:
    """64 train / 16 val / 16 test direction clips (8 frames, 64x64, lossless H.264)."""
    return build_dataset(tmp_path_factory.mktemp("mmnist") / "direction", variant="direction",
                         num_train=64, num_val=16, num_test=16, verbose=False)


def compose_config(name: str, overrides: list[str], return_hydra_config: bool = False) -> DictConfig:
    """Compose ``configs/{name}.yaml`` with command-line style overrides, outside of ``@hydra.main``."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name=name, overrides=overrides, return_hydra_config=return_hydra_config)


@pytest.fixture(scope="session")
def tiny_autoencoder(tmp_path_factory) -> Path:
    """A randomly initialised FrameAutoencoder (64 px -> 4 x 16 x 16 latents) saved as a diffusers folder."""
    import torch

    from models.diffusion.autoencoder import FrameAutoencoder

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vae") / "vae"
    FrameAutoencoder(block_out_channels=(8, 8, 8), norm_num_groups=4, latent_channels=4,
                     mid_block_add_attention=False).save_pretrained(path)
    return path


@pytest.fixture
def train_config(tiny_mmnist, tmp_path):
    """Build a small train config on the tiny dataset, writing into ``tmp_path``."""

    def make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        return compose_config("train", [
            f"data.root={tiny_mmnist}",
            "data.generate=null",
            "data.num_workers=0",
            "data.batch_size=8",
            "model.net.embed_dim=32",
            "model.net.depth=2",
            f"paths.output_dir={output_dir or tmp_path / 'run'}",
            "~callbacks.progress_bar",
            "+trainer.enable_model_summary=false",
            *overrides,
        ])

    return make
