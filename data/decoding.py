"""Decode frames from video files: decord for speed, PyAV as the reference decoder.

decord's ``(t h w c) uint8`` output is converted once, here, to the project's channel-first ``(c t h w)`` layout.
Readers are opened inside the caller (a Dataset's ``__getitem__``) with one decoding thread, so each DataLoader worker
owns its decoders and no handle crosses a fork.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import decord
import numpy as np
import torch
from einops import rearrange


class VideoDecodeError(RuntimeError):
    """A video file is missing, cannot be opened, or cannot return the requested frames.

    Attributes:
        path: the file that failed.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path


def _open(path: str) -> decord.VideoReader:
    if not os.path.isfile(path):
        raise VideoDecodeError(path, "file not found")
    try:
        return decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    except (RuntimeError, decord.DECORDError) as err:  # decord raises DECORDError for unreadable containers
        raise VideoDecodeError(path, f"cannot open video ({err.__class__.__name__}: {str(err)[:200]})") from err


def video_num_frames(path: str) -> int:
    """Number of frames decord reports for ``path``.

    Raises:
        VideoDecodeError: the file is missing or cannot be opened.
    """
    return len(_open(path))


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, read from its container without decoding every frame.

    Attributes:
        num_frames: frame count (frames).
        height, width: frame size (pixels).
        fps: average frame rate (frames per second).
    """

    num_frames: int
    height: int
    width: int
    fps: float


def video_info(path: str) -> VideoInfo:
    """Frame count, frame size and frame rate of ``path``, as decord reports them.

    Raises:
        VideoDecodeError: the file is missing, cannot be opened, or has no frames.
    """
    reader = _open(path)
    if len(reader) == 0:
        raise VideoDecodeError(path, "video has no frames")
    height, width = reader[0].shape[:2]
    return VideoInfo(len(reader), int(height), int(width), float(reader.get_avg_fps()))


def read_clip(path: str, indices: Sequence[int]) -> torch.Tensor:
    """Decode the given frames of a video file with decord.

    Args:
        path: a video file FFmpeg can read.
        indices: 0-based frame indices in output order; repeats allowed.

    Returns:
        uint8 tensor (c t h w) in [0, 255], RGB, with t == len(indices).

    Raises:
        VideoDecodeError: the file cannot be opened, an index is out of range, or decoding fails.
    """
    return read_sampled_clip(path, lambda _num_frames: indices)[0]


def read_sampled_clip(path: str, sample: Callable[[int], Sequence[int]]) -> tuple[torch.Tensor, list[int]]:
    """Open a video once, choose indices from its length, and decode them.

    Args:
        path: a video file FFmpeg can read.
        sample: maps the video's frame count to 0-based indices (e.g. a partial of
            :func:`data.frame_sampling.dense_indices`).

    Returns:
        ``(frames, indices)``: uint8 tensor (c t h w) in [0, 255], RGB, and the indices used.

    Raises:
        VideoDecodeError: the file cannot be opened, has no frames, an index is out of range, or decoding fails.
    """
    reader = _open(path)
    num_frames = len(reader)
    if num_frames == 0:
        raise VideoDecodeError(path, "video has no frames")
    indices = [int(i) for i in sample(num_frames)]
    bad = [i for i in indices if not 0 <= i < num_frames]
    if bad:
        raise VideoDecodeError(path, f"frame indices {bad[:5]} out of range for a {num_frames}-frame video")
    try:
        frames = reader.get_batch(indices).asnumpy()  # (t h w c) uint8
    except (RuntimeError, decord.DECORDError) as err:
        raise VideoDecodeError(path, f"decoding failed ({err.__class__.__name__}: {str(err)[:200]})") from err
    return rearrange(torch.from_numpy(frames), "t h w c -> c t h w").contiguous(), indices


def read_clip_pyav(path: str, indices: Sequence[int]) -> torch.Tensor:
    """Reference decoder: decode every frame in order with PyAV and pick ``indices``.

    Slow (decodes the whole stream) and simple, which is the point: it is the ground truth for decord.

    Args:
        path: a video file FFmpeg can read.
        indices: 0-based frame indices in output order; repeats allowed.

    Returns:
        uint8 tensor (c t h w) in [0, 255], RGB.

    Raises:
        VideoDecodeError: the file cannot be opened or an index is past the last decoded frame.
    """
    import av  # imported lazily: only the reference path needs it

    wanted = set(int(i) for i in indices)
    frames: dict[int, np.ndarray] = {}
    try:
        with av.open(path) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    frames[i] = frame.to_ndarray(format="rgb24")  # (h w c)
                if len(frames) == len(wanted):
                    break
    except (av.FFmpegError, OSError) as err:
        raise VideoDecodeError(path, f"PyAV cannot decode ({err})") from err
    missing = sorted(wanted - frames.keys())
    if missing:
        raise VideoDecodeError(path, f"frame indices {missing[:5]} not found by PyAV")
    clip = np.stack([frames[int(i)] for i in indices])  # (t h w c)
    return rearrange(torch.from_numpy(clip), "t h w c -> c t h w").contiguous()
