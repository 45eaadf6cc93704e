"""A set of videos to evaluate: a folder or a list file, checked up front, decoded in batches by the data path.

Accepted forms of ``--videos`` / ``--reference``:

* a **list file** (``path label`` lines or a CSV, as :func:`data.annotations.read_list_file` reads; paths relative to
  the file's folder): labelled clips, e.g. the ``samples.txt`` that ``scripts/sample_videos.py`` writes;
* a **folder per class** (``root/<class>/<video>``): labelled clips, classes in sorted order;
* a **flat folder** of video files: unlabelled clips in sorted order.

Every file is probed before any metric runs, so an empty set, a missing or corrupt file, or clips shorter than
requested fail at once with the offending file named, never half-way or as a wrong number.

Clips may differ in frame size (real footage cut from sources of several resolutions). :func:`iter_batches` then
yields batches of one size each, in order: per-clip metrics run at each clip's native size, and the set-level
extractors (recognition classifier, FVD detectors, image encoders) resize to the input size they state.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from data.annotations import VIDEO_EXTENSIONS, Sample, find_class_names, read_classes, read_folder_tree, read_list_file
from data.decoding import VideoDecodeError, read_clip, video_info


@dataclass(frozen=True)
class VideoSet:
    """Probed videos that hold at least ``num_frames`` frames each.

    Attributes:
        source: the folder or list file given.
        paths: the video files, in evaluation order.
        labels: one integer label per video, or None for an unlabelled folder.
        num_frames: frames evaluated per clip (``num_frames`` from ``start_frame`` on, in each file).
        height, width: frame size of the first clip (pixels).
        fps: frame rate of the first file (frames per second).
        class_names: one name per label index (from ``classes``, the class folders, or the list file's
            ``classes.txt`` / ``classes_<task>.txt``), or None when unknown.
        start_frame: first frame evaluated in every clip.
        frame_sizes: ``(height, width)`` of every clip, in order.
    """

    source: str
    paths: list[str]
    labels: list[int] | None
    num_frames: int
    height: int
    width: int
    fps: float
    class_names: list[str] | None = None
    start_frame: int = 0
    frame_sizes: tuple[tuple[int, int], ...] = ()

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """The distinct frame sizes, in order of first appearance."""
        return list(dict.fromkeys(self.frame_sizes or [(self.height, self.width)]))


def _samples(source: Path) -> tuple[list[Sample], bool, list[str] | None]:
    """The samples of ``source``, whether they carry labels, and the class names when they can be found."""
    if source.is_file():
        return read_list_file(source, root=source.parent), True, find_class_names(source)
    if not source.is_dir():
        raise FileNotFoundError(f"{source}: no such folder or list file")
    if any(p.is_dir() for p in source.iterdir()):
        samples, names = read_folder_tree(source)
        return samples, True, names
    files = sorted(p for p in source.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    return [Sample(str(p), -1) for p in files], False, None


def load_video_set(source: str | os.PathLike, num_frames: int | None = None,
                   classes: str | os.PathLike | None = None, start_frame: int = 0) -> VideoSet:
    """Collect and probe the videos of a folder or list file.

    Args:
        source: a list file, a folder per class, or a flat folder of videos (see the module docstring).
        num_frames: frames to evaluate per clip, taken from the start of each file; None requires every file to
            have the same length and uses all of it.
        classes: a file with one class name per line, replacing the names found beside ``source``.
        start_frame: first frame evaluated (0-based), e.g. the first generated frame after k given ones.

    Returns:
        The checked :class:`VideoSet`.

    Raises:
        FileNotFoundError: ``source`` does not exist.
        ValueError: no videos were found; ``num_frames`` < 1; a file is shorter than ``num_frames``; files differ in
            length (when ``num_frames`` is None). The message names the files.
        VideoDecodeError: a file is missing or cannot be opened.
        FileNotFoundError: ``classes`` does not exist.
    """
    source = Path(source)
    samples, labelled, class_names = _samples(source)
    if classes is not None:
        class_names = read_classes(classes)
    if not samples:
        raise ValueError(f"{source}: no video files found (extensions {VIDEO_EXTENSIONS})")
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"num_frames={num_frames} must be at least 1")
    if start_frame < 0:
        raise ValueError(f"start_frame={start_frame} must be >= 0")
    infos = [video_info(sample.path) for sample in samples]
    frame_sizes = tuple((info.height, info.width) for info in infos)
    lengths = [info.num_frames for info in infos]
    if num_frames is None:
        if len(set(lengths)) > 1:
            shortest = min(range(len(samples)), key=lengths.__getitem__)
            raise ValueError(f"{source}: videos differ in length ({min(lengths)} to {max(lengths)} frames, e.g. "
                             f"{samples[shortest].path} has {lengths[shortest]}); pass num_frames to evaluate the "
                             "first N frames of each")
        num_frames = lengths[0] - start_frame
        if num_frames < 1:
            raise ValueError(f"{source}: start_frame={start_frame} leaves no frame of its {lengths[0]}-frame videos")
    short = [(s.path, n) for s, n in zip(samples, lengths) if n < start_frame + num_frames]
    if short:
        after = f" after start_frame={start_frame}" if start_frame else ""
        raise ValueError(f"{source}: {len(short)} videos are shorter than num_frames={num_frames}{after}, e.g. "
                         f"{short[0][0]} has {short[0][1]} frames")
    height, width = frame_sizes[0]
    labels = [s.label for s in samples] if labelled else None
    if labels is not None and class_names is not None and not 0 <= min(labels) <= max(labels) < len(class_names):
        raise ValueError(f"{source}: labels span [{min(labels)}, {max(labels)}] but {len(class_names)} class names "
                         "were given")
    return VideoSet(str(source), [s.path for s in samples], labels, num_frames, height, width, infos[0].fps,
                    class_names if labelled else None, start_frame, frame_sizes)


def iter_batches(videos: VideoSet, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Decode a video set in order, up to ``batch_size`` clips at a time, with decord.

    A batch holds clips of one frame size: where the size changes, the batch ends early. Two sets whose clips match
    in size pair by pair are therefore cut into the same batches.

    Yields:
        ``(video, labels)``: float32 (b c t h w) in [0, 1] (RGB, c = 3) and long (b,) labels, or None when the set
        is unlabelled.

    Raises:
        ValueError: ``batch_size`` < 1.
        VideoDecodeError: a file fails to decode (it was probed, so it changed or is corrupt past its header).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1")
    indices = list(range(videos.start_frame, videos.start_frame + videos.num_frames))
    sizes = videos.frame_sizes or ((videos.height, videos.width),) * len(videos)
    start = 0
    while start < len(videos):
        stop = start + 1
        while stop < min(start + batch_size, len(videos)) and sizes[stop] == sizes[start]:
            stop += 1
        clips = [read_clip(path, indices) for path in videos.paths[start:stop]]  # each uint8 (c t h w)
        video = torch.stack(clips).float().div_(255)  # (b c t h w)
        labels = None if videos.labels is None else torch.tensor(videos.labels[start:stop])
        yield video, labels
        start = stop


__all__ = ["VideoDecodeError", "VideoSet", "iter_batches", "load_video_set"]
