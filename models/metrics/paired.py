"""Paired metrics: a generated (or predicted) video against its reference, frame by frame.

Sources: the Moving MNIST MSE convention as tabulated by OpenSTL (Tan et al., NeurIPS 2023 Datasets and Benchmarks),
and tOF as in TecoGAN (Chu et al., SIGGRAPH 2020).

* :func:`tof`: TecoGAN's temporal optical-flow difference (Farneback at the official parameters).
* :func:`mse`, :func:`mae`, :func:`psnr`, :func:`ssim`: per-frame fidelity in the Moving MNIST video-prediction
  convention (pixels in [0, 1]; MSE summed over the pixels of a frame), averaged over frames.

Every function takes two float videos (b c t h w) in [0, 1] of the same shape, ``video`` first and ``reference``
second, validates them with :func:`models.metrics.checks.check_pair`, and returns a float64 CPU tensor: (b,) per
clip (mean over frames or frame pairs), or (b k) with ``per_frame=True``.
"""

from __future__ import annotations

import numpy as np
import torch
from einops import rearrange, reduce
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from models.metrics.checks import check_pair
from models.metrics.flow import farneback_flow, grey_frames

# SSIM settings (Wang et al. 2004 defaults): Gaussian window of sigma 1.5, 11x11, k1 = 0.01, k2 = 0.03.
SSIM_SIGMA = 1.5
SSIM_KERNEL_SIZE = 11
DATA_RANGE = 1.0


def _frames(video: torch.Tensor) -> torch.Tensor:
    """(b c t h w) -> float64 CPU frames ((b t) c h w)."""
    return rearrange(video.detach().cpu().to(torch.float64), "b c t h w -> (b t) c h w")


def _per_clip(values: torch.Tensor, batch: int, per_frame: bool) -> torch.Tensor:
    """((b t)) per-frame values -> (b t), or their mean over t, (b,)."""
    values = rearrange(values.to(torch.float64), "(b t) -> b t", b=batch)
    return values if per_frame else values.mean(dim=1)


