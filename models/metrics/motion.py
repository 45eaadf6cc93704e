"""Motion direction of a clip, measured without learned weights, and the accuracy of labelled motion.

``flow_direction_accuracy`` answers "does the clip move the way its label says?" with optical flow alone, so no
trained network can be fooled into agreeing (the classifier view is ``classifier_accuracy``). It is this project's
own measure, built for Moving MNIST ``direction``-style labels (a class per compass direction), not a published
metric.

**Dominant motion** of a clip (``estimator="dis"``, the default): for every consecutive frame pair, OpenCV DIS flow
(:func:`models.metrics.flow.dis_flow`) from frame t to t+1 is averaged over the pixels of frame t, each weighted by
its grey intensity in [0, 1]. On a dark background that is the foreground: a moving digit, not the static black
canvas, which DIS reports as zero motion and would otherwise dilute the mean. The clip's dominant motion is the
weight-pooled mean over all pairs, in pixels per frame, ``(dx, dy)`` with x to the right and y *down*.
``estimator="centroid"`` is a cross-check: the least-squares slope of the intensity centroid over frames. It is
exact for a rigid shape on a black canvas (the centroid moves with the shape), but content that appears or vanishes
moves it too.

**Thresholds.**

* *Sector:* a clip is correct when its dominant motion lies within ±180°/K of its label's angle, K being the
  number of direction classes (±22.5° for 8 directions): the sectors tile the circle, so each angle belongs to one
  class.
* *Frozen clips:* a dominant motion slower than ``min_speed`` (default 1 px/frame) counts as wrong, never as a
  direction. Moving MNIST ``direction`` moves at 3 px/frame; DIS on a still clip gives a few hundredths of a pixel,
  so 1 px/frame separates "barely moves" from both with a wide margin (a third of the data's speed).

**Labels to angles** come from the dataset's own class names (``E``, ``NE``, ``N``, ... in ``classes_direction.txt``
or the ``classes.txt`` the sample writer puts beside ``samples.txt``), parsed by :func:`compass_angles` as compass
points: east is 0°, angles grow counter-clockwise as seen on screen (north, up, is 90°).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from models.metrics.checks import check_video
from models.metrics.flow import dis_flow, grey_frames
from data.compass import COMPASS_POINTS, compass_angles  # the dataset's compass names, re-exported

ESTIMATORS = ("dis", "centroid")
DEFAULT_MIN_SPEED = 1.0  # pixels per frame; Moving MNIST direction moves at 3



def dominant_motion(video: torch.Tensor, estimator: str = "dis") -> torch.Tensor:
    """The dominant motion of each clip, in pixels per frame.

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3, t ≥ 2; a bright foreground on a dark background.
        estimator: ``"dis"`` (intensity-weighted mean DIS flow) or ``"centroid"`` (slope of the intensity
            centroid); see the module docstring.

    Returns:
        float64 tensor (b 2): ``(dx, dy)`` in pixels per frame, x to the right, y down. A black clip gives (0, 0).

    Raises:
        ValueError: an unknown ``estimator``, or a video that :func:`models.metrics.checks.check_video` rejects.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r} is not one of {ESTIMATORS}")
    check_video(video, min_frames=2)
    grey = grey_frames(video)  # uint8 (b t h w)
    weights = grey.astype(np.float64) / 255.0  # (b t h w) foreground weights in [0, 1]
    b, t, h, w = grey.shape
    motion = np.zeros((b, 2), dtype=np.float64)
    if estimator == "dis":
        for i in range(b):
            flow_sum, weight_sum = np.zeros(2), 0.0
            for k in range(t - 1):
                flow = dis_flow(grey[i, k], grey[i, k + 1]).astype(np.float64)  # (h w 2)
                flow_sum += np.einsum("hw,hwc->c", weights[i, k], flow)
                weight_sum += weights[i, k].sum()
            motion[i] = flow_sum / weight_sum if weight_sum > 0 else 0.0
        return torch.from_numpy(motion)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    mass = weights.sum(axis=(2, 3))  # (b t)
    safe = np.where(mass > 0, mass, 1.0)
    cx = np.einsum("bthw,hw->bt", weights, xs) / safe  # (b t)
    cy = np.einsum("bthw,hw->bt", weights, ys) / safe
    frames = np.arange(t, dtype=np.float64) - (t - 1) / 2  # centred frame index
    slope = lambda c: (c * frames).sum(axis=1) / np.square(frames).sum()  # least-squares slope, px/frame
    motion = np.stack([slope(cx), slope(cy)], axis=1)  # (b 2)
    motion[(mass == 0).any(axis=1)] = 0.0  # a frame with no foreground: no trajectory
    return torch.from_numpy(motion)


