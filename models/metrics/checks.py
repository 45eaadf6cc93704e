"""Input checks shared by every metric: wrong shapes, dtypes and ranges raise instead of giving a wrong number."""

from __future__ import annotations

import torch

# Tolerance on the [0, 1] range: decoders and resamplers overshoot by a rounding error, never by more.
RANGE_TOLERANCE = 1e-4


def check_video(video: torch.Tensor, name: str = "video", min_frames: int = 1) -> None:
    """Check that ``video`` is a float batch of clips (b c t h w) with values in [0, 1].

    Args:
        video: the tensor to check.
        name: the argument's name, used in the error message.
        min_frames: the fewest frames ``t`` the metric needs.

    Raises:
        TypeError: ``video`` is not a floating-point tensor (e.g. uint8: divide by 255 first).
        ValueError: it is not 5-D, has no clips, fewer than ``min_frames`` frames, non-finite values, or values
            outside [0, 1].
    """
    if not isinstance(video, torch.Tensor) or not video.is_floating_point():
        kind = video.dtype if isinstance(video, torch.Tensor) else type(video).__name__
        raise TypeError(f"{name} must be a float tensor (b c t h w) in [0, 1], got {kind}; "
                        "convert uint8 frames with video.float() / 255")
    if video.ndim != 5:
        raise ValueError(f"{name} must have shape (b c t h w), got {tuple(video.shape)}")
    if video.shape[0] == 0:
        raise ValueError(f"{name} holds no clips: shape {tuple(video.shape)}")
    if video.shape[2] < min_frames:
        raise ValueError(f"{name} has {video.shape[2]} frames; this metric needs at least {min_frames}")
    if not torch.isfinite(video).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    low, high = float(video.min()), float(video.max())
    if low < -RANGE_TOLERANCE or high > 1 + RANGE_TOLERANCE:
        raise ValueError(f"{name} values must lie in [0, 1], got [{low:.4g}, {high:.4g}]; "
                         "map [-1, 1] outputs with (x + 1) / 2")


def check_pair(video: torch.Tensor, reference: torch.Tensor, min_frames: int = 1) -> None:
    """Check a generated batch and its reference batch: both valid videos of the same shape.

    Raises:
        TypeError, ValueError: as :func:`check_video`, or the two shapes differ.
    """
    check_video(video, "video", min_frames)
    check_video(reference, "reference", min_frames)
    if video.shape != reference.shape:
        raise ValueError(f"video {tuple(video.shape)} and reference {tuple(reference.shape)} must have the same shape "
                         "(b c t h w)")


def to_uint8_frames(video: torch.Tensor) -> torch.Tensor:
    """Quantise a [0, 1] float video to uint8 the way a video file would store it.

    Args:
        video: float (b c t h w) in [0, 1].

    Returns:
        uint8 tensor (b c t h w) in [0, 255], ``round(255 · x)``.
    """
    return (video.clamp(0, 1) * 255).round().to(torch.uint8)