def tecogan_crop(height: int, width: int) -> tuple[slice, slice]:
    """TecoGAN's ``crop_8x8`` window: the centred multiple of 32 pixels, at least 16 pixels smaller, per side."""
    def side(size: int) -> slice:
        kept = (size // 32) * 32
        while kept > size - 16:
            kept -= 32
        if kept < 1:
            raise ValueError(f"a {height}x{width} frame is too small for TecoGAN's crop (it keeps nothing)")
        start = (size - kept) // 2
        return slice(start, start + kept)

    return side(height), side(width)


def tof(video: torch.Tensor, reference: torch.Tensor, per_frame: bool = False,
        tecogan_protocol: bool = False) -> torch.Tensor:
    """TecoGAN's tOF: ``mean_p ‖OF(b_{t−1}, b_t)(p) − OF(g_{t−1}, g_t)(p)‖₂``, averaged over frame pairs.

    Source: Chu et al., "Learning Temporal Coherence via Self-Supervision for GAN-based Video Generation"
    (TecoGAN, ToG 2020), official ``metrics.py``: Farneback flow (0.5, 3, 15, 3, 5, 1.2, 0) between consecutive
    grey uint8 frames of the ground truth b and of the generated video g, the Euclidean norm of their difference
    per pixel, averaged over pixels, then over frame pairs; no scaling. Differences from that script: frames are
    quantised with ``round(255·x)`` and converted with BT.601 (OpenCV ``RGB2GRAY``, as there); every pair of the
    clip is used (the script skips the first and last 2 frames of each sequence), and the whole flow field is
    averaged (the script first crops it to a centred multiple of 32 pixels at least 16 pixels smaller, which would
    leave only the central 32x32 of a 64x64 frame). ``tecogan_protocol`` restores both of the script's choices.

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3, t ≥ 2: the generated frames g.
        reference: float tensor of the same shape: the ground-truth frames b.
        per_frame: return one value per consecutive frame pair instead of the clip mean.
        tecogan_protocol: follow the script on both counts: skip the first and last 2 frames (pairs (k−1, k) for
            k = 3 … t−3) and average the flow difference over :func:`tecogan_crop`'s window only.

    Returns:
        float64 tensor (b,), or (b t−1) with ``per_frame`` (b t−5 with ``tecogan_protocol``): mean flow difference
        in pixels, ≥ 0; 0 when the two videos are identical. Lower is better.

    Raises:
        TypeError, ValueError: an input is not a valid float video with at least 2 frames (6 with
            ``tecogan_protocol``), the shapes differ, or a frame is too small for the crop.
    """
    check_pair(video, reference, min_frames=6 if tecogan_protocol else 2)
    generated, truth = grey_frames(video), grey_frames(reference)  # (b t h w) uint8 each
    b, t, h, w = generated.shape
    pairs = range(3, t - 2) if tecogan_protocol else range(1, t)  # k: the pair (k − 1, k)
    rows, cols = tecogan_crop(h, w) if tecogan_protocol else (slice(None), slice(None))
    values = np.zeros((b, len(pairs)))
    for i in range(b):
        for n, k in enumerate(pairs):
            truth_flow = farneback_flow(truth[i, k - 1], truth[i, k])[rows, cols]  # (h w 2)
            generated_flow = farneback_flow(generated[i, k - 1], generated[i, k])[rows, cols]  # (h w 2)
            difference = truth_flow.astype(np.float64) - generated_flow
            values[i, n] = np.sqrt(np.square(difference).sum(axis=-1)).mean()
    values = torch.from_numpy(values)
    return values if per_frame else values.mean(dim=1)


def mse(video: torch.Tensor, reference: torch.Tensor, per_frame: bool = False) -> torch.Tensor:
    """Per-frame squared error summed over the h·w pixels of a frame (Moving MNIST convention), mean over frames.

    ``MSE_t = Σ_{h,w} mean_c (x − y)²`` with pixels in [0, 1]; channels are averaged, so for grey frames (c = 1,
    Moving MNIST) this is exactly the convention behind the published numbers (ConvLSTM 103.3 … SimVP 23.8 on
    64x64 frames, as tabulated by OpenSTL), which are averaged over frames and clips.

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3: the predicted frames.
        reference: float tensor of the same shape: the ground truth.
        per_frame: return one value per frame instead of the clip mean.

    Returns:
        float64 tensor (b,), or (b t) with ``per_frame``: intensity² summed over pixels, in [0, h·w]. Lower is
        better.

    Raises:
        TypeError, ValueError: an input is not a valid float video, or the shapes differ.
    """
    check_pair(video, reference)
    squared = (_frames(video) - _frames(reference)).square()  # ((b t) c h w)
    return _per_clip(reduce(reduce(squared, "n c h w -> n h w", "mean"), "n h w -> n", "sum"), video.shape[0],
                     per_frame)


def mae(video: torch.Tensor, reference: torch.Tensor, per_frame: bool = False) -> torch.Tensor:
    """Per-frame absolute error summed over the h·w pixels of a frame (Moving MNIST convention), mean over frames.

    ``MAE_t = Σ_{h,w} mean_c |x − y|`` with pixels in [0, 1]: the convention of :func:`mse`, and of the MAE column
    of the published Moving MNIST tables (OpenSTL, Tan et al. 2023, ``openstl/core/metrics.py``: mean over clips and
    frames, sum over a frame's pixels).

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3: the predicted frames.
        reference: float tensor of the same shape: the ground truth.
        per_frame: return one value per frame instead of the clip mean.

    Returns:
        float64 tensor (b,), or (b t) with ``per_frame``: intensity summed over pixels, in [0, h·w]. Lower is better.

    Raises:
        TypeError, ValueError: an input is not a valid float video, or the shapes differ.
    """
    check_pair(video, reference)
    absolute = (_frames(video) - _frames(reference)).abs()  # ((b t) c h w)
    return _per_clip(reduce(reduce(absolute, "n c h w -> n h w", "mean"), "n h w -> n", "sum"), video.shape[0],
                     per_frame)


def psnr(video: torch.Tensor, reference: torch.Tensor, per_frame: bool = False) -> torch.Tensor:
    """Mean over frames of the per-frame PSNR, ``10 log10(1 / mean_{c,h,w} (x − y)²)`` with data_range 1.

    Computed with ``torchmetrics.functional.image.peak_signal_noise_ratio(data_range=1.0, reduction="none",
    dim=(1, 2, 3))`` on each frame, in float64. The per-frame mean (not the PSNR of the pooled error) is the usual
    video-prediction convention. A frame equal to its reference gives +inf, and so does its clip's mean.

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3: the predicted frames.
        reference: float tensor of the same shape: the ground truth.
        per_frame: return one value per frame instead of the clip mean.

    Returns:
        float64 tensor (b,), or (b t) with ``per_frame``: decibels, ≥ 0 (inf for identical frames). Higher is
        better.

    Raises:
        TypeError, ValueError: an input is not a valid float video, or the shapes differ.
    """
    check_pair(video, reference)
    values = peak_signal_noise_ratio(_frames(video), _frames(reference), data_range=DATA_RANGE, reduction="none",
                                     dim=(1, 2, 3))  # ((b t))
    return _per_clip(values, video.shape[0], per_frame)


def ssim(video: torch.Tensor, reference: torch.Tensor, per_frame: bool = False) -> torch.Tensor:
    """Mean over frames of the per-frame SSIM (Wang et al. 2004) with data_range 1.

    Computed with ``torchmetrics.functional.image.structural_similarity_index_measure`` on each frame in float32
    (its depthwise float64 convolution is ~30x slower on CPU; float32 changes SSIM by ~1e-6): Gaussian window,
    sigma 1.5 (torchmetrics derives the window size from sigma, ``2·int(3.5σ + 0.5) + 1`` = 11), k1 = 0.01,
    k2 = 0.03, data_range = 1, reflect padding so that the map covers every pixel, and the map averaged over
    pixels and channels. Other implementations (e.g. scikit-image, which crops the border instead) can differ in
    the third decimal.

    Args:
        video: float tensor (b c t h w) in [0, 1], c = 1 or 3, h and w > 5: the predicted frames.
        reference: float tensor of the same shape: the ground truth.
        per_frame: return one value per frame instead of the clip mean.

    Returns:
        float64 tensor (b,), or (b t) with ``per_frame``: dimensionless, at most 1 (1 for identical frames,
        to float32 rounding, ~1e-6).
        Higher is better.

    Raises:
        TypeError, ValueError: an input is not a valid float video, or the shapes differ.
    """
    check_pair(video, reference)
    values = []
    for clip, truth in zip(video.detach().cpu(), reference.detach().cpu()):
        # One clip at a time, channels-last: ~3x faster on CPU than one call on the whole batch.
        frames, truth = (rearrange(x.float(), "c t h w -> t c h w").contiguous(memory_format=torch.channels_last)
                         for x in (clip, truth))
        values.append(structural_similarity_index_measure(
            frames, truth, gaussian_kernel=True, sigma=SSIM_SIGMA, kernel_size=SSIM_KERNEL_SIZE,
            data_range=DATA_RANGE, reduction="none"))  # (t)
    return _per_clip(torch.cat(values), video.shape[0], per_frame)
