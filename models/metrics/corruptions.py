"""Known corruptions of a clip, the controls every temporal metric is validated against.

Each takes float video (b c t h w) in [0, 1] and returns a corrupted copy of the same shape (paired metrics need the
reference's shape), deterministically (fixed seeds). ``tests/test_metrics_corruptions.py`` checks that every metric
ranks them as it should on real clips; ``scripts/bench_metrics.py --corruptions`` prints the full table.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from einops import rearrange


def shuffle_frames(video: torch.Tensor) -> torch.Tensor:
    """Frames in a fixed random order (seed 0)."""
    order = torch.randperm(video.shape[2], generator=torch.Generator().manual_seed(0))
    return video[:, :, order]


def brightness_flicker(video: torch.Tensor) -> torch.Tensor:
    """+0.05, −0.05, +0.05, ... added to every pixel of successive frames (clamped to [0, 1])."""
    offsets = 0.05 * (-1.0) ** torch.arange(video.shape[2], dtype=video.dtype)
    return (video + rearrange(offsets, "t -> 1 1 t 1 1")).clamp(0, 1)


def frame_noise(video: torch.Tensor) -> torch.Tensor:
    """Gaussian noise of std 0.03 on every pixel (seed 0, clamped to [0, 1])."""
    noise = torch.randn(video.shape, generator=torch.Generator().manual_seed(0), dtype=video.dtype)
    return (video + 0.03 * noise).clamp(0, 1)


def drop_frame(video: torch.Tensor) -> torch.Tensor:
    """Frame t//2 removed; the last frame repeated to keep the length."""
    k = video.shape[2] // 2
    return torch.cat([video[:, :, :k], video[:, :, k + 1:], video[:, :, -1:]], dim=2)


def duplicate_frame(video: torch.Tensor) -> torch.Tensor:
    """Frame t//2 + 1 replaced by a copy of frame t//2: a stall, then a jump."""
    k = video.shape[2] // 2
    corrupted = video.clone()
    corrupted[:, :, k + 1] = video[:, :, k]
    return corrupted


def freeze(video: torch.Tensor) -> torch.Tensor:
    """The first frame repeated for the whole clip."""
    return video[:, :, :1].expand_as(video).contiguous()


CORRUPTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "shuffle": shuffle_frames, "flicker": brightness_flicker, "noise": frame_noise, "drop": drop_frame,
    "duplicate": duplicate_frame, "freeze": freeze,
}


def square_clip(frames: torch.Tensor, size: int = 64) -> torch.Tensor:
    """A decoded clip as the corruption tables use it: centre square crop, antialiased bilinear resize.

    Args:
        frames: uint8 (c t h w), as :func:`data.decoding.read_clip` returns it.
        size: output side in pixels.

    Returns:
        float64 (1 c t size size) in [0, 1].
    """
    _, _, h, w = frames.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = frames[:, :, top:top + side, left:left + side].to(torch.float32) / 255
    if side != size:
        square = rearrange(F.interpolate(rearrange(square, "c t h w -> t c h w"), size=(size, size),
                                         mode="bilinear", antialias=True), "t c h w -> c t h w")
    return square.clamp(0, 1).to(torch.float64)[None]
