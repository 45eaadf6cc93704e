"""Feature consistency over time: VBench's subject / background consistency on any image encoder.

Per clip, with per-frame features f_1 … f_T (Huang et al. 2024, VBench ``subject_consistency.py`` and
``background_consistency.py``)::

    score = mean_{t=2..T} ½ [max(0, cos(f_{t−1}, f_t)) + max(0, cos(f_1, f_t))]

Higher is better; the range is [0, 1] and a clip of identical frames scores 1. VBench uses DINO ViT-B/16 features for
subject consistency and CLIP ViT-B/32 image features for background consistency. This framework never downloads
weights, and every score is named after its encoder, ``feature_consistency[<encoder name>]``.

**An image encoder** is any callable ``(n c h w) -> (n d)``: float32 frames in [0, 1], c = 1 or 3, any h and w, that
it prepares itself (resizing, normalisation), to float features; each frame is encoded alone, as VBench does.
Optional attributes: ``name`` (the key's tag; default :func:`models.metrics.learned.network_name`), ``protocol``
(what fixes the numbers) and ``frame_features(video (b c t h w)) -> (b t d)`` (default :func:`encode_frames`).
Ready-made ones:

* a **TorchScript file** mapping normalised images (n 3 H W) to features (n d), e.g. a CLIP or DINO image tower
  exported with ``torch.jit.trace``/``torch.jit.script`` (:class:`TorchScriptImageEncoder`, :func:`load_image_encoder`);
  its input size and normalisation are declared by the file (attributes ``image_size``, ``mean``, ``std``,
  ``interpolation``, ``center_crop``), or passed as arguments, or taken from the ``clip``/``dino`` preset (VBench's
  transforms);
* a **recognition run** of this framework: each frame fed to the clip classifier as a still clip, its pre-logit
  feature used (:func:`models.recognition.scoring.image_encoder_from_run`, the adapter that reads runs).

Use: ``feature_consistency(encode_frames(encoder, video))`` (b,) or ``video_feature_consistency(video, encoder)``;
the key is ``metric_name(encoder)``. With no encoder the caller skips the metric and reports why (e.g.
"feature_consistency: needs --encoder"); :func:`load_image_encoder` raises ``FileNotFoundError`` for a path that does
not exist.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from einops import rearrange

from models.metrics.checks import check_video
from models.metrics.learned import network_name

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# VBench's clip_transform (short side to 224, bicubic, centre crop 224) and dino_transform (short side to 224,
# bilinear, no crop); antialiasing is on here for every downscale.
PRESETS: dict[str, dict[str, Any]] = {
    "clip": {"image_size": 224, "interpolation": "bicubic", "center_crop": True, "mean": CLIP_MEAN, "std": CLIP_STD},
    "dino": {"image_size": 224, "interpolation": "bilinear", "center_crop": False, "mean": IMAGENET_MEAN,
             "std": IMAGENET_STD},
}
PREPROCESS_FIELDS = ("image_size", "interpolation", "center_crop", "mean", "std")


class ImageEncoder(Protocol):
    """Per-frame feature network: float32 images (n c h w) in [0, 1] → float features (n d) (module docstring).

    Optional attributes, read with ``getattr``: ``name`` (the score is ``feature_consistency[<name>]``),
    ``protocol`` (input size, normalisation, weights) and ``frame_features`` (clips to (b t d)).
    """

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Map float32 images (n c h w) in [0, 1] to float features (n d)."""
        ...