def motion_angles(motion: torch.Tensor) -> torch.Tensor:
    """Angles of motion vectors (b 2) ``(dx, dy)`` (y down), in degrees counter-clockwise from east, in [0, 360)."""
    return torch.rad2deg(torch.atan2(-motion[:, 1], motion[:, 0])) % 360.0


def flow_direction_accuracy(
    video: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    class_angles: Sequence[float] | np.ndarray,
    min_speed: float = DEFAULT_MIN_SPEED,
    estimator: str = "dis",
    per_clip: bool = False,
) -> torch.Tensor:
    """Fraction of labelled clips whose dominant motion lies in their label's direction sector.

    Higher is better; chance is 1/K for K direction classes, and a clip slower than ``min_speed`` is wrong.

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3, t ≥ 2.
        labels: b class indices into ``class_angles``.
        class_angles: K angles in degrees counter-clockwise from east (:func:`compass_angles` of the class names).
        min_speed: slowest dominant motion that counts as moving, in pixels per frame.
        estimator: ``"dis"`` or ``"centroid"`` (see :func:`dominant_motion`).
        per_clip: return the (b,) per-clip hits instead of their mean.

    Returns:
        float64 scalar tensor in [0, 1], or (b,) of 0/1 with ``per_clip``.

    Raises:
        ValueError: labels outside [0, K), a label count that differs from b, fewer than 2 classes, or a negative
            ``min_speed``.
    """
    return direction_hits(dominant_motion(video, estimator), labels, class_angles, min_speed, per_clip)


def direction_hits(
    motion: torch.Tensor,
    labels: torch.Tensor | Sequence[int],
    class_angles: Sequence[float] | np.ndarray,
    min_speed: float = DEFAULT_MIN_SPEED,
    per_clip: bool = False,
) -> torch.Tensor:
    """:func:`flow_direction_accuracy` from dominant motions already measured (:func:`dominant_motion`).

    Args:
        motion: float tensor (b 2) of ``(dx, dy)`` in pixels per frame, y down.
        labels, class_angles, min_speed, per_clip: as for :func:`flow_direction_accuracy`.

    Returns:
        float64 scalar tensor in [0, 1], or (b,) of 0/1 with ``per_clip``.

    Raises:
        ValueError: as for :func:`flow_direction_accuracy`.
    """
    angles = np.asarray(class_angles, dtype=np.float64)
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    if len(angles) < 2:
        raise ValueError(f"class_angles has {len(angles)} entries; direction accuracy needs at least 2 classes")
    if labels.shape != (motion.shape[0],):
        raise ValueError(f"labels of shape {tuple(labels.shape)} do not match {motion.shape[0]} clips")
    if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < len(angles):
        raise ValueError(f"labels must lie in [0, {len(angles)}) (one angle per class), got {labels.tolist()}")
    if min_speed < 0:
        raise ValueError(f"min_speed={min_speed} must be >= 0 (pixels per frame)")
    speed = motion.norm(dim=1)  # (b,)
    target = torch.from_numpy(angles)[labels]  # (b,)
    difference = (motion_angles(motion) - target + 180.0) % 360.0 - 180.0  # signed, in [-180, 180)
    half_sector = 180.0 / len(angles)
    hits = ((difference.abs() < half_sector) & (speed >= min_speed) & (speed > 0)).double()  # (b,); 0 has no angle
    return hits if per_clip else hits.mean()


__all__ = [
    "COMPASS_POINTS", "ESTIMATORS", "compass_angles", "direction_hits", "dominant_motion", "flow_direction_accuracy",
    "motion_angles",
]
