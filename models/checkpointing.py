"""Checkpoint writing and reading: atomic writes, and loads that never execute pickled code.

* :class:`AtomicCheckpointIO` is a Lightning ``CheckpointIO`` plugin: it writes to a temporary file in the target
  folder, flushes it to disk and renames it over the target (``os.replace`` is atomic on POSIX), so an interrupted
  save leaves the previous checkpoint intact and never a truncated one.
* :func:`load_state_dict` reads a checkpoint with ``torch.load(weights_only=True)``: tensors and plain containers
  only, no arbitrary code from an untrusted file.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.plugins.io import TorchCheckpointIO

from data.files import save_atomic

log = logging.getLogger(__name__)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write Lightning checkpoints atomically (temp file + fsync + rename, see :func:`data.files.save_atomic`)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None) -> None:
        save_atomic(checkpoint, path)
        # Lightning calls the plugin on global rank 0 only; the rank in the message lets tests check that.
        log.debug("rank %s wrote %s", os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")), path)


def load_state_dict(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read the ``state_dict`` of a Lightning checkpoint (or a bare state dict) without unpickling code.

    Args:
        path: a ``.ckpt``/``.pt``/``.pth`` file.
        map_location: device for the tensors.

    Returns:
        The state dict (parameter name -> tensor).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be read with ``weights_only=True`` (it holds objects beyond tensors and containers).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises UnpicklingError or RuntimeError depending on the content
        raise ValueError(f"{path}: cannot be loaded with weights_only=True ({err.__class__.__name__}: {err})") from err
    return checkpoint.get("state_dict", checkpoint)


class ExactResume:
    """LightningModule mixin that makes a resumed run continue exactly as an uninterrupted one.

    * Keeps torch's global RNG state(s) in every checkpoint and restores them on load: dropout, drop-path, diffusion
      timesteps and noise, and random frame subsets draw from the global generators.
    * Sets the training sampler's epoch from ``trainer.current_epoch`` at the start of every training epoch.
      Lightning sets it from its processed-epoch counter, which is one ahead after resuming from a checkpoint written
      at a training epoch's end (step-bounded runs with ``max_epochs=-1`` write one there), so the shuffle order of
      the resumed epoch would differ. The hook runs before the epoch's iterator is created.

    List it before ``pl.LightningModule``.
    """

    def on_train_epoch_start(self) -> None:
        loader = self.trainer.train_dataloader
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self.trainer.current_epoch)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng_state"] = torch.get_rng_state()
        if torch.cuda.is_available():
            checkpoint["cuda_rng_state"] = torch.cuda.get_rng_state_all()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["rng_state"])
        if "cuda_rng_state" in checkpoint and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(checkpoint["cuda_rng_state"])
