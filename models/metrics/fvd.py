"""Fréchet Video Distance (Unterthiner et al. 2018) with pluggable clip feature extractors.

``FVD = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2(Σ_r Σ_g)^½)`` between Gaussians fitted to the features of real and generated
clips. Lower is better; 0 for identical feature statistics. The value depends on the extractor, the clip count, the
clip length, the resizing and the choice of real clips, so every value travels with them (:class:`FVDResult`).

An extractor is any callable ``(b c t h w) -> (b d)`` on float32 clips in [0, 1] that prepares them itself
(:class:`ClipFeatureExtractor`); its ``name`` and ``protocol`` attributes, when it has them, go into the report
(:class:`FeatureExtractor` attaches them to a plain function).

* :class:`I3DExtractor`: the StyleGAN-V protocol (Skorokhodov et al. 2022, ``src/metrics/frechet_video_distance.py``
  and ``metric_utils.py``): the Kinetics-400 I3D TorchScript port (``i3d_torchscript.pt``, read from a local path),
  called with ``rescale=True, resize=True, return_features=True`` on uint8 clips (b 3 16 h w), so the detector itself
  maps [0, 255] to [−1, 1] and resizes frames to 224×224; features are its 400 pre-softmax logits.
* the pre-logit features of a recognition run of this framework:
  :class:`models.recognition.scoring.RecognitionExtractor` (the adapter that reads runs).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from models.metrics.checks import check_video, to_uint8_frames
from models.metrics.learned import network_name

# StyleGAN-V FVD: 16 consecutive frames per clip, frames resized to 224 by the detector, 2048 real vs 2048 fake clips.
I3D_NUM_FRAMES = 16
I3D_RESOLUTION = 224
I3D_DETECTOR_KWARGS = {"rescale": True, "resize": True, "return_features": True}
# Added to both covariances' diagonals when sqrtm of their product is not finite (pytorch-fid's value).
SQRTM_EPS = 1e-6


@runtime_checkable
class ClipFeatureExtractor(Protocol):
    """What FVD needs from a feature network.

    Attributes:
        name: identifies the network and its weights (goes into metric names and reports).
        protocol: everything else that fixes the numbers: frames per clip, resolution, value range, ...
    """

    name: str
    protocol: dict[str, Any]

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """Map float32 clips (b c t h w) in [0, 1] to float features (b d)."""
        ...


class FeatureExtractor:
    """A plain feature function with the ``name`` and ``protocol`` an FVD report carries.

    Args:
        features: ``(b c t h w)`` float32 clips in [0, 1] → ``(b d)`` features; it prepares the clips itself.
        name: the tag of the key ``fvd[<name>]``; default :func:`models.metrics.learned.network_name`.
        protocol: what fixes the numbers (weights, frames, resolution, ...); default ``features.protocol`` or ``{}``.
    """

    def __init__(self, features: Any, name: str | None = None, protocol: dict[str, Any] | None = None) -> None:
        self.features = features
        self.name = name or network_name(features, "features")
        self.protocol = dict(protocol if protocol is not None else getattr(features, "protocol", None) or {})

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """Features (b d) of float32 clips (b c t h w) in [0, 1]."""
        return self.features(video)


def gaussian_statistics(features: torch.Tensor | np.ndarray, ddof: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a feature set, in float64.

    Args:
        features: (n d) features, any float dtype; n ≥ 2.
        ddof: covariance divisor ``n − ddof``. 0 (default) as StyleGAN-V's ``FeatureStats.get_mean_cov``; 1 as
            pytorch-fid's ``np.cov``. The two differ by a factor n/(n−1) (0.05% at n = 2048).

    Returns:
        ``(mu, sigma)``: float64 arrays (d,) and (d d).

    Raises:
        ValueError: not 2-D, fewer than 2 rows, or non-finite values.
    """
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().double().numpy()
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"features must have shape (n d) with n >= 2, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values")
    mu = x.mean(axis=0)
    centred = x - mu
    sigma = centred.T @ centred / (x.shape[0] - ddof)
    return mu, sigma


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    ``d² = ‖μ1 − μ2‖² + Tr(Σ1) + Tr(Σ2) − 2 Tr((Σ1 Σ2)^½)`` (Dowson & Landau 1982; FID, Heusel et al. 2017).
    The square root is ``scipy.linalg.sqrtm``, handled as pytorch-fid (``fid_score.calculate_frechet_distance``) does:

    * if the root is not finite (singular product, e.g. fewer clips than feature dimensions), both covariances get
      ``SQRTM_EPS · I`` added and the root is taken again;
    * a complex root whose diagonal has imaginary parts above 1e-3 raises; smaller ones (round-off of a product
      with eigenvalues near 0) are dropped by keeping the real part.

    The trace is taken of the root alone (``Tr Σ1 + Tr Σ2 − 2 Tr √``), not of one big difference matrix as StyleGAN-V
    writes it; the two are equal in exact arithmetic.

    Args:
        mu1, mu2: means (d,).
        sigma1, sigma2: covariances (d d), symmetric positive semi-definite.

    Returns:
        The distance, ≥ 0 up to round-off. Lower is better.

    Raises:
        ValueError: shapes do not match, or the root has a significant imaginary part.
    """
    import scipy.linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu1 {mu1.shape}, sigma1 {sigma1.shape}, mu2 {mu2.shape}, "
                         f"sigma2 {sigma2.shape}")
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * SQRTM_EPS
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imaginary = np.abs(np.diagonal(covmean).imag).max()
        if imaginary > 1e-3:
            raise ValueError(f"sqrtm(sigma1 @ sigma2) has an imaginary component {imaginary:.3g}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fvd(real_features: torch.Tensor | np.ndarray, fake_features: torch.Tensor | np.ndarray) -> float:
    """FVD between two feature sets: :func:`frechet_distance` of their :func:`gaussian_statistics`. Lower is better.

    Args:
        real_features: (n_real d) features of real clips.
        fake_features: (n_fake d) features of generated clips, same d.

    Raises:
        ValueError: as :func:`gaussian_statistics`, or the feature sizes differ.
    """
    if real_features.shape[1:] != fake_features.shape[1:]:
        raise ValueError(f"real features {tuple(real_features.shape)} and fake features "
                         f"{tuple(fake_features.shape)} differ in feature size")
    return frechet_distance(*gaussian_statistics(real_features), *gaussian_statistics(fake_features))


@dataclass
class FVDResult:
    """An FVD value with what fixes it.

    Attributes:
        value: the distance (lower is better).
        extractor: the extractor's ``name``.
        num_real, num_fake: clip counts of the two sets.
        protocol: the extractor's protocol (frames, resolution, value range, ...).
    """

    value: float
    extractor: str
    num_real: int
    num_fake: int
    protocol: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Metric name, e.g. ``fvd[i3d_torchscript]``."""
        return f"fvd[{self.extractor}]"

    def as_dict(self) -> dict[str, Any]:
        """Plain dict for JSON reports."""
        return {"key": self.key, **asdict(self)}


