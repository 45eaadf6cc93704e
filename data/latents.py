"""Latent caching for stage 2: encode every clip of a split once, then train the diffusion model on the latents.

**Cache layout.** One file per split, ``<dir>/<split>.pt``, written atomically (temporary file in the same folder,
fsync, ``os.replace``) and readable with ``torch.load(weights_only=True)``:

* ``latents``: float32 (N c_lat t h' w'), the scaled posterior means ``FrameAutoencoder.encode(video)``;
* ``labels``: int64 (N); ``paths``: list of N video paths (str), in annotation-file order;
* ``meta``: dict of plain values: ``format_version``, the split, the autoencoder it came from, its
  ``scaling_factor``/``shift_factor``/``downsample_factor``, the clip settings (``num_frames``, ``frame_stride``,
  ``crop_size``), the evaluation transform's ``repr``, and what the caller adds (the script adds the data config).

One file per split (not per clip) because Moving MNIST latents are small (6,000 train clips × 4×8×16×16 float32 is
197 MB) and one tensor loads in one read; a dataset of long high-resolution clips would want one file per clip.

Every split, train included, goes through the **evaluation** path of :class:`data.datamodule.VideoDataModule`
(centred frame sampling, resize + centre crop, normalisation): the cache holds one deterministic view of each clip,
so training augmentation is not available from it.

The fast path (cache) keeps its reference path: ``encode`` of the clips that ``VideoDataModule``'s val/test loaders
yield gives the same latents (tests/test_autoencoder.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from data.datamodule import VideoDataModule, clip_loader
from data.dataset import VideoClipDataset
from models.checkpointing import save_atomic

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


def eval_clip_dataset(datamodule: VideoDataModule, split: str) -> VideoClipDataset:
    """Every clip of ``split`` through the datamodule's evaluation path, in annotation order.

    Raises:
        ValueError: ``split`` is not train, val or test.
    """
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not one of {SPLITS}")
    return VideoClipDataset(datamodule.read_split(split), train=False, transform=datamodule.eval_tf,
                            seed=datamodule.seed, **datamodule.clip)


@torch.no_grad()
def encode_dataset(autoencoder: torch.nn.Module, dataset: VideoClipDataset, batch_size: int = 8,
                   num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Encode every clip of ``dataset`` (posterior mean, scaled), in order.

    Args:
        autoencoder: a :class:`models.diffusion.autoencoder.FrameAutoencoder` (its device is used).
        dataset: clips whose ``video`` is float (c t h w) in [-1, 1].
        batch_size, num_workers: loader settings. Small batches are faster on CPU: 8 clips (64 frames of 64x64)
            encode about twice as fast per frame as 32 clips, whose large activations cost page faults.

    Returns:
        Latents float32 (N c_lat t h' w') on the CPU, labels int64 (N), and the N video paths.
    """
    device = next(autoencoder.parameters()).device
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    latents, labels, paths = [], [], []
    for batch in loader:
        latents.append(autoencoder.encode(batch["video"].to(device)).float().cpu())
        labels.append(batch["label"])
        paths += [dataset.samples[int(i)].path for i in batch["index"]]
    return torch.cat(latents), torch.cat(labels), paths


def cache_latents(autoencoder: torch.nn.Module, datamodule: VideoDataModule, out_dir: str | os.PathLike,
                  splits: Sequence[str] = SPLITS, batch_size: int = 8, num_workers: int = 0,
                  source: str = "", extra_meta: dict[str, Any] | None = None) -> dict[str, Path]:
    """Encode the given splits and write ``<out_dir>/<split>.pt`` for each (layout in the module docstring).

    Args:
        autoencoder: a frozen ``FrameAutoencoder`` in eval mode.
        datamodule: the clips to encode; its normalisation must map pixels to [-1, 1] (mean = std = 0.5).
        out_dir: folder of the cache files.
        splits: which splits to encode.
        batch_size, num_workers: loader settings.
        source: where the autoencoder came from, recorded in ``meta``.
        extra_meta: more plain values to record in ``meta`` (e.g. the data config).

    Returns:
        The path written for each split.
    """
    written = {}
    for split in splits:
        dataset = eval_clip_dataset(datamodule, split)
        latents, labels, paths = encode_dataset(autoencoder, dataset, batch_size, num_workers)
        meta = {
            "format_version": CACHE_FORMAT_VERSION,
            "split": split,
            "autoencoder": str(source),
            "scaling_factor": float(autoencoder.scaling_factor),
            "shift_factor": float(autoencoder.shift_factor),
            "downsample_factor": int(autoencoder.downsample_factor),
            "num_frames": int(datamodule.clip["num_frames"]),
            "frame_stride": int(datamodule.clip["frame_stride"]),
            "crop_size": int(latents.shape[-1] * autoencoder.downsample_factor),
            "transform": repr(datamodule.eval_tf),
            **(extra_meta or {}),
        }
        record = {"latents": latents, "labels": labels, "paths": paths, "meta": meta}
        written[split] = save_atomic(record, Path(out_dir) / f"{split}.pt")
        log.info("%s: %d clips -> %s (latents %s)", split, len(paths), written[split], tuple(latents.shape))
    return written