@torch.no_grad()
def encode_frames(encoder: Any, video: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Per-frame features of clips: every frame through ``encoder(frames (n c h w)) -> (n d)``.

    Args:
        encoder: a callable image encoder.
        video: float (b c t h w) in [0, 1].
        batch_size: frames per encoder call.

    Returns:
        float32 (b t d) on the CPU.

    Raises:
        TypeError, ValueError: as :func:`check_video`, or ``batch_size`` < 1.
    """
    check_video(video)
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1")
    frames = rearrange(video, "b c t h w -> (b t) c h w")
    features = torch.cat([encoder(chunk).float().cpu() for chunk in frames.split(batch_size)])  # ((b t) d)
    return rearrange(features, "(b t) d -> b t d", b=video.shape[0])


def feature_consistency(features: torch.Tensor, per_frame: bool = False) -> torch.Tensor:
    """VBench's subject/background consistency of per-frame features. Higher is better, in [0, 1].

    Args:
        features: float (b t d), t ≥ 2 frames (e.g. ``encoder.frame_features(video)``).
        per_frame: return each frame's term instead of the clip mean.

    Returns:
        float (b,) ``mean_{t≥2} ½[max(0, cos(f_{t−1}, f_t)) + max(0, cos(f_1, f_t))]``, or with ``per_frame`` the
        (b t−1) terms for frames 2..T.

    Raises:
        ValueError: not 3-D, or fewer than 2 frames.
    """
    if features.ndim != 3 or features.shape[1] < 2:
        raise ValueError(f"features must have shape (b t d) with t >= 2, got {tuple(features.shape)}")
    features = features.float()
    to_previous = F.cosine_similarity(features[:, :-1], features[:, 1:], dim=-1).clamp(min=0)  # (b t-1)
    to_first = F.cosine_similarity(features[:, :1], features[:, 1:], dim=-1).clamp(min=0)  # (b t-1)
    terms = (to_previous + to_first) / 2
    return terms if per_frame else terms.mean(dim=1)


def video_feature_consistency(video: torch.Tensor, encoder: ImageEncoder, per_frame: bool = False,
                              batch_size: int = 64) -> torch.Tensor:
    """Encode every frame with ``encoder`` and score the clips with :func:`feature_consistency`.

    Args:
        video: float (b c t h w) in [0, 1], t ≥ 2 frames.
        encoder: the per-frame feature network.
        per_frame: return (b t−1) per-frame terms instead of (b,) clip scores.
        batch_size: frames per encoder call.

    Returns:
        float32 (b,) in [0, 1] (or (b t−1)); higher is better.

    Raises:
        TypeError, ValueError: as :func:`check_video` (needs 2 frames), or ``batch_size`` < 1.
    """
    check_video(video, min_frames=2)
    return feature_consistency(frame_features(encoder, video, batch_size), per_frame)


def frame_features(encoder: ImageEncoder, video: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """Per-frame features float32 (b t d) of float32 clips (b c t h w) in [0, 1]: the encoder's own
    ``frame_features`` when it has one, else :func:`encode_frames`."""
    own = getattr(encoder, "frame_features", None)
    return own(video, batch_size) if callable(own) else encode_frames(encoder, video, batch_size)


def metric_name(encoder: ImageEncoder) -> str:
    """The score's key, ``feature_consistency[<encoder name>]``."""
    return f"feature_consistency[{network_name(encoder, 'encoder')}]"


class TorchScriptImageEncoder:
    """An image encoder exported to TorchScript, mapping normalised images (n 3 H W) to features (n d).

    Preprocessing of [0, 1] frames: grey to 3 channels, short side resized to ``image_size`` (antialiased), centre
    crop ``image_size`` when ``center_crop``, then ``(x − mean) / std``. Each setting comes from, in order: the
    argument, an attribute of the same name on the scripted module, the ``preset``.

    Args:
        path: local TorchScript file.
        preset: ``clip`` (VBench background consistency) or ``dino`` (subject consistency) defaults.
        image_size: short side after resizing (pixels).
        interpolation: ``bilinear`` or ``bicubic``.
        center_crop: crop to ``image_size``×``image_size`` after resizing.
        mean, std: per-channel normalisation of [0, 1] pixels (3 values each).
        name: the encoder's name in metric keys; default the module's ``name`` attribute or the file's stem.
        device: where the encoder runs.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: an unknown preset or interpolation, or mean/std without 3 values.
    """

    def __init__(self, path: str | os.PathLike, preset: str = "clip", image_size: int | None = None,
                 interpolation: str | None = None, center_crop: bool | None = None,
                 mean: tuple[float, ...] | None = None, std: tuple[float, ...] | None = None,
                 name: str | None = None, device: str | torch.device = "cpu") -> None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"image encoder TorchScript file not found: {path}")
        if preset not in PRESETS:
            raise ValueError(f"preset={preset!r} is not one of {sorted(PRESETS)}")
        self.device = torch.device(device)
        self.module = torch.jit.load(str(path), map_location="cpu").eval().to(self.device)
        given = {"image_size": image_size, "interpolation": interpolation, "center_crop": center_crop,
                 "mean": mean, "std": std}
        settings = {}
        for key in PREPROCESS_FIELDS:
            declared = getattr(self.module, key, None)
            settings[key] = given[key] if given[key] is not None else declared if declared is not None \
                else PRESETS[preset][key]
        if settings["interpolation"] not in ("bilinear", "bicubic"):
            raise ValueError(f"interpolation={settings['interpolation']!r} must be 'bilinear' or 'bicubic'")
        for key in ("mean", "std"):
            if len(settings[key]) != 3:
                raise ValueError(f"{key}={settings[key]} must have 3 values (RGB)")
        self.image_size = int(settings["image_size"])
        self.interpolation = TF.InterpolationMode(settings["interpolation"])
        self.center_crop = bool(settings["center_crop"])
        self.mean = [float(v) for v in settings["mean"]]
        self.std = [float(v) for v in settings["std"]]
        self.name = name or getattr(self.module, "name", None) or path.stem
        self.protocol = {"encoder": f"TorchScript {path}", "image_size": self.image_size,
                         "interpolation": settings["interpolation"], "center_crop": self.center_crop,
                         "mean": self.mean, "std": self.std}

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """float (n c h w) in [0, 1], c = 1 or 3 → float32 (n 3 H W) normalised, on ``device``.

        Raises:
            ValueError: not 4-D, or c is neither 1 nor 3.
        """
        if frames.ndim != 4 or frames.shape[1] not in (1, 3):
            raise ValueError(f"frames must have shape (n c h w) with c = 1 or 3, got {tuple(frames.shape)}")
        x = frames.to(self.device, torch.float32).expand(-1, 3, -1, -1)
        if min(x.shape[-2:]) != self.image_size:
            x = TF.resize(x, [self.image_size], interpolation=self.interpolation, antialias=True)
        if self.center_crop:
            x = TF.center_crop(x, [self.image_size, self.image_size])
        return TF.normalize(x, self.mean, self.std)

    @torch.no_grad()
    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Features float32 (n d) of float frames (n c h w) in [0, 1]."""
        features = self.module(self.preprocess(frames))
        if features.ndim != 2 or features.shape[0] != frames.shape[0]:
            raise ValueError(f"{self.name}: encoder returned shape {tuple(features.shape)}, expected "
                             f"({frames.shape[0]}, d)")
        return features.float()

    def frame_features(self, video: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Per-frame features float32 (b t d) of float clips (b c t h w) in [0, 1] (:func:`encode_frames`)."""
        return encode_frames(self, video, batch_size)