def extract_features(extractor: ClipFeatureExtractor, batches: torch.Tensor | Iterable[Any],
                     batch_size: int = 16) -> torch.Tensor:
    """Features of many clips, a batch at a time.

    Args:
        extractor: the feature network.
        batches: float clips (n c t h w) in [0, 1] (split into ``batch_size`` chunks), or an iterable of such
            batches or of ``(video, labels)`` pairs (as :func:`models.metrics.video_set.iter_batches` yields).
        batch_size: clips per call when ``batches`` is one tensor.

    Returns:
        float32 (n d) on the CPU.

    Raises:
        ValueError: no clips, or ``batch_size`` < 1.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1")
    if isinstance(batches, torch.Tensor):
        batches = batches.split(batch_size)
    features = []
    for batch in batches:
        video = batch[0] if isinstance(batch, (tuple, list)) else batch
        features.append(extractor(video).float().cpu())
    if not features:
        raise ValueError("no clips were given")
    return torch.cat(features)


def compute_fvd(extractor: ClipFeatureExtractor, real: torch.Tensor | Iterable[Any], fake: torch.Tensor | Iterable[Any],
                batch_size: int = 16) -> FVDResult:
    """FVD between real and generated clips under ``extractor``'s protocol. Lower is better.

    Args:
        extractor: the feature network.
        real, fake: clips as :func:`extract_features` takes them (float (b c t h w) in [0, 1]).
        batch_size: clips per extractor call for tensor inputs.

    Returns:
        An :class:`FVDResult` carrying the value, the extractor name, both clip counts and the protocol.
    """
    real_features = extract_features(extractor, real, batch_size)
    fake_features = extract_features(extractor, fake, batch_size)
    return FVDResult(fvd(real_features, fake_features), network_name(extractor, "features"),
                     real_features.shape[0], fake_features.shape[0], dict(getattr(extractor, "protocol", None) or {}))


class I3DExtractor:
    """StyleGAN-V's FVD feature network: the Kinetics-400 I3D TorchScript port, loaded from a local file.

    Each clip is prepared as StyleGAN-V feeds the detector (``metric_utils.compute_feature_stats_for_*``):

    1. its first ``num_frames`` (16) frames, consecutive (StyleGAN-V loads ``num_frames`` consecutive frames; which
       16 frames of a longer video to take is the caller's choice);
    2. grey (c = 1) repeated to 3 channels;
    3. quantised to uint8 ``round(255·x)`` (StyleGAN-V's ``(x·127.5 + 128).clamp(0, 255).to(uint8)`` on [−1, 1]
       generator output is the same rounding);
    4. the detector is called on uint8 (b 3 16 h w) with ``rescale=True`` (it maps [0, 255] to [−1, 1] itself),
       ``resize=True`` (it resizes every frame to 224×224 itself, without keeping the aspect ratio: centre-crop
       non-square clips first if that matters) and ``return_features=True`` (the 400 logits before the softmax,
       the layer the original TensorFlow FVD uses).

    Args:
        path: local ``i3d_torchscript.pt`` (StyleGAN-V's ``detector_url`` file; this code never downloads it).
        device: where the detector runs.
        num_frames: frames per clip (16 in StyleGAN-V's FVD₁₆; 128 for FVD₁₂₈).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``num_frames`` < 1.
    """

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu",
                 num_frames: int = I3D_NUM_FRAMES) -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"I3D TorchScript file not found: {path} (StyleGAN-V's i3d_torchscript.pt; "
                                    "download it yourself and pass its local path)")
        if num_frames < 1:
            raise ValueError(f"num_frames={num_frames} must be at least 1")
        self.path = path
        self.device = torch.device(device)
        self.num_frames = num_frames
        self.detector = torch.jit.load(str(path), map_location="cpu").eval().to(self.device)
        self.name = path.stem
        self.protocol = {"extractor": "I3D Kinetics-400 TorchScript (StyleGAN-V)", "weights": str(path),
                         "num_frames": num_frames, "frames": "first, consecutive", "resolution": I3D_RESOLUTION,
                         "resize": "by the detector (resize=True)", "value_range": "uint8 [0, 255] -> [-1, 1] by "
                         "the detector (rescale=True)", "features": "400 pre-softmax logits",
                         "detector_kwargs": dict(I3D_DETECTOR_KWARGS)}

    @torch.no_grad()
    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """I3D features of clips.

        Args:
            video: float (b c t h w) in [0, 1], c = 1 or 3, t ≥ ``num_frames``.

        Returns:
            float32 (b 400) (the detector's feature size).

        Raises:
            TypeError, ValueError: as :func:`check_video`; or c is neither 1 nor 3.
        """
        check_video(video, min_frames=self.num_frames)
        if video.shape[1] not in (1, 3):
            raise ValueError(f"video has c={video.shape[1]} channels; I3D takes RGB (c=3) or grey (c=1)")
        clips = to_uint8_frames(video[:, :, : self.num_frames]).expand(-1, 3, -1, -1, -1).contiguous()
        features = self.detector(clips.to(self.device), **I3D_DETECTOR_KWARGS)
        return features.float()