class LatentClipDataset(Dataset):
    """Cached latent clips of one split.

    Args:
        path: a ``<split>.pt`` file written by :func:`cache_latents`.

    Items are dicts: ``latents`` float32 (c_lat t h' w'), scaled for diffusion; ``label`` int64; ``index`` int64.
    Keys may be indices or ``(index, epoch)`` pairs from :class:`data.dataset.EpochShuffleSampler`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a latent cache of this format.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"latent cache {path} does not exist (write it with scripts/cache_latents.py)")
        record = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(record, dict) or not {"latents", "labels", "paths", "meta"} <= record.keys():
            raise ValueError(f"{path}: not a latent cache (expected keys latents, labels, paths, meta)")
        version = record["meta"].get("format_version")
        if version != CACHE_FORMAT_VERSION:
            raise ValueError(f"{path}: cache format_version={version}, expected {CACHE_FORMAT_VERSION}; re-run "
                             "scripts/cache_latents.py")
        self.path = path
        self.latents: torch.Tensor = record["latents"]
        self.labels: torch.Tensor = record["labels"]
        self.paths: list[str] = list(record["paths"])
        self.meta: dict[str, Any] = dict(record["meta"])

    def __len__(self) -> int:
        return self.latents.shape[0]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index = key[0] if isinstance(key, tuple) else key
        return {"latents": self.latents[index], "label": self.labels[index],
                "index": torch.tensor(index, dtype=torch.long)}


class LatentDataModule(pl.LightningDataModule):
    """Train/val/test loaders over cached latents.

    Args:
        root: folder of the ``<split>.pt`` caches.
        train, val, test: cache file names relative to ``root``.
        num_classes: labels must lie in [0, num_classes).
        num_frames: frames per clip the cache must hold (t).
        crop_size: frame side in pixels that the latents decode to (latent side × the autoencoder's
            ``downsample_factor``); checked against the cache.
        batch_size, num_workers: loader settings (the latents are in memory: workers rarely help).
        pin_memory: ``"auto"`` pins only when CUDA is available.
        seed: seeds the training shuffle order (per epoch, as in ``VideoDataModule``).

    Raises:
        ValueError: a bad value, or a cache that disagrees with ``num_frames``/``crop_size``/``num_classes``, naming
            the field.
    """

    def __init__(self, root: str, train: str = "train.pt", val: str = "val.pt", test: str = "test.pt",
                 num_classes: int = 8, num_frames: int = 8, crop_size: int = 64, batch_size: int = 32,
                 num_workers: int = 0, pin_memory: str | bool = "auto", seed: int = 0) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("num_frames", num_frames), ("crop_size", crop_size),
                            ("batch_size", batch_size)):
            if int(value) < 1:
                raise ValueError(f"data.{name}={value} must be >= 1")
        if num_workers < 0:
            raise ValueError(f"data.num_workers={num_workers} must be >= 0")
        self.root = Path(root)
        self.files = {"train": train, "val": val, "test": test}
        self.num_classes = num_classes
        self.num_frames = num_frames
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory == "auto" else bool(pin_memory)
        self.seed = seed
        self.datasets: dict[str, LatentClipDataset] = {}

    def load_split(self, split: str) -> LatentClipDataset:
        """Read and check one split's cache (kept after the first call)."""
        if split not in self.datasets:
            dataset = LatentClipDataset(self.root / self.files[split])
            _, _, t, h, _ = dataset.latents.shape
            side = h * dataset.meta["downsample_factor"]
            if t != self.num_frames:
                raise ValueError(f"data.num_frames={self.num_frames} but {dataset.path} holds {t}-frame clips")
            if side != self.crop_size:
                raise ValueError(f"data.crop_size={self.crop_size} but {dataset.path} decodes to {side}-pixel frames")
            if len(dataset) and not 0 <= int(dataset.labels.min()) <= int(dataset.labels.max()) < self.num_classes:
                raise ValueError(f"{dataset.path}: labels outside [0, data.num_classes={self.num_classes})")
            self.datasets[split] = dataset
        return self.datasets[split]

    def setup(self, stage: str | None = None) -> None:
        wanted = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in wanted.get(stage, SPLITS):
            self.load_split(split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return clip_loader(self.datasets[split], self.batch_size, shuffle, self.seed, self.num_workers,
                           self.pin_memory)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
