"""LightningDataModule for clip classification from video files.

Each split is given as a path relative to ``root``: an annotation file (``path label`` list or CSV, see
:mod:`data.annotations`) or a folder-per-class tree. An optional ``generate`` block builds the project's Moving MNIST
data on first use, so the default job runs on a fresh machine with no download.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from data.annotations import Sample, find_class_names, read_classes, read_folder_tree, read_list_file
from data.compass import time_reversal_labels
from data.dataset import VideoClipDataset, check_files
from data.samplers import EpochShuffleSampler, ShardSampler
from data.transforms import eval_transform, spatial_view_transform, train_transform

log = logging.getLogger(__name__)


def clip_loader(dataset: Dataset, batch_size: int, seed: int, num_workers: int, pin_memory: bool,
                train_sampler: EpochShuffleSampler | None = None) -> DataLoader:
    """The project's DataLoader.

    Training (``train_sampler`` given): seeded per-epoch shuffling, sharded over data-parallel processes, incomplete
    last batch dropped. Evaluation: file order, dealt out to the processes without padding (:class:`ShardSampler`).
    Worker base seeds come from a seeded generator, so loading never touches the global RNG.
    """
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=train_sampler if train_sampler is not None else ShardSampler(len(dataset)),
        generator=torch.Generator().manual_seed(seed),
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        drop_last=train_sampler is not None,
    )


STAGE_SPLITS = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}


class SplitDataModule(pl.LightningDataModule):
    """What the project's DataModules share: one dataset per split, built on demand by :meth:`load_split`, and the
    loaders of :func:`clip_loader` (seeded, sharded, resumable training order; file order for evaluation).

    Checkpoints record how far into its epoch the training loader got (:meth:`state_dict`); a resumed run starts at
    that epoch (the next one if it had finished) and skips the batches already trained on, so it sees exactly the
    clips an uninterrupted run would.

    Subclasses set ``datasets = {}``, ``batch_size``, ``num_workers``, ``pin_memory``, ``seed`` and implement
    :meth:`load_split`.
    """

    datasets: dict[str, Dataset]
    batch_size: int
    num_workers: int
    pin_memory: bool
    seed: int
    _resume_at: tuple[int, int] | None = None  # (epoch to start in, items of this process's shard to skip)

    def load_split(self, split: str) -> Dataset:
        """Build (or return the already built) dataset of ``split`` (``train``, ``val`` or ``test``)."""
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        """How far into its epoch the training loader got (saved by Lightning in every checkpoint)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return {}
        done = int(trainer.fit_loop.epoch_loop.batch_progress.current.completed)
        return {"epoch": int(trainer.current_epoch), "batches_done": done,
                "epoch_finished": bool(done >= trainer.num_training_batches)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Called on resume before the dataloaders are built: remember where the interrupted run stopped."""
        if not state_dict:
            return
        epoch = int(state_dict["epoch"])
        if state_dict.get("epoch_finished"):
            self._resume_at = (epoch + 1, 0)
        else:
            self._resume_at = (epoch, int(state_dict["batches_done"]) * int(self.batch_size))

    def train_sampler(self, dataset_len: int) -> EpochShuffleSampler:
        """The training sampler, positioned where the checkpoint being resumed stopped. The epoch is set here
        because Lightning may draw the first indices (worker prefetch) before its ``set_epoch`` call."""
        sampler = EpochShuffleSampler(dataset_len, self.seed)
        if self._resume_at is not None:
            epoch, skip = self._resume_at
            sampler.set_epoch(epoch)
            sampler.resume_at(epoch, skip)
            self._resume_at = None
        return sampler

    def setup(self, stage: str | None = None) -> None:
        for split in STAGE_SPLITS.get(stage, ("train", "val", "test")):
            self.load_split(split)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        dataset = self.load_split(split)
        sampler = self.train_sampler(len(dataset)) if shuffle else None
        return clip_loader(dataset, self.batch_size, self.seed, self.num_workers, self.pin_memory, sampler)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


class VideoDataModule(SplitDataModule):
    """Train/val/test clip loaders.

    Args:
        root: dataset folder; split paths and listed video paths are relative to it.
        train, val, test: per split, an annotation file or a folder-per-class tree (relative to ``root``).
        num_classes: expected number of classes; labels outside [0, num_classes) raise.
        classes: optional file with one class name per line (relative to ``root``), for string labels.
        num_frames: frames per clip; frame_stride: gap between sampled frames (dense sampling).
        sampling: ``"dense"`` or ``"segment"`` (TSN); short_video: ``"loop"`` or ``"clamp"``.
        crop_size: model input side in pixels; train_scale: [min, max] short-side jitter; resize_size: eval short side.
        flip: random horizontal flip in training (off for direction-sensitive labels).
        mean, std: per-channel normalisation of [0, 1] pixels.
        batch_size, num_workers: loader settings; pin_memory: ``"auto"`` pins only when CUDA is available.
        on_missing: ``"error"`` or ``"skip"`` for listed files that do not exist.
        max_decode_failures: distinct undecodable files tolerated per loader process in training.
        seed: seeds the training shuffle order.
        generate: optional kwargs for :func:`data.moving_mnist_build.build_dataset` (``out_dir`` is ``root``), run in
            ``prepare_data`` and skipped when the data already exists.
        cache_videos: keep decoded videos in memory after their first read (small datasets only; see
            :class:`data.dataset.VideoClipDataset`). With persistent workers, epochs after the first decode nothing.
        time_reversal: play training clips backwards with probability 1/2 and relabel them with the opposite
            direction; needs compass class names (e.g. ``classes_direction.txt``). Exact for Moving MNIST direction.
        test_views: the multi-view test of the test split, ``{"temporal": N, "spatial": 1 | 3}``: N windows spread
            over each video (:func:`data.frame_sampling.view_starts`) × 1 centre or 3 crops along the long side
            (:func:`data.transforms.spatial_view_transform`). Test items then hold ``video`` (v c t h w), and the
            classifier aggregates its scores per video (``model.view_aggregation``). TimeSformer: 1 × 3; SlowFast:
            10 × 3. None or 1 × 1: one centred clip, as validation.

    Raises:
        ValueError: a bad value, naming the field.
    """

    def __init__(
        self,
        root: str,
        train: str,
        val: str,
        test: str,
        num_classes: int,
        num_frames: int = 8,
        frame_stride: int = 1,
        sampling: str = "dense",
        short_video: str = "loop",
        crop_size: int = 224,
        train_scale: Sequence[int] = (256, 320),
        resize_size: int = 224,
        flip: bool = True,
        mean: Sequence[float] = (0.45, 0.45, 0.45),
        std: Sequence[float] = (0.225, 0.225, 0.225),
        classes: str | None = None,
        batch_size: int = 8,
        num_workers: int = 2,
        pin_memory: str | bool = "auto",
        on_missing: str = "error",
        max_decode_failures: int = 10,
        seed: int = 0,
        generate: dict[str, Any] | None = None,
        cache_videos: bool = False,
        time_reversal: bool = False,
        test_views: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        for name, value in (("num_frames", num_frames), ("frame_stride", frame_stride),
                            ("batch_size", batch_size), ("num_classes", num_classes), ("crop_size", crop_size)):
            if int(value) < 1:
                raise ValueError(f"data.{name}={value} must be >= 1")
        if num_workers < 0:
            raise ValueError(f"data.num_workers={num_workers} must be >= 0")
        if len(train_scale) != 2:
            raise ValueError(f"data.train_scale={list(train_scale)} must be [min, max]")
        self.root = str(root)
        self.splits = {"train": train, "val": val, "test": test}
        self.num_classes = num_classes
        self.classes_file = classes
        self.clip = dict(num_frames=num_frames, frame_stride=frame_stride, sampling=sampling, short_video=short_video,
                         max_decode_failures=max_decode_failures, cache_videos=bool(cache_videos))
        self.train_tf = train_transform(crop_size, int(train_scale[0]), int(train_scale[1]), flip, mean, std)
        self.eval_tf = eval_transform(crop_size, resize_size, mean, std)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = torch.cuda.is_available() if pin_memory == "auto" else bool(pin_memory)
        self.on_missing = on_missing
        self.seed = seed
        self.generate = dict(generate) if generate else None
        self.datasets: dict[str, VideoClipDataset] = {}
        self.class_names: list[str] | None = None
        self.time_reversal = bool(time_reversal)
        views = {"temporal": 1, "spatial": 1, **(dict(test_views) if test_views else {})}
        if set(views) != {"temporal", "spatial"}:
            raise ValueError(f"data.test_views={dict(test_views)} may only set temporal and spatial")
        self.test_views = None if views == {"temporal": 1, "spatial": 1} else views
        if self.test_views is not None:  # checked here, so a bad value fails before any data is read
            self.view_tf = spatial_view_transform(crop_size, resize_size, mean, std, int(views["spatial"]))

    def prepare_data(self) -> None:
        if self.generate is not None:
            from data.moving_mnist_build import build_dataset

            build_dataset(out_dir=self.root, **self.generate)

    def read_split(self, split: str) -> list[Sample]:
        """Samples of one split, with missing files handled by ``on_missing`` and labels range-checked."""
        spec = os.path.join(self.root, self.splits[split])
        classes = read_classes(os.path.join(self.root, self.classes_file)) if self.classes_file else None
        if os.path.isdir(spec):
            samples, self.class_names = read_folder_tree(spec, classes)
        else:
            if not os.path.exists(spec):
                raise FileNotFoundError(f"data.{split}: {spec} does not exist (build the data first: make demo, or scripts/make_moving_mnist.py)")
            samples = read_list_file(spec, self.root, classes)
            self.class_names = classes if classes is not None else find_class_names(spec)
        bad = [s for s in samples if not 0 <= s.label < self.num_classes]
        if bad:
            raise ValueError(f"{spec}: label {bad[0].label} of {bad[0].path} is outside "
                             f"[0, data.num_classes={self.num_classes})")
        return check_files(samples, self.on_missing, source=spec)

    def load_split(self, split: str) -> VideoClipDataset:
        if split not in self.datasets:
            train = split == "train"
            samples = self.read_split(split)
            reverse = self._reverse_labels() if train and self.time_reversal else None
            views = self.test_views if split == "test" else None
            transform = self.train_tf if train else self.view_tf if views else self.eval_tf
            self.datasets[split] = VideoClipDataset(
                samples, train=train, transform=transform, seed=self.seed, reverse_labels=reverse,
                temporal_views=int(views["temporal"]) if views else None, **self.clip,
            )
        return self.datasets[split]

    def _reverse_labels(self) -> list[int]:
        return time_reversal_labels(self.class_names, f"a classes file, class folders, or classes_<task>.txt beside "
                                                      f"{self.splits['train']}")

