"""Frame-index samplers: pure functions of (video length, clip spec, RNG).

* :func:`dense_indices`: ``num_frames`` frames ``frame_stride`` apart, as in TimeSformer/SlowFast/mmaction2
  ``SampleFrames``: a random start for training, the centred clip for evaluation.
* :func:`segment_indices`: TSN uniform segment sampling (Wang et al. 2016), used for Something-Something v2:
  the video is cut into ``num_frames`` equal segments and one frame is taken from each (random in training, the
  segment centre in evaluation).

Videos shorter than the clip span follow ``short_video``:

* ``"loop"`` (default, mmaction2's ``out_of_bound_opt='loop'``): indices wrap around, ``i mod L``;
* ``"clamp"``: indices past the end repeat the last frame, ``min(i, L - 1)``.

Neither ever raises for a short video; an empty video (L = 0) raises ``ValueError``.
"""

from __future__ import annotations

import numpy as np

SHORT_VIDEO_POLICIES = ("loop", "clamp")


def clip_span(num_frames: int, frame_stride: int) -> int:
    """Number of video frames a dense clip covers: ``(num_frames - 1) * frame_stride + 1``."""
    return (num_frames - 1) * frame_stride + 1


def _check(video_len: int, num_frames: int, frame_stride: int = 1, short_video: str = "loop") -> None:
    if video_len < 1:
        raise ValueError(f"video has {video_len} frames; cannot sample a clip from an empty video")
    if num_frames < 1:
        raise ValueError(f"num_frames={num_frames} must be >= 1")
    if frame_stride < 1:
        raise ValueError(f"frame_stride={frame_stride} must be >= 1")
    if short_video not in SHORT_VIDEO_POLICIES:
        raise ValueError(f"short_video={short_video!r} is not one of {SHORT_VIDEO_POLICIES}")


def _fit(indices: np.ndarray, video_len: int, short_video: str) -> list[int]:
    if short_video == "loop":
        indices = indices % video_len
    else:
        indices = np.minimum(indices, video_len - 1)
    return [int(i) for i in indices]


def dense_indices(
    video_len: int,
    num_frames: int,
    frame_stride: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    short_video: str = "loop",
) -> list[int]:
    """Indices of a dense clip.

    Args:
        video_len: frames in the video (>= 1).
        num_frames: frames in the clip.
        frame_stride: gap between consecutive sampled frames, in frames.
        train: random start (uniform over all starts that fit) if True; the centred clip otherwise.
        rng: source of randomness; required when ``train`` is True.
        short_video: ``"loop"`` or ``"clamp"`` for videos shorter than the clip span.

    Returns:
        ``num_frames`` 0-based frame indices in temporal order, each in [0, video_len).

    Raises:
        ValueError: a non-positive argument, an unknown policy, or ``train`` without ``rng``.
    """
    _check(video_len, num_frames, frame_stride, short_video)
    span = clip_span(num_frames, frame_stride)
    max_start = max(video_len - span, 0)
    if train:
        if rng is None:
            raise ValueError("dense_indices(train=True) needs an rng")
        start = int(rng.integers(0, max_start + 1))
    else:
        start = max_start // 2
    return _fit(start + frame_stride * np.arange(num_frames), video_len, short_video)


def segment_indices(
    video_len: int,
    num_frames: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
) -> list[int]:
    """TSN uniform segment sampling: one frame from each of ``num_frames`` equal segments.

    Segment k covers frames [k·L/num_frames, (k+1)·L/num_frames). Training takes a uniformly random frame in each
    segment, evaluation its centre frame. A video shorter than ``num_frames`` repeats frames (each index is still
    in range), so it never fails.

    Args:
        video_len: frames in the video (>= 1).
        num_frames: number of segments, i.e. frames in the clip.
        train: random frame per segment if True, segment centres otherwise.
        rng: source of randomness; required when ``train`` is True.

    Returns:
        ``num_frames`` non-decreasing 0-based indices in [0, video_len).

    Raises:
        ValueError: a non-positive argument, or ``train`` without ``rng``.
    """
    _check(video_len, num_frames)
    seg_len = video_len / num_frames
    starts = seg_len * np.arange(num_frames)
    if train:
        if rng is None:
            raise ValueError("segment_indices(train=True) needs an rng")
        offsets = rng.random(num_frames) * seg_len
    else:
        offsets = np.full(num_frames, seg_len / 2)
    indices = np.floor(starts + offsets).astype(np.int64)
    return [int(i) for i in np.clip(indices, 0, video_len - 1)]


def view_starts(video_len: int, num_frames: int, frame_stride: int, num_views: int) -> list[int]:
    """First frame of each of ``num_views`` test windows of a dense clip (the multi-view test).

    The windows are spread uniformly from the first possible start to the last, ``round(i · max_start / (N − 1))``
    for view i of N (PySlowFast's ``get_start_end_idx`` for the test clips); one view is the centred clip that
    :func:`dense_indices` takes in evaluation. A video shorter than the span gives start 0 for every view.

    Args:
        video_len: frames in the video (>= 1).
        num_frames, frame_stride: the clip, as in :func:`dense_indices`.
        num_views: windows per video (>= 1); TimeSformer tests 1, SlowFast 10.

    Returns:
        ``num_views`` non-decreasing 0-based start frames.

    Raises:
        ValueError: a non-positive argument.
    """
    _check(video_len, num_frames, frame_stride)
    if num_views < 1:
        raise ValueError(f"num_views={num_views} must be >= 1")
    max_start = max(video_len - clip_span(num_frames, frame_stride), 0)
    if num_views == 1:
        return [max_start // 2]
    return [int(round(i * max_start / (num_views - 1))) for i in range(num_views)]


def view_indices(video_len: int, num_frames: int, frame_stride: int, num_views: int,
                 short_video: str = "loop") -> list[list[int]]:
    """Frame indices of every test window (:func:`view_starts`), each like :func:`dense_indices`' clip."""
    _check(video_len, num_frames, frame_stride, short_video)
    return [_fit(start + frame_stride * np.arange(num_frames), video_len, short_video)
            for start in view_starts(video_len, num_frames, frame_stride, num_views)]
