"""Clip transforms built from torchvision.transforms.v2, applied with the same random parameters to every frame.

* Training (TimeSformer recipe): short-side scale jitter in ``[min_scale, max_scale]`` pixels, random square crop of
  ``crop_size``, optional horizontal flip, then float conversion and normalisation.
* Evaluation: resize the short side to ``resize_size``, centre crop ``crop_size``, normalise.

Horizontal flip is a switch because it changes the label of direction tasks (left ↔ right motion, as in
Something-Something v2); data configs for such tasks set ``flip: false``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from einops import rearrange
from torchvision.transforms import v2


class ClipTransform:
    """Apply a torchvision v2 pipeline to a (c t h w) uint8 clip.

    Args:
        ops: torchvision v2 transforms that accept (t c h w) tensors.

    Call:
        clip: uint8 tensor (c t h w) in [0, 255].
        Returns a float32 tensor (c t h' w'), normalised by the pipeline's ``Normalize``.

    Raises:
        ValueError: the input is not a 4-D uint8 tensor.
    """

    def __init__(self, ops: Sequence[v2.Transform]) -> None:
        self.pipeline = v2.Compose(list(ops))

    def __call__(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.ndim != 4 or clip.dtype != torch.uint8:
            raise ValueError(f"expected a uint8 clip (c t h w), got dtype={clip.dtype} shape={tuple(clip.shape)}")
        frames = rearrange(clip, "c t h w -> t c h w")
        out = self.pipeline(frames)  # a plain tensor (t c h w) is treated as a batch of images sharing parameters
        return rearrange(out, "t c h w -> c t h w").contiguous()

    def __repr__(self) -> str:
        return f"ClipTransform({self.pipeline})"


def _finish(mean: Sequence[float], std: Sequence[float]) -> list[v2.Transform]:
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))]


def train_transform(
    crop_size: int,
    min_scale: int,
    max_scale: int,
    flip: bool,
    mean: Sequence[float],
    std: Sequence[float],
) -> ClipTransform:
    """Short-side scale jitter + random crop (+ flip) + normalise.

    Args:
        crop_size: output side in pixels.
        min_scale, max_scale: the short side is resized to a uniform integer in [min_scale, max_scale] pixels.
        flip: random horizontal flip with p = 0.5. Keep it off for tasks whose label depends on left/right.
        mean, std: per-channel normalisation of [0, 1] pixels.

    Raises:
        ValueError: ``min_scale > max_scale`` or ``min_scale < crop_size``.
    """
    if min_scale > max_scale:
        raise ValueError(f"train_scale min={min_scale} exceeds max={max_scale}")
    if min_scale < crop_size:
        raise ValueError(f"train_scale min={min_scale} is smaller than crop_size={crop_size}")
    ops: list[v2.Transform] = [
        v2.RandomShortestSize(min_size=list(range(min_scale, max_scale + 1)), antialias=True),
        v2.RandomCrop(crop_size),
    ]
    if flip:
        ops.append(v2.RandomHorizontalFlip(p=0.5))
    return ClipTransform(ops + _finish(mean, std))


def eval_transform(crop_size: int, resize_size: int, mean: Sequence[float], std: Sequence[float]) -> ClipTransform:
    """Resize the short side to ``resize_size`` pixels, centre crop ``crop_size``, normalise.

    Raises:
        ValueError: ``resize_size < crop_size``.
    """
    if resize_size < crop_size:
        raise ValueError(f"resize_size={resize_size} is smaller than crop_size={crop_size}")
    ops = [v2.Resize(resize_size, antialias=True), v2.CenterCrop(crop_size)]
    return ClipTransform(ops + _finish(mean, std))


SPATIAL_VIEWS = (1, 3)


def spatial_view_transform(crop_size: int, resize_size: int, mean: Sequence[float], std: Sequence[float],
                           num_crops: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """The multi-view test's spatial crops: resize the short side to ``resize_size``, then ``num_crops`` square crops
    of ``crop_size`` along the long side, normalised.

    One crop is the centre crop of :func:`eval_transform`. Three are TimeSformer's/PySlowFast's ``uniform_crop``
    with ``spatial_idx`` 0, 1, 2: the start (left, or top for a portrait video), the centre and the end (right, or
    bottom) of the long side, each centred on the short side.

    Returns:
        A callable mapping a uint8 clip (c t h w) to float32 views (v c t crop crop), v = ``num_crops``.

    Raises:
        ValueError: ``num_crops`` is not 1 or 3, or ``resize_size < crop_size``.
    """
    if num_crops not in SPATIAL_VIEWS:
        raise ValueError(f"data.test_views.spatial={num_crops} must be one of {SPATIAL_VIEWS}")
    if resize_size < crop_size:
        raise ValueError(f"resize_size={resize_size} is smaller than crop_size={crop_size}")
    resize = ClipTransform([v2.Resize(resize_size, antialias=True)])
    finish = ClipTransform(_finish(mean, std))

    def views(clip: torch.Tensor) -> torch.Tensor:
        frames = resize(clip)  # (c t h w), uint8
        h, w = frames.shape[-2:]
        top, left = (h - crop_size) // 2, (w - crop_size) // 2
        if num_crops == 1:
            offsets = [(top, left)]
        elif h > w:  # portrait: crops along the height
            offsets = [(0, left), (top, left), (h - crop_size, left)]
        else:
            offsets = [(top, 0), (top, left), (top, w - crop_size)]
        return torch.stack([finish(frames[..., y:y + crop_size, x:x + crop_size].contiguous()) for y, x in offsets])

    return views
