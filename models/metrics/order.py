"""Frame-order controls: the same clips with their order destroyed, to ask whether a score depends on order at all.

* ``forward``: unchanged.
* ``reversed``: frames in reverse order (for Moving MNIST direction, exactly a clip of the opposite direction).
* ``shuffled``: an independent uniformly random permutation of the frames of every clip, drawn from a seeded
  generator (so a rerun scores the same clips); the identity permutation is drawn with probability 1/t!.
* ``frozen``: the first frame repeated: no motion at all, the same content.

A model that reads order loses accuracy on ``reversed`` and ``shuffled`` for a task that needs order (direction), and
keeps it for a task that doesn't (digit). This is the order-destroying check of Arrow of Time (Wei et al., CVPR 2018)
and of the temporal-reasoning benchmarks after it, on our tasks.
"""

from __future__ import annotations

import torch

FRAME_ORDERS = ("forward", "reversed", "shuffled", "frozen")


def reorder(video: torch.Tensor, order: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """Apply a frame-order control to clips.

    Args:
        video: (b c t h w), any dtype and value range.
        order: one of :data:`FRAME_ORDERS`.
        generator: source of the ``shuffled`` permutations (one ``torch.randperm(t)`` per clip, in clip order).

    Returns:
        A new tensor (b c t h w) with the frames of each clip reordered.

    Raises:
        ValueError: ``order`` is unknown or ``video`` is not 5-D.
    """
    if order not in FRAME_ORDERS:
        raise ValueError(f"frame order {order!r} is not one of {FRAME_ORDERS}")
    if video.ndim != 5:
        raise ValueError(f"video must be (b c t h w), got shape {tuple(video.shape)}")
    t = video.shape[2]
    if order == "forward":
        return video.clone()
    if order == "reversed":
        return video.flip(2)
    if order == "frozen":
        return video[:, :, :1].expand_as(video).clone()
    index = torch.stack([torch.randperm(t, generator=generator) for _ in range(video.shape[0])])  # (b t)
    index = index.to(video.device)[:, None, :, None, None].expand_as(video)
    return video.gather(2, index)


__all__ = ["FRAME_ORDERS", "reorder"]
