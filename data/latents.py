"""Latent caching for stage 2: encode every clip of a split once, then train the diffusion model on the latents.

**Cache layout.** One file per split, ``<dir>/<split>.pt``, written atomically (temporary file in the same folder,
fsync, ``os.replace``) and readable with ``torch.load(weights_only=True)``:

* ``latents``: float32 (N c_lat t h' w'), the scaled posterior means ``FrameAutoencoder.encode(video)``;
* ``labels``: int64 (N); ``paths``: list of N video paths (str), in annotation-file order;
* ``label_sets`` (optional): ``{set name: int64 (N)}``, further labels of the same clips (e.g. ``digit`` and
  ``direction`` for Moving MNIST direction), read from the dataset's ``<split>_<set>.txt`` files and matched by path;
  ``meta["label_set_classes"]`` holds each set's class names and ``meta["label_set"]`` names the set of ``labels``;
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

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from data.annotations import CLASSES_FILE, find_class_names, read_classes, read_list_file
from data.compass import time_reversal_labels
from data.datamodule import SplitDataModule, VideoDataModule
from data.dataset import VideoClipDataset
from data.files import save_atomic

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
    clip = {**datamodule.clip, "cache_videos": False}  # one pass: nothing to reuse
    return VideoClipDataset(datamodule.read_split(split), train=False, transform=datamodule.eval_tf,
                            seed=datamodule.seed, **clip)


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


def split_label_set(paths: Sequence[str], list_file: str | os.PathLike, root: str | os.PathLike) -> torch.Tensor:
    """The labels of another label set for the clips ``paths``, matched by resolved path.

    Args:
        paths: video paths of the encoded clips (as recorded in the cache).
        list_file: a ``path label`` annotation file of the same clips (e.g. ``test_digit.txt``).
        root: folder its paths are relative to.

    Returns:
        int64 tensor (N), aligned with ``paths``.

    Raises:
        FileNotFoundError: ``list_file`` does not exist.
        ValueError: a clip of ``paths`` is not in ``list_file`` (the message names both).
    """
    by_path = {str(Path(sample.path).resolve()): sample.label for sample in read_list_file(list_file, root)}
    labels = []
    for path in paths:
        label = by_path.get(str(Path(path).resolve()))
        if label is None:
            raise ValueError(f"{list_file}: has no label for {path}; label sets must list the same clips")
        labels.append(int(label))
    return torch.tensor(labels, dtype=torch.long)


def cache_latents(autoencoder: torch.nn.Module, datamodule: VideoDataModule, out_dir: str | os.PathLike,
                  splits: Sequence[str] = SPLITS, batch_size: int = 8, num_workers: int = 0,
                  source: str = "", extra_meta: dict[str, Any] | None = None,
                  label_sets: Sequence[str] = ()) -> dict[str, Path]:
    """Encode the given splits and write ``<out_dir>/<split>.pt`` for each (layout in the module docstring).

    Args:
        autoencoder: a frozen ``FrameAutoencoder`` in eval mode.
        datamodule: the clips to encode; its normalisation must map pixels to [-1, 1] (mean = std = 0.5).
        out_dir: folder of the cache files.
        splits: which splits to encode.
        batch_size, num_workers: loader settings.
        source: where the autoencoder came from, recorded in ``meta``.
        extra_meta: more plain values to record in ``meta`` (e.g. the data config).
        label_sets: further label sets to store beside ``labels``, each read from ``<root>/<split>_<set>.txt``
            with class names from ``<root>/classes_<set>.txt`` (the Moving MNIST builder's layout); the split's own
            annotation file gives the set of ``labels`` (``train_direction.txt``: ``direction``).

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
        if label_sets:
            root = Path(datamodule.root)
            own = Path(str(datamodule.splits[split])).stem.split("_", 1)[-1]
            record["label_sets"] = {name: split_label_set(paths, root / f"{split}_{name}.txt", root)
                                    for name in label_sets}
            meta["label_set"] = own
            meta["label_set_classes"] = {name: find_class_names(root / f"{split}_{name}.txt") for name in label_sets}
        written[split] = save_atomic(record, Path(out_dir) / f"{split}.pt")
        log.info("%s: %d clips -> %s (latents %s)", split, len(paths), written[split], tuple(latents.shape))
    return written


class LatentClipDataset(Dataset):
    """Cached latent clips of one split, or their single frames.

    Args:
        path: a ``<split>.pt`` file written by :func:`cache_latents`.
        reverse_labels: time-reversal augmentation. When given, each ``(index, epoch)`` item is played backwards
            with probability 1/2 (a pure function of ``(seed, epoch, index)``, so resumed runs see the same items)
            and its label ``y`` becomes ``reverse_labels[y]``. Exact for the per-frame latents of Moving MNIST
            ``direction``, where a reversed clip is bit for bit a clip of the opposite direction (see
            :func:`data.compass.opposite_directions`). Plain integer keys (evaluation) are never reversed.
            The set of ``labels`` and its entry in ``label_sets`` are relabelled; other sets (a digit) are unchanged.
        seed: base seed of the reversal draws.
        single_frames: items are the cache's single frames (item i is frame ``i % t`` of clip ``i // t``, with the
            clip's labels): every frame of the training clips as image data, for an image stage (VDM, Ho et al. 2022;
            Video LDM, Blattmann et al. 2023).
        first_frames: items are the clips' first frames only (item i is frame 0 of clip i, after its reversal when
            ``reverse_labels`` plays it backwards: then the clip's last frame, with the reversed label), for an image
            stage that draws the frame a clip starts from. Where a clip starts depends on its labels (a digit moving
            east starts in the west half of the canvas), which an image stage trained on every frame cannot know.

    Items are dicts: ``latents`` float32 (c_lat t h' w') (t = 1 with ``single_frames`` or ``first_frames``), scaled
    for diffusion;
    ``label`` int64; ``label_<set>`` int64 for each of the cache's ``label_sets``; ``index`` int64.
    Keys may be indices or ``(index, epoch)`` pairs from :class:`data.samplers.EpochShuffleSampler`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is not a latent cache of this format, ``single_frames`` with ``reverse_labels``, or
            both ``single_frames`` and ``first_frames``.
    """

    def __init__(self, path: str | os.PathLike, reverse_labels: Sequence[int] | None = None, seed: int = 0,
                 single_frames: bool = False, first_frames: bool = False) -> None:
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
        self.label_sets: dict[str, torch.Tensor] = dict(record.get("label_sets", {}))
        self.reverse_labels = None if reverse_labels is None else torch.as_tensor(list(reverse_labels))
        self.seed = seed
        if single_frames and reverse_labels is not None:
            raise ValueError(f"{path}: single frames have no time to reverse (data.time_reversal with "
                             "data.single_frames)")
        if single_frames and first_frames:
            raise ValueError(f"{path}: data.single_frames (every frame) and data.first_frames (each clip's first "
                             "frame) exclude each other")
        self.single_frames = single_frames
        self.first_frames = first_frames
        self.frames_per_clip = self.latents.shape[2] if single_frames else 1

    def __len__(self) -> int:
        return self.latents.shape[0] * self.frames_per_clip

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        index, epoch = key if isinstance(key, tuple) else (key, None)
        clip, frame = divmod(int(index), self.frames_per_clip)
        latents, label = self.latents[clip], self.labels[clip]
        others = {name: labels[clip] for name, labels in self.label_sets.items()}
        if self.single_frames:
            latents = latents[:, frame : frame + 1]  # (c 1 h w)
        if self.reverse_labels is not None and epoch is not None:
            if np.random.default_rng([self.seed, epoch, index]).random() < 0.5:
                latents, label = latents.flip(1), self.reverse_labels[label]  # (c t h w) backwards in time
                own = self.meta.get("label_set")
                if own in others:
                    others[own] = label
        if self.first_frames:
            latents = latents[:, :1]  # (c 1 h w): where the clip, as played, starts
        return {"latents": latents, "label": label, **{f"label_{name}": value for name, value in others.items()},
                "index": torch.tensor(index, dtype=torch.long)}


class LatentDataModule(SplitDataModule):
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
        seed: seeds the training shuffle order (per epoch, as in ``VideoDataModule``) and the reversals.
        time_reversal: play training clips backwards with probability 1/2 and relabel them with the opposite
            direction (:class:`LatentClipDataset`); needs compass class names in ``<root>/classes.txt``.
        single_frames: serve every frame of every clip as a one-frame item (an image stage); ``num_frames``
            must then be 1.
        first_frames: serve each clip's first frame as a one-frame item (an image stage that draws the frame a clip
            starts from, asked for all of its labels); ``num_frames`` must then be 1. With ``time_reversal`` a
            reversed clip gives its last frame, relabelled.

    Attributes:
        class_names: the names in ``<root>/classes.txt`` (label order), or None.

    Raises:
        ValueError: a bad value, or a cache that disagrees with ``num_frames``/``crop_size``/``num_classes``, naming
            the field.
    """

    def __init__(self, root: str, train: str = "train.pt", val: str = "val.pt", test: str = "test.pt",
                 num_classes: int = 8, num_frames: int = 8, crop_size: int = 64, batch_size: int = 32,
                 num_workers: int = 0, pin_memory: str | bool = "auto", seed: int = 0,
                 time_reversal: bool = False, single_frames: bool = False, first_frames: bool = False) -> None:
        super().__init__()
        for name, value in (("num_classes", num_classes), ("num_frames", num_frames), ("crop_size", crop_size),
                            ("batch_size", batch_size)):
            if int(value) < 1:
                raise ValueError(f"data.{name}={value} must be >= 1")
        if num_workers < 0:
            raise ValueError(f"data.num_workers={num_workers} must be >= 0")
        if single_frames and (num_frames != 1 or time_reversal):
            raise ValueError(f"data.single_frames=true serves one frame per item: it needs data.num_frames=1 (got "
                             f"{num_frames}) and data.time_reversal=false (got {time_reversal})")
        if first_frames and (num_frames != 1 or single_frames):
            raise ValueError(f"data.first_frames=true serves each clip's first frame: it needs data.num_frames=1 (got "
                             f"{num_frames}) and data.single_frames=false (got {single_frames})")
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
        # Written by scripts/cache_latents.py from the source dataset (e.g. E, NE, ... for Moving MNIST direction).
        names = self.root / CLASSES_FILE
        self.class_names: list[str] | None = read_classes(names) if names.is_file() else None
        self.time_reversal = time_reversal
        self.single_frames = single_frames
        self.first_frames = first_frames

    @property
    def label_set_classes(self) -> dict[str, list[str] | None]:
        """Class names of each of the cache's further label sets (read from the train cache), e.g.
        ``{"digit": ["0", ...], "direction": ["E", ...]}``; empty when the cache has none."""
        return dict(self.load_split("train").meta.get("label_set_classes", {}))

    def _reverse_labels(self) -> list[int] | None:
        """The label of each class played backwards, when ``time_reversal`` is on (checked when the train split loads,
        so a config composes before the cache exists)."""
        if not self.time_reversal:
            return None
        where = f"{self.root / CLASSES_FILE} (written by scripts/cache_latents.py)"
        return time_reversal_labels(self.class_names, where)

    def load_split(self, split: str) -> LatentClipDataset:
        """Read and check one split's cache (kept after the first call).

        Raises:
            ValueError: the cache does not match the config, or ``time_reversal`` without compass class names.
        """
        if split not in self.datasets:
            reverse = self._reverse_labels() if split == "train" else None
            dataset = LatentClipDataset(self.root / self.files[split], reverse_labels=reverse, seed=self.seed,
                                        single_frames=self.single_frames, first_frames=self.first_frames)
            _, _, t, h, _ = dataset.latents.shape
            t = 1 if self.single_frames or self.first_frames else t
            side = h * dataset.meta["downsample_factor"]
            if t != self.num_frames:
                raise ValueError(f"data.num_frames={self.num_frames} but {dataset.path} holds {t}-frame clips")
            if side != self.crop_size:
                raise ValueError(f"data.crop_size={self.crop_size} but {dataset.path} decodes to {side}-pixel frames")
            if len(dataset) and not 0 <= int(dataset.labels.min()) <= int(dataset.labels.max()) < self.num_classes:
                raise ValueError(f"{dataset.path}: labels outside [0, data.num_classes={self.num_classes})")
            self.datasets[split] = dataset
        return self.datasets[split]
