"""Per-clip temporal-consistency metrics that need no ground truth (VBench, Huang et al. CVPR 2024;
warp error, Lai et al. ECCV 2018).

* :func:`temporal_flickering`: VBench temporal flickering, exact (uint8 frame differences).
* :func:`warp_error`: Lai et al. (ECCV 2018) warping error, with OpenCV DIS flow instead of FlowNet2.
* :func:`dynamic_degree`: VBench dynamic degree, with OpenCV DIS flow instead of RAFT.
* :func:`motion_smoothness`: VBench motion smoothness, flow-interpolation variant (DIS flow and warping instead of
  the AMT interpolation network).

Every function takes float videos (b c t h w) in [0, 1] with c = 1 or 3, validates them with
:mod:`models.metrics.checks`, and returns a float64 CPU tensor: (b,) per clip, or (b k) per frame or frame pair with
``per_frame=True``, where the per-clip value is the mean of the per-frame values (dynamic degree excepted: see
there). Results computed with substituted flow must carry its name, e.g. the metric key ``test/warp_error_dis``.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange, reduce

from models.metrics.checks import check_pair, check_video, to_uint8_frames
from models.metrics.flow import backward_warp, dis_flow, grey_frames, occlusion_mask

# Flow method of the flow-based metrics here; metric keys name it (``warp_error_dis``, ``dynamic_degree_dis``).
WARP_ERROR_FLOW = "dis"
DYNAMIC_DEGREE_FLOW = "dis"
MOTION_SMOOTHNESS_INTERPOLATION = "flowinterp"  # DIS flow + warping, not AMT

# VBench dynamic degree: sample at about 8 fps, top 5% of flow magnitudes, 6 px at a 256-pixel short side.
DYNAMIC_TARGET_FPS = 8.0
DYNAMIC_TOP_FRACTION = 0.05
DYNAMIC_THRESHOLD_AT_256 = 6.0


def _float_frames(video: torch.Tensor) -> np.ndarray:
    """float32 array (b t h w c) of a validated video, for OpenCV."""
    return np.ascontiguousarray(rearrange(video.detach().cpu().float(), "b c t h w -> b t h w c").numpy())


def _per_clip(values: np.ndarray, per_frame: bool) -> torch.Tensor:
    """(b k) float64 per-frame values -> (b k) or their mean over k, (b,)."""
    values = torch.from_numpy(np.asarray(values, dtype=np.float64))
    return values if per_frame else values.mean(dim=1)


def temporal_flickering(video: torch.Tensor, per_frame: bool = False) -> torch.Tensor:
    """VBench temporal flickering: ``(255 − mean_t mean|I_{t+1} − I_t|) / 255`` on uint8 frames.

    Source: Huang et al., VBench (CVPR 2024), ``vbench/temporal_flickering.py``; exact apart from decoding: frames
    are quantised with ``round(255·x)``, and the mean absolute difference runs over all pixels and channels.
    VBench applies it only to static clips (it filters moving ones out with optical flow first): on moving content
    it measures motion as well as flicker.

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3, t ≥ 2.
        per_frame: return one score per consecutive frame pair instead of the clip mean.

    Returns:
        float64 tensor (b,), or (b t−1) with ``per_frame``: score in [0, 1], dimensionless; 1 means identical
        consecutive frames. Higher is better. The clip score is the mean of the pair scores.

    Raises:
        TypeError, ValueError: ``video`` is not a valid float video with at least 2 frames (see ``check_video``).
    """
    check_video(video, "video", min_frames=2)
    frames = to_uint8_frames(video.detach().cpu()).to(torch.float64)  # (b c t h w), 0..255
    mean_abs_diff = reduce((frames[:, :, 1:] - frames[:, :, :-1]).abs(), "b c t h w -> b t", "mean")
    scores = (255.0 - mean_abs_diff) / 255.0  # (b t-1)
    return scores if per_frame else scores.mean(dim=1)


def warp_error(video: torch.Tensor, reference: torch.Tensor | None = None, per_frame: bool = False,
               mask_motion_boundaries: bool = False) -> torch.Tensor:
    """Warping error of Lai et al. (ECCV 2018), with OpenCV DIS flow (:data:`WARP_ERROR_FLOW` = ``"dis"``).

    For each frame pair (t, t+1), forward and backward DIS flow ``F_f``, ``F_b`` and the non-occlusion mask
    ``M_t`` (forward-backward check, :func:`models.metrics.flow.occlusion_mask`) are computed on the grey uint8
    frames of ``reference`` when it is given (Lai et al. compute them on the unprocessed input video), else of
    ``video`` itself. Then, with ``W(O_{t+1})`` frame t+1 of ``video`` sampled at ``p + F_f(p)`` (bilinear),

        ``E_t = Σ_p M_t(p) · mean_c (O_t(p, c) − W(O_{t+1})(p, c))² / Σ_p M_t(p)``

    and the clip's error is the mean of ``E_t`` over pairs. This follows Lai et al.'s released evaluation script
    (``evaluate_WarpError.py``): each pair is normalised by its own mask (the paper's ``Σ_t Σ_p / Σ M`` pools the masks
    instead; the two agree when the masks have equal size), and its 3-channel mask makes the squared
    difference a mean over channels, not a sum. A pair with an empty mask scores 0. FlowNet2 is replaced by DIS,
    so values are comparable only with other DIS values. Lai et al.'s mask also drops motion boundaries
    (:func:`models.metrics.flow.motion_boundaries`); ``mask_motion_boundaries`` applies that test too (the
    ``warp_error_dis_refflow_lai`` key of :func:`models.metrics.evaluate.evaluate_videos`).

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3, t ≥ 2: the frames O being judged.
        reference: optional float tensor of the same shape, the video the flow and masks come from.
        per_frame: return one error per frame pair instead of the clip mean.
        mask_motion_boundaries: drop motion boundaries from the mask as well, as Lai et al.'s script does.

    Returns:
        float64 tensor (b,), or (b t−1) with ``per_frame``: mean squared error of pixel values in [0, 1]
        (units: intensity², range [0, 1]); 0 for a static clip. Lower is better.

    Raises:
        TypeError, ValueError: an input is not a valid float video with at least 2 frames, or the two shapes differ.
    """
    if reference is None:
        check_video(video, "video", min_frames=2)
        reference = video
    else:
        check_pair(video, reference, min_frames=2)
    frames = _float_frames(video)  # (b t h w c)
    grey = grey_frames(reference)  # (b t h w) uint8
    b, t = grey.shape[:2]
    errors = np.zeros((b, t - 1))
    for i in range(b):
        for k in range(t - 1):
            flow_forward = dis_flow(grey[i, k], grey[i, k + 1])  # (h w 2)
            flow_backward = dis_flow(grey[i, k + 1], grey[i, k])  # (h w 2)
            mask = occlusion_mask(flow_forward, flow_backward, mask_motion_boundaries)  # (h w) bool
            if not mask.any():
                continue
            warped = backward_warp(frames[i, k + 1], flow_forward)  # (h w c)
            squared = np.square(frames[i, k].astype(np.float64) - warped.reshape(frames[i, k].shape))  # (h w c)
            errors[i, k] = squared.mean(axis=-1)[mask].mean()
    return _per_clip(errors, per_frame)


def dynamic_degree(video: torch.Tensor, fps: float, per_frame: bool = False) -> torch.Tensor:
    """VBench dynamic degree with OpenCV DIS flow (:data:`DYNAMIC_DEGREE_FLOW` = ``"dis"``) instead of RAFT.

    Source: Huang et al., VBench (CVPR 2024), ``vbench/dynamic_degree.py``. The clip is subsampled to about 8 fps
    (every ``max(1, round(fps / 8))``-th frame, T frames kept). For each consecutive kept pair, the DIS flow's
    magnitudes are sorted and the top 5% (``int(0.05·h·w)`` pixels, at least 1) averaged. A pair moves when that
    mean exceeds ``6 · min(h, w) / 256`` pixels, and the clip is dynamic when at least ``round(4·T/16)`` pairs move
    (Python's ``round``). As in VBench's code, that count is 0 when T ≤ 2, so such a clip is always dynamic.
    VBench briefly (July 2024) multiplied the threshold by ``max(1, 8 / fps)``; its current code does not, nor does
    this function. ``max(1, ...)`` in the interval is ours: VBench's ``round(fps / 8)`` is 0 below 4 fps.

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3, with at least 2 frames after subsampling.
        fps: the clip's frame rate in frames per second, > 0.
        per_frame: return the per-pair top-5% mean flow magnitude instead of the clip's verdict.

    Returns:
        float64 tensor (b,) with values in {0., 1.}: 1 for a dynamic clip (its mean over clips is VBench's dynamic
        degree, the fraction of dynamic clips); higher means more motion, which is desirable only when content is
        expected to move. With ``per_frame``, (b T−1): top-5% mean flow magnitude per kept pair, in pixels.

    Raises:
        TypeError, ValueError: ``video`` is not a valid float video; ``fps`` is not positive; fewer than 2 frames
            remain after subsampling.
    """
    check_video(video, "video", min_frames=2)
    if not fps > 0:
        raise ValueError(f"fps={fps} must be a positive frame rate (frames per second)")
    interval = max(1, round(fps / DYNAMIC_TARGET_FPS))
    grey = grey_frames(video)[:, ::interval]  # (b T h w)
    b, num_kept, h, w = grey.shape
    if num_kept < 2:
        raise ValueError(f"video has {video.shape[2]} frames; at fps={fps} every {interval}th frame is kept, "
                         "leaving fewer than 2")
    top = max(1, int(h * w * DYNAMIC_TOP_FRACTION))
    magnitudes = np.zeros((b, num_kept - 1))
    for i in range(b):
        for k in range(num_kept - 1):
            radius = np.linalg.norm(dis_flow(grey[i, k], grey[i, k + 1]), axis=-1).ravel()  # (h·w)
            magnitudes[i, k] = np.partition(radius, radius.size - top)[-top:].mean()
    if per_frame:
        return torch.from_numpy(magnitudes)
    threshold = DYNAMIC_THRESHOLD_AT_256 * min(h, w) / 256.0
    min_moving = round(4 * num_kept / 16)  # 0 for T <= 2: every clip counts as dynamic, as in VBench
    moving = (magnitudes > threshold).sum(axis=1)  # (b)
    return torch.from_numpy((moving >= min_moving).astype(np.float64))


def _interpolate_midpoint(frame_a: np.ndarray, frame_b: np.ndarray, grey_a: np.ndarray,
                          grey_b: np.ndarray) -> np.ndarray:
    """Frame halfway between a and b from DIS flow: each warped half-way back, then averaged. (h w c) float32."""
    flow_ab = dis_flow(grey_a, grey_b)  # (h w 2), a -> b
    flow_ba = dis_flow(grey_b, grey_a)  # (h w 2), b -> a
    # Super SloMo (Jiang et al., CVPR 2018, eq. 4) at time ½: flows from the middle frame to a and to b.
    flow_mid_a = 0.25 * (flow_ba - flow_ab)
    flow_mid_b = 0.25 * (flow_ab - flow_ba)
    from_a = backward_warp(frame_a, flow_mid_a).reshape(frame_a.shape)
    from_b = backward_warp(frame_b, flow_mid_b).reshape(frame_b.shape)
    return 0.5 * (from_a + from_b)


def motion_smoothness(video: torch.Tensor, per_frame: bool = False) -> torch.Tensor:
    """VBench motion smoothness, flow-interpolation variant (:data:`MOTION_SMOOTHNESS_INTERPOLATION`), not AMT.

    Source: Huang et al., VBench (CVPR 2024), ``vbench/motion_smoothness.py``: the odd frames 1, 3, 5, … are
    dropped and rebuilt from their even neighbours, and the score is ``(255 − MAE) / 255`` between the rebuilt
    and the real odd frames on the uint8 scale (MAE over pixels and channels, averaged over the rebuilt frames).
    VBench rebuilds them with the AMT interpolation network; here each odd frame is rebuilt from frames 2j and
    2j+2 by warping both half-way along their DIS flows (middle-frame flows
    ``F_{½→0} = ¼(F_{1→0} − F_{0→1})`` and ``F_{½→1} = −F_{½→0}``, Super SloMo eq. 4 without its refinement
    network) and averaging the two warps; the result is quantised with ``round(255·x)``. Only odd frames with two
    even neighbours are scored (VBench does the same: a trailing odd frame of an even-length clip has no right
    neighbour). Values are comparable only with other values of this variant.

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3, t ≥ 3.
        per_frame: return one score per rebuilt frame instead of the clip mean.

    Returns:
        float64 tensor (b,), or (b (t−1)//2) with ``per_frame``: score in [0, 1], dimensionless; 1 for a static
        clip or motion the interpolation predicts exactly. Higher is better.

    Raises:
        TypeError, ValueError: ``video`` is not a valid float video with at least 3 frames.
    """
    check_video(video, "video", min_frames=3)
    frames = _float_frames(video)  # (b t h w c)
    targets = rearrange(to_uint8_frames(video.detach().cpu()), "b c t h w -> b t h w c").numpy().astype(np.float64)
    grey = grey_frames(video)  # (b t h w)
    b, t = grey.shape[:2]
    num_rebuilt = (t - 1) // 2
    scores = np.zeros((b, num_rebuilt))
    for i in range(b):
        for j in range(num_rebuilt):
            a, mid, c = 2 * j, 2 * j + 1, 2 * j + 2
            rebuilt = _interpolate_midpoint(frames[i, a], frames[i, c], grey[i, a], grey[i, c])  # (h w c)
            rebuilt = np.round(np.clip(rebuilt, 0.0, 1.0) * 255.0)  # uint8 scale, like AMT's saved frames
            scores[i, j] = (255.0 - np.abs(rebuilt - targets[i, mid]).mean()) / 255.0
    return _per_clip(scores, per_frame)
