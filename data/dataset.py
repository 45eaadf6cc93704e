"""A map-style dataset of clips decoded from video files with decord.

Bad files are handled in two places, never silently:

* **Missing files** are found when the dataset is built (:func:`check_files`): by default it raises, counting them and
  naming the first few; ``on_missing="skip"`` drops them with a warning that gives the same count.
* **Files that fail to decode** while training are retried on another index, counted per sample
  (``decode_failures`` in the returned dict, summed and logged by the LightningModule) and logged with their path.
  Once more than ``max_decode_failures`` distinct files have failed in one process, the run stops with an error that
  names them. In evaluation (``train=False``) a decode failure raises at once: replacing a test clip would change
  the test set.

Training randomness (shuffle order, clip start, crop, flip) is a pure function of ``(seed, epoch, index)``:
:class:`data.samplers.EpochShuffleSampler` yields ``(index, epoch)`` keys and the dataset seeds its frame sampler and
transforms from them. The result does not depend on the number of workers or processes, and a resumed run, even one
stopped mid-epoch, sees exactly the clips an uninterrupted run would.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np
import torch
from einops import rearrange
from torch.utils.data import Dataset

from data.annotations import Sample
from data.decoding import VideoDecodeError, read_sampled_clip
from data.frame_sampling import dense_indices, segment_indices, view_indices

log = logging.getLogger(__name__)

SAMPLING_MODES = ("dense", "segment")
MISSING_POLICIES = ("error", "skip")
MAX_RETRIES_PER_ITEM = 10


def check_files(samples: Sequence[Sample], on_missing: str = "error", source: str = "dataset") -> list[Sample]:
    """Verify that every listed video exists.

    Args:
        samples: the dataset's samples.
        on_missing: ``"error"`` raises; ``"skip"`` drops missing files and logs a warning with their count.
        source: what to call the list in messages (e.g. the annotation file).

    Returns:
        The samples whose files exist.

    Raises:
        FileNotFoundError: files are missing and ``on_missing="error"``; the message counts them and names up to five.
        ValueError: an unknown ``on_missing``, or no file remains.
    """
    if on_missing not in MISSING_POLICIES:
        raise ValueError(f"on_missing={on_missing!r} is not one of {MISSING_POLICIES}")
    missing = [s.path for s in samples if not os.path.isfile(s.path)]
    if missing:
        message = f"{source}: {len(missing)} of {len(samples)} video files are missing, e.g. {missing[:5]}"
        if on_missing == "error":
            raise FileNotFoundError(message + " (set data.on_missing=skip to drop them)")
        log.warning("%s; skipping them (data.on_missing=skip)", message)
        gone = set(missing)
        samples = [s for s in samples if s.path not in gone]
    if not samples:
        raise ValueError(f"{source}: no video files to read")
    return list(samples)


class VideoClipDataset(Dataset):
    """Clips of ``num_frames`` frames with their labels.

    Args:
        samples: videos and labels (see :mod:`data.annotations`).
        num_frames: frames per clip.
        frame_stride: frames between sampled frames (``dense`` sampling only).
        sampling: ``"dense"`` (random start in training, centred in evaluation) or ``"segment"`` (TSN).
        train: training mode: random sampling and retry-on-decode-error.
        transform: maps a uint8 clip (c t h w) to the model input; identity if None.
        short_video: policy for videos shorter than the clip span, ``"loop"`` or ``"clamp"``.
        max_decode_failures: distinct undecodable files tolerated per process before raising.
        seed: base seed of the per-item randomness in training.
        cache_videos: keep every decoded video (all its frames, uint8) in this process after its first read, and
            sample later clips from memory. For small datasets (Moving MNIST: 590 MB for 6,000 clips), where
            decoding costs more than the model step; each loader process holds its own cache, so use it with
            persistent workers. Items are identical with and without it.
        reverse_labels: time-reversal augmentation in training: with probability 1/2 (drawn from the item's seeded
            RNG) the clip is played backwards and its label ``y`` becomes ``reverse_labels[y]`` (for direction labels,
            the opposite direction: see :func:`data.compass.opposite_directions`). None: off.
        temporal_views: the multi-view test (evaluation only): every item holds this many windows of the video
            (:func:`data.frame_sampling.view_indices`), each passed through ``transform``, which returns its spatial
            crops (v_s c t h w) (:func:`data.transforms.spatial_view_transform`); ``video`` is then (v c t h w) with
            v = temporal × spatial views, temporal-major. None: one clip per item.

    Items are dicts: ``video`` (c t h w) float32 after ``transform``, ``label`` int64, ``index`` of the sample actually
    returned, and ``decode_failures``: how many files failed before this item was read.

    Raises:
        ValueError: an unknown ``sampling`` mode.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        num_frames: int,
        frame_stride: int = 1,
        sampling: str = "dense",
        train: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        short_video: str = "loop",
        max_decode_failures: int = 10,
        seed: int = 0,
        cache_videos: bool = False,
        reverse_labels: Sequence[int] | None = None,
        temporal_views: int | None = None,
    ) -> None:
        if sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling={sampling!r} is not one of {SAMPLING_MODES}")
        if temporal_views is not None and (train or temporal_views < 1):
            raise ValueError(f"data.test_views.temporal={temporal_views}: multi-view clips are for evaluation, >= 1")
        if temporal_views is not None and temporal_views > 1 and sampling != "dense":
            raise ValueError(f"data.test_views.temporal={temporal_views} needs dense sampling, not {sampling!r}")
        self.samples = list(samples)
        self.num_frames = num_frames
        self.frame_stride = frame_stride
        self.sampling = sampling
        self.train = train
        self.transform = transform
        self.short_video = short_video
        self.max_decode_failures = max_decode_failures
        self.seed = seed
        self.failed_files: set[str] = set()
        self.cache_videos = cache_videos
        self.reverse_labels = None if reverse_labels is None else [int(label) for label in reverse_labels]
        self._videos: dict[int, torch.Tensor] = {}  # index -> uint8 (c T h w), filled on first read
        self.temporal_views = temporal_views

    def __len__(self) -> int:
        return len(self.samples)

    def _sampler(self, rng: np.random.Generator | None) -> Callable[[int], list[int]]:
        if self.sampling == "dense":
            return partial(dense_indices, num_frames=self.num_frames, frame_stride=self.frame_stride,
                           train=self.train, rng=rng, short_video=self.short_video)
        return partial(segment_indices, num_frames=self.num_frames, train=self.train, rng=rng)

    def _decode_views(self, index: int, sample: Sample) -> list[torch.Tensor]:
        """The multi-view test's windows (:func:`data.frame_sampling.view_indices`) of one video: a list of uint8 clips
        (c t h w), each frame decoded once."""
        windows: list[list[int]] = []

        def union(num_frames: int) -> list[int]:
            if self.sampling == "dense":
                windows.extend(view_indices(num_frames, self.num_frames, self.frame_stride, self.temporal_views,
                                            self.short_video))
            else:
                windows.append(segment_indices(num_frames, self.num_frames, train=False))
            return sorted({i for window in windows for i in window})

        if self.cache_videos:
            video = self._cached_video(index, sample)
            frames, decoded = video, union(video.shape[1])
            position = {i: i for i in decoded}
        else:
            frames, decoded = read_sampled_clip(sample.path, union)
            position = {i: k for k, i in enumerate(decoded)}
        return [frames[:, [position[i] for i in window]] for window in windows]

    def _decode(self, index: int, sample: Sample, rng: np.random.Generator | None) -> torch.Tensor:
        """The sampled frames (c t h w) uint8 of one video, from the cache when ``cache_videos`` is on."""
        if not self.cache_videos:
            return read_sampled_clip(sample.path, self._sampler(rng))[0]
        video = self._cached_video(index, sample)
        return video[:, self._sampler(rng)(video.shape[1])]  # (c t h w)

    def _cached_video(self, index: int, sample: Sample) -> torch.Tensor:
        """Every frame (c T h w) uint8 of one video, decoded on its first read and kept (``cache_videos``)."""
        video = self._videos.get(index)
        if video is None:
            video = self._videos[index] = read_sampled_clip(sample.path, lambda num_frames: range(num_frames))[0]
        return video

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Read one clip; ``key`` is an index, or ``(index, epoch)`` from :class:`data.samplers.EpochShuffleSampler`."""
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        if not self.train:  # evaluation sampling and transforms are deterministic: no RNG to seed
            return self._read(index, None)
        rng = np.random.default_rng([self.seed, epoch, index])
        with torch.random.fork_rng(devices=[]):  # the transforms draw from torch's RNG: seed it per item
            # CPU generator only: torch.manual_seed also queues a lazy CUDA seed (with a formatted stack) per call
            torch.default_generator.manual_seed(int(rng.integers(0, 2**62)))
            return self._read(index, rng)

    def _read(self, index: int, rng: np.random.Generator | None) -> dict[str, torch.Tensor]:
        failures = 0
        candidate = index
        for attempt in range(MAX_RETRIES_PER_ITEM + 1):
            sample = self.samples[candidate]
            try:
                clip = (self._decode(candidate, sample, rng) if self.temporal_views is None
                        else self._decode_views(candidate, sample))
                break
            except VideoDecodeError as err:
                if not self.train:
                    raise
                failures += 1
                self.failed_files.add(sample.path)
                log.warning("decode failure %d (%d distinct files so far): %s", failures, len(self.failed_files), err)
                if len(self.failed_files) > self.max_decode_failures:
                    raise RuntimeError(
                        f"{len(self.failed_files)} video files failed to decode, more than "
                        f"data.max_decode_failures={self.max_decode_failures}: {sorted(self.failed_files)[:10]}"
                    ) from err
                candidate = int(rng.integers(0, len(self.samples)))  # another index, chosen by the seeded rng
        else:
            raise RuntimeError(f"{MAX_RETRIES_PER_ITEM + 1} consecutive decode failures starting at index {index}; "
                               f"failed files: {sorted(self.failed_files)[:10]}")
        label = sample.label
        if self.train and self.reverse_labels is not None and rng.random() < 0.5:
            clip, label = clip.flip(1), self.reverse_labels[label]  # (c t h w) backwards in time
        if self.temporal_views is not None:  # views (v c t h w), temporal-major: the transform gives the crops
            views = [self.transform(window) if self.transform is not None else window[None] for window in clip]
            video = rearrange(torch.stack(views), "tv sv c t h w -> (tv sv) c t h w")
        else:
            video = self.transform(clip) if self.transform is not None else clip
        return {
            "video": video,
            "label": torch.tensor(label, dtype=torch.long),
            "index": torch.tensor(candidate, dtype=torch.long),
            "decode_failures": torch.tensor(failures, dtype=torch.long),
        }