def load_image_encoder(path: str | os.PathLike, device: str | torch.device = "cpu",
                       **torchscript_kwargs: Any) -> TorchScriptImageEncoder:
    """Load a TorchScript image encoder from a local path (:class:`TorchScriptImageEncoder`).

    A recognition run of ours (a ``.ckpt`` file or a run folder) is read by the adapter
    :func:`models.recognition.scoring.load_image_encoder` instead, which takes both kinds.

    Args:
        path: a TorchScript image encoder file.
        device: where the encoder runs.
        torchscript_kwargs: preprocessing arguments of :class:`TorchScriptImageEncoder` (``preset``, ``image_size``,
            ...).

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says what the path should hold).
        ValueError: ``path`` is a run of ours (the message names the adapter), or as :class:`TorchScriptImageEncoder`.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image encoder not found: {path} (give a TorchScript image encoder file, e.g. an "
                                "exported CLIP or DINO image tower, or a recognition checkpoint / run folder)")
    if path.is_dir() or path.suffix == ".ckpt":
        raise ValueError(f"{path} is a recognition run, not a TorchScript file: build its encoder with "
                         "models.recognition.scoring.image_encoder_from_run (the metric library does not load runs)")
    return TorchScriptImageEncoder(path, device=device, **torchscript_kwargs)
