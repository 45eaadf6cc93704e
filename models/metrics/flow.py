"""OpenCV optical flow, warping and occlusion helpers shared by the temporal metrics.

The published metrics use learned flow (FlowNet2 for the warping error, RAFT for VBench's dynamic degree, AMT for
its motion smoothness). Offline and on CPU this project substitutes OpenCV's DIS flow (Kroeger et al., ECCV 2016)
and says so in every metric's docstring; tOF keeps TecoGAN's own choice, Farneback at the official parameters.

Flow convention (OpenCV's): ``flow[y, x] = (dx, dy)`` in pixels, the displacement that takes pixel ``(x, y)`` of
``prev`` to its match in ``next``, so that ``next(x + dx, y + dy) ≈ prev(x, y)``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from einops import rearrange

from models.metrics.checks import to_uint8_frames

# DIS preset. PRESET_MEDIUM (finest scale 1, 12x12 patches, variational refinement) is both the most accurate and,
# at 64x64, the fastest of the three presets on this machine: ~0.6 ms per 64x64 pair on one core against ~0.7 ms
# (ULTRAFAST) and ~1.9 ms (FAST), because the small image leaves it few pyramid levels. On a smooth random texture
# it recovers integer shifts up to 6 px at 64x64 (8 px at 96x96) to within 0.05 px mean in the interior; larger
# motions per frame pair are beyond its pyramid at these sizes.
DIS_PRESET = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
DIS_PRESET_NAME = "medium"

# TecoGAN's official metric script (thunil/TecoGAN, metrics.py): calcOpticalFlowFarneback(prev, next, None,
# 0.5, 3, 15, 3, 5, 1.2, 0).
FARNEBACK_PARAMS = {"pyr_scale": 0.5, "levels": 3, "winsize": 15, "iterations": 3, "poly_n": 5, "poly_sigma": 1.2,
                    "flags": 0}

# Lai et al. (ECCV 2018) forward-backward consistency check: |F_f + F_b(warped)|² < α(|F_f|² + |F_b(warped)|²) + β.
OCCLUSION_ALPHA = 0.01
OCCLUSION_BETA = 0.5  # pixels²
MOTION_BOUNDARY_ALPHA = 0.01
MOTION_BOUNDARY_BETA = 0.002  # pixels²


def grey_frames(video: torch.Tensor) -> np.ndarray:
    """Quantise a video to uint8 and convert it to grey with OpenCV's BT.601 weights.

    Colour frames go through ``cv2.cvtColor(..., COLOR_RGB2GRAY)`` on the uint8 frames, i.e.
    ``Y = 0.299 R + 0.587 G + 0.114 B`` in OpenCV's fixed-point rounding, which is what TecoGAN's and VBench's
    scripts do to decoded frames. Single-channel videos are only quantised.

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3 (RGB), already validated.

    Returns:
        uint8 array (b t h w) in [0, 255], C-contiguous.

    Raises:
        ValueError: c is neither 1 nor 3.
    """
    channels = video.shape[1]
    frames = to_uint8_frames(video.detach().cpu())
    if channels == 1:
        return np.ascontiguousarray(rearrange(frames, "b 1 t h w -> b t h w").numpy())
    if channels != 3:
        raise ValueError(f"video must have 1 or 3 channels for grey conversion, got c={channels}")
    b, _, t, h, _ = frames.shape
    stacked = np.ascontiguousarray(rearrange(frames, "b c t h w -> (b t h) w c").numpy())  # one tall RGB image
    grey = cv2.cvtColor(stacked, cv2.COLOR_RGB2GRAY)  # ((b t h) w)
    return np.ascontiguousarray(rearrange(grey, "(b t h) w -> b t h w", b=b, t=t, h=h))


def _check_grey_pair(prev: np.ndarray, next: np.ndarray) -> None:
    if prev.dtype != np.uint8 or next.dtype != np.uint8 or prev.ndim != 2 or prev.shape != next.shape:
        raise ValueError(f"flow needs two grey uint8 frames (h w) of the same shape, got {prev.dtype} {prev.shape} "
                         f"and {next.dtype} {next.shape}")


def dis_flow(prev: np.ndarray, next: np.ndarray) -> np.ndarray:
    """Dense optical flow from ``prev`` to ``next`` with OpenCV DIS at :data:`DIS_PRESET` (medium).

    Stands in for FlowNet2 (warping error) and RAFT (VBench dynamic degree); see the module docstring.

    Args:
        prev: uint8 array (h w), grey.
        next: uint8 array (h w), grey, same shape.

    Returns:
        float32 array (h w 2) in pixels, ``(dx, dy)`` per pixel of ``prev``.

    Raises:
        ValueError: the frames are not grey uint8 (h w) arrays of one shape.
    """
    _check_grey_pair(prev, next)
    dis = cv2.DISOpticalFlow_create(DIS_PRESET)  # ~13 µs to create; a fresh one per call keeps this thread-safe
    return dis.calc(np.ascontiguousarray(prev), np.ascontiguousarray(next), None)


def farneback_flow(prev: np.ndarray, next: np.ndarray) -> np.ndarray:
    """Dense optical flow from ``prev`` to ``next`` with Farneback at TecoGAN's official parameters.

    ``cv2.calcOpticalFlowFarneback(prev, next, None, 0.5, 3, 15, 3, 5, 1.2, 0)`` (pyramid scale 0.5, 3 levels,
    window 15, 3 iterations, polynomial neighbourhood 5 with sigma 1.2, no flags), as in thunil/TecoGAN metrics.py.

    Args:
        prev: uint8 array (h w), grey.
        next: uint8 array (h w), grey, same shape.

    Returns:
        float32 array (h w 2) in pixels, ``(dx, dy)`` per pixel of ``prev``.

    Raises:
        ValueError: the frames are not grey uint8 (h w) arrays of one shape.
    """
    _check_grey_pair(prev, next)
    p = FARNEBACK_PARAMS
    return cv2.calcOpticalFlowFarneback(np.ascontiguousarray(prev), np.ascontiguousarray(next), None,
                                        p["pyr_scale"], p["levels"], p["winsize"], p["iterations"], p["poly_n"],
                                        p["poly_sigma"], p["flags"])


def backward_warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``p + flow(p)`` for every pixel p (bilinear, ``cv2.remap``).

    With ``flow`` the flow from frame t to frame t+1 and ``image`` frame t+1, the result is frame t+1 brought back
    onto frame t's pixel grid, ``Ŵ(O_{t+1})`` in Lai et al. (2018). Samples that fall outside the image take the
    nearest border value (``BORDER_REPLICATE``, like FlowNet2's Resample2d, which clamps coordinates).

    Args:
        image: float32 array (h w) or (h w c) with c ≤ 4, any range (frames, or a flow field to be warped).
        flow: float32 array (h w 2) in pixels, ``(dx, dy)``.

    Returns:
        float32 array of ``image``'s shape.

    Raises:
        ValueError: ``flow`` is not (h w 2) for ``image``'s h and w.
    """
    h, w = image.shape[:2]
    if flow.shape != (h, w, 2):
        raise ValueError(f"flow must have shape {(h, w, 2)} for an image of shape {image.shape}, got {flow.shape}")
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    map_x = grid_x + flow[..., 0]
    map_y = grid_y + flow[..., 1]
    return cv2.remap(np.ascontiguousarray(image, dtype=np.float32), map_x, map_y, interpolation=cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def motion_boundaries(flow: np.ndarray) -> np.ndarray:
    """Lai et al.'s motion-boundary test (fast_blind_video_consistency, ``utils.detect_occlusion``, ``mask2``).

    With forward differences of the flow's two components (``g(p) = F(p) − F(p + 1)`` along x and along y, 0 in the
    last column and row), a pixel is a motion boundary when
    ``|∂x F_x|² + |∂y F_x|² + |∂x F_y|² + |∂y F_y|² > 0.01 |F(p)|² + 0.002`` (pixels²). Lai et al.'s script applies it
    to the forward flow of the pair (its call passes the flows in swapped order to parameters named the other way).

    Args:
        flow: float32 array (h w 2), flow from frame t to t+1, pixels.

    Returns:
        bool array (h w): True on motion boundaries.
    """
    gradients = np.zeros(flow.shape[:2] + (4,), dtype=np.float64)  # (h w 4): dx Fx, dy Fx, dx Fy, dy Fy
    for c in range(2):
        gradients[:, :-1, 2 * c] = flow[:, :-1, c] - flow[:, 1:, c]
        gradients[:-1, :, 2 * c + 1] = flow[:-1, :, c] - flow[1:, :, c]
    return np.square(gradients).sum(-1) > MOTION_BOUNDARY_ALPHA * np.square(flow).sum(-1) + MOTION_BOUNDARY_BETA


def occlusion_mask(flow_forward: np.ndarray, flow_backward: np.ndarray,
                   mask_motion_boundaries: bool = False) -> np.ndarray:
    """Lai et al.'s forward-backward consistency check; returns the non-occlusion mask M.

    With ``F_b(warped) = backward_warp(flow_backward, flow_forward)``, a pixel p of frame t is kept when
    ``|F_f(p) + F_b(warped)(p)|² < 0.01 (|F_f(p)|² + |F_b(warped)(p)|²) + 0.5`` (pixels²): following p to frame
    t+1 and back lands within about 0.7 px of p. Lai et al.'s released code (fast_blind_video_consistency,
    ``utils.detect_occlusion``) also drops motion boundaries (:func:`motion_boundaries` of ``F_f``); set
    ``mask_motion_boundaries`` for that full mask.

    Args:
        flow_forward: float32 array (h w 2), flow from frame t to t+1, pixels.
        flow_backward: float32 array (h w 2), flow from frame t+1 to t, pixels.
        mask_motion_boundaries: also drop motion boundaries, as Lai et al.'s script does.

    Returns:
        bool array (h w): True where the pixel passes the check (visible in both frames, M = 1), False where it
        is occluded or the flows disagree (or, with ``mask_motion_boundaries``, on a motion boundary).

    Raises:
        ValueError: the two flows do not both have shape (h w 2).
    """
    if flow_forward.shape != flow_backward.shape or flow_forward.ndim != 3 or flow_forward.shape[2] != 2:
        raise ValueError(f"flows must both be (h w 2), got {flow_forward.shape} and {flow_backward.shape}")
    backward_warped = backward_warp(flow_backward, flow_forward)  # (h w 2), F_b at p + F_f(p)
    round_trip = np.square(flow_forward + backward_warped).sum(-1)  # (h w)
    magnitudes = np.square(flow_forward).sum(-1) + np.square(backward_warped).sum(-1)  # (h w)
    visible = round_trip < OCCLUSION_ALPHA * magnitudes + OCCLUSION_BETA
    if mask_motion_boundaries:
        visible &= ~motion_boundaries(flow_forward)
    return visible
