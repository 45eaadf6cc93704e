"""From a recognition run of this framework to the network callables the metric library takes.

:mod:`models.metrics` never loads a run: its learned metrics take callables (:mod:`models.metrics.learned`). This
module is the adapter: it reads a run folder (which imports the model families, Hydra and, through
:func:`models.run.load_run`, Lightning where a run's kind is checked) and returns

* :func:`classifier_from_run`: a :class:`RecognitionModel`, callable as ``(b c t h w) -> (b k)`` logits, with the
  ``name`` the reports use as the key's tag (``timesformer:<run folder>``), its classes, frames per clip,
  ``features`` for ``fvd[<name>]`` and its ``protocol``. A run trained with ``data.num_frames=1`` is a per-frame
  reader for :mod:`models.metrics.identity`;
* :func:`image_encoder_from_run`: a :class:`RecognitionFrameEncoder`, ``(n c h w) -> (n d)`` per-frame features for
  ``feature_consistency[<name>]``; :func:`load_image_encoder` takes a run or a TorchScript file;
* :class:`RecognitionExtractor`: clip features ``(b c t h w) -> (b d)`` for :func:`models.metrics.fvd.compute_fvd`.

Every callable takes float32 clips or frames in [0, 1] (grey, c = 1, or the net's ``in_chans``), any size, and
prepares them itself. A run folder, as ``train.py`` writes it::

    <run>/config.yaml               resolved Hydra config of the run
    <run>/checkpoints/best.ckpt     Lightning checkpoint: {"state_dict": {"net.<param>": tensor, ...}, ...}

:class:`RecognitionModel` rebuilds only the pure-torch ``cfg.model.net`` (no LightningModule, no optimizer) through
:func:`models.run.load_run`, which loads the ``net.`` weights strictly with ``torch.load(weights_only=True)``, and
feeds it clips prepared with the run's own evaluation protocol (``cfg.data``), so that a generated clip is seen the way
the test split was seen during training:

1. frames: the first ``num_frames`` frames at ``frame_stride`` (default 1: generated clips are already at the clip
   rate the model was trained on);
2. channels: grey (c = 1) is repeated to the net's ``in_chans``;
3. space: the short side is resized to ``resize_size`` (bilinear, antialiased), then a centre crop of ``crop_size``,
   as :func:`data.transforms.eval_transform` does (here on float frames instead of uint8, so values differ from the
   data path by at most uint8 rounding);
4. values: ``(x - mean) / std`` per channel, with the run's ``data.mean``/``data.std``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms.v2.functional as TF
from einops import rearrange, repeat
from omegaconf import DictConfig

from models.metrics.checks import check_video
from models.metrics import consistency
from models.metrics.consistency import encode_frames
from models.metrics.learned import check_labels
from models.run import load_run


class RecognitionModel:
    """A trained clip classifier in eval mode, with the data protocol it was trained with; calling it gives
    :meth:`logits`, so it is the clip classifier callable of :mod:`models.metrics.learned` (and, trained with
    ``data.num_frames=1``, the per-frame reader of :mod:`models.metrics.identity`).

    Args:
        path: a checkpoint ``<run>/checkpoints/<name>.ckpt`` or a run folder (uses ``checkpoints/best.ckpt``).
        device: where the net runs.
        frame_stride: take every ``frame_stride``-th frame of the input (frames), starting at frame 0.

    Attributes:
        net: the ``nn.Module`` (eval mode, no gradients); ``net(x)`` gives logits (b num_classes) and
            ``net.forward_features(x)`` pre-logit features (b d).
        name: ``<arch>:<run folder>`` (plus ``/<ckpt stem>`` when the checkpoint is not ``best.ckpt``).
        ckpt_path: the checkpoint file read.
        num_classes, num_frames, crop_size, resize_size, in_chans, frame_stride: the protocol (frames, pixels).
        mean, std: per-channel normalisation of [0, 1] pixels (``in_chans`` values each).
        class_names: the class names when the run's ``data.classes`` file is still readable, else None.

    Raises:
        FileNotFoundError: the checkpoint or ``config.yaml`` is missing.
        ValueError: the run is not a clip classifier (``model._target_`` is not a ``VideoClassifier``, the net has no
            ``forward_features``, or the checkpoint holds no ``net.`` weights), the weights do not fit the net, or
            ``frame_stride`` < 1.
    """

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu", frame_stride: int = 1) -> None:
        if frame_stride < 1:
            raise ValueError(f"frame_stride={frame_stride} must be at least 1")
        run = load_run(path).expect("classifier")
        self.ckpt_path, self.config = run.ckpt, run.config
        cfg, model_cfg, config_path = run.config, run.config.model, run.dir / "config.yaml"
        self.device = torch.device(device)
        self.net = run.build_net()
        if not hasattr(self.net, "forward_features"):
            raise ValueError(f"{self.ckpt_path}: net {type(self.net).__name__} has no forward_features(video)")
        self.net.to(self.device).eval().requires_grad_(False)

        data = cfg.data
        self.num_classes = int(model_cfg.num_classes)
        self.num_frames = int(data.num_frames)
        self.crop_size = int(data.crop_size)
        self.resize_size = int(data.get("resize_size", data.crop_size))
        self.in_chans = int(self.net.patch_embed.in_chans) if hasattr(self.net, "patch_embed") else len(data.mean)
        self.mean = [float(v) for v in data.mean]
        self.std = [float(v) for v in data.std]
        if len(self.mean) != self.in_chans or len(self.std) != self.in_chans:
            raise ValueError(f"{config_path}: data.mean={self.mean} and data.std={self.std} must have "
                             f"in_chans={self.in_chans} values")
        self.frame_stride = frame_stride
        self.class_names = self._class_names(data)
        run_dir = run.dir
        suffix = "" if self.ckpt_path.stem == "best" else f"/{self.ckpt_path.stem}"
        self.name = f"{type(self.net).__name__.lower()}:{run_dir.name}{suffix}"

    @staticmethod
    def _class_names(data: DictConfig) -> list[str] | None:
        classes = data.get("classes")
        if not classes:
            return None
        path = Path(str(data.get("root", "."))) / str(classes)
        return [line.strip() for line in path.read_text().splitlines() if line.strip()] if path.is_file() else None

    @property
    def protocol(self) -> dict[str, Any]:
        """What fixes the numbers: checkpoint, frames, frame stride, sizes (pixels), normalisation."""
        return {"checkpoint": str(self.ckpt_path), "num_frames": self.num_frames, "frame_stride": self.frame_stride,
                "resize_size": self.resize_size, "crop_size": self.crop_size, "in_chans": self.in_chans,
                "mean": self.mean, "std": self.std, "value_range": "[0, 1] before mean/std"}

    @property
    def feature_protocol(self) -> dict[str, Any]:
        """:attr:`protocol` of the pre-logit features (:meth:`features`), as ``fvd[<name>]`` reports it."""
        return {**self.protocol, "resolution": self.crop_size, "features": "pre-logit forward_features"}

    @property
    def frames_needed(self) -> int:
        """Fewest input frames :meth:`preprocess` accepts: ``(num_frames - 1) · frame_stride + 1``."""
        return (self.num_frames - 1) * self.frame_stride + 1

    def prepare_frames(self, video: torch.Tensor) -> torch.Tensor:
        """Channels, space and values of the protocol (steps 2-4 of the module docstring), on every frame given.

        Args:
            video: float (b c t h w) in [0, 1], c = 1 or ``in_chans``, any h and w.

        Returns:
            float32 (b in_chans t crop_size crop_size), normalised, on ``device``.

        Raises:
            TypeError, ValueError: as :func:`check_video`; or c is neither 1 nor ``in_chans``.
        """
        check_video(video)
        b, c = video.shape[:2]
        if c not in (1, self.in_chans):
            raise ValueError(f"video has c={c} channels; the net takes in_chans={self.in_chans} (or grey, c=1)")
        x = rearrange(video.to(self.device, torch.float32), "b c t h w -> (b t) c h w")
        if min(x.shape[-2:]) != self.resize_size:
            x = TF.resize(x, [self.resize_size], interpolation=TF.InterpolationMode.BILINEAR, antialias=True)
        x = TF.center_crop(x, [self.crop_size, self.crop_size])
        x = x.expand(-1, self.in_chans, -1, -1)  # grey -> in_chans; no-op when c == in_chans
        x = TF.normalize(x, self.mean, self.std)
        return rearrange(x, "(b t) c h w -> b c t h w", b=b)

    def preprocess(self, video: torch.Tensor) -> torch.Tensor:
        """Prepare clips exactly as the module docstring states (steps 1-4).

        Args:
            video: float (b c t h w) in [0, 1], c = 1 or ``in_chans``, t ≥ :attr:`frames_needed`, any h and w.

        Returns:
            float32 (b in_chans num_frames crop_size crop_size), normalised, on ``device``.

        Raises:
            TypeError, ValueError: as :func:`check_video` (including too few frames); or a bad channel count.
        """
        check_video(video, min_frames=self.frames_needed)
        return self.prepare_frames(video[:, :, : self.frames_needed : self.frame_stride])

    @torch.no_grad()
    def logits(self, video: torch.Tensor) -> torch.Tensor:
        """Class logits of clips: float32 (b num_classes), for ``video`` as :meth:`preprocess` takes it."""
        return self.net(self.preprocess(video)).float()

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """The model as a clip classifier (:class:`models.metrics.learned.ClipClassifier`): :meth:`logits`.

        Args:
            video: float (b c t h w) in [0, 1], c = 1 or ``in_chans``, t ≥ :attr:`frames_needed`, any h and w.

        Returns:
            float32 (b num_classes) logits.
        """
        return self.logits(video)

    @torch.no_grad()
    def features(self, video: torch.Tensor) -> torch.Tensor:
        """Pre-logit features ``net.forward_features``: float32 (b d), for ``video`` as :meth:`preprocess` takes it."""
        return self.net.forward_features(self.preprocess(video)).float()

    @torch.no_grad()
    def image_features(self, frames: torch.Tensor) -> torch.Tensor:
        """Features of single images, each fed to the net as a still clip of one token in time (no frame selection).

        The clip is the frame repeated ``tubelet_size`` times (1 for per-frame patches): it uses the net's time
        embedding of its first token (TimeSformer resamples ``time_embed`` to the input length) and its temporal
        attention attends to itself only, so the feature describes the frame's content.

        Args:
            frames: float (n c h w) in [0, 1], c = 1 or ``in_chans``.

        Returns:
            float32 (n d).
        """
        if frames.ndim != 4:
            raise ValueError(f"frames must have shape (n c h w), got {tuple(frames.shape)}")
        tubelet = getattr(getattr(self.net, "patch_embed", None), "tubelet_size", 1)
        clips = self.prepare_frames(repeat(frames, "n c h w -> n c k h w", k=tubelet))
        return self.net.forward_features(clips).float()

    def check_labels(self, labels: torch.Tensor, num_clips: int) -> torch.Tensor:
        """Integer labels (b,) in [0, num_classes), as a long tensor on ``device``.

        Raises:
            ValueError: not integers, wrong shape, or a label out of range (the first one is named).
        """
        return check_labels(labels, num_clips, self.num_classes, self.name).to(self.device)


def load_recognition_model(path: str | os.PathLike, device: str | torch.device = "cpu",
                           frame_stride: int = 1) -> RecognitionModel:
    """Load a recognition checkpoint or run folder; see :class:`RecognitionModel` (same arguments and errors)."""
    return RecognitionModel(path, device, frame_stride)


def classifier_from_run(path: str | os.PathLike, device: str | torch.device = "cpu",
                        frame_stride: int = 1) -> RecognitionModel:
    """A run's classifier as the callable the metrics take: ``(b c t h w)`` float32 in [0, 1] → ``(b k)`` logits.

    Its ``name`` (``<arch>:<run folder>``, plus ``/<ckpt stem>`` unless ``best.ckpt``) tags the report keys, e.g.
    ``classifier_accuracy[timesformer:divided]``; a run with ``data.num_frames=1`` is a per-frame reader
    (``identity_consistency[frameclassifier:frame_digit]``).

    Args:
        path: a checkpoint ``<run>/checkpoints/<name>.ckpt`` or a run folder (uses ``checkpoints/best.ckpt``).
        device: where the net runs.
        frame_stride: take every ``frame_stride``-th input frame, from frame 0.

    Raises:
        FileNotFoundError, ValueError: as :class:`RecognitionModel`.
    """
    return RecognitionModel(path, device, frame_stride)


class RecognitionExtractor:
    """Pre-logit features (``forward_features``) of a recognition run: a clip feature extractor for FVD
    (:class:`models.metrics.fvd.ClipFeatureExtractor`).

    Args:
        path: a checkpoint ``<run>/checkpoints/<name>.ckpt``, a run folder, or an already loaded
            :class:`RecognitionModel` (then ``device`` and ``frame_stride`` are its own).
        device: where the net runs.
        frame_stride: input frames between the clip's frames (frames).

    Raises:
        FileNotFoundError, ValueError: as :class:`RecognitionModel`.
    """

    def __init__(self, path: str | os.PathLike | RecognitionModel, device: str | torch.device = "cpu",
                 frame_stride: int = 1) -> None:
        self.model = path if isinstance(path, RecognitionModel) else RecognitionModel(path, device, frame_stride)
        self.name = self.model.name
        self.protocol = self.model.feature_protocol

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """Features float32 (b d) of float clips (b c t h w) in [0, 1] (see :meth:`RecognitionModel.preprocess`)."""
        return self.model.features(video)


class RecognitionFrameEncoder:
    """Per-frame features from a recognition run: each frame is a still one-token clip
    (:meth:`RecognitionModel.image_features`); an image encoder for :mod:`models.metrics.consistency`.

    Args:
        path: a checkpoint ``<run>/checkpoints/<name>.ckpt`` or a run folder.
        device: where the net runs.

    Raises:
        FileNotFoundError, ValueError: as :class:`RecognitionModel`.
    """

    def __init__(self, path: str | os.PathLike, device: str | torch.device = "cpu") -> None:
        self.model = RecognitionModel(path, device)
        self.name = self.model.name
        self.protocol = {**self.model.protocol, "num_frames": 1, "frames": "each frame as a still clip of one tubelet"}

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        """Features float32 (n d) of float frames (n c h w) in [0, 1]."""
        return self.model.image_features(frames)

    def frame_features(self, video: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """Per-frame features float32 (b t d) of float clips (b c t h w) in [0, 1]
        (:func:`models.metrics.consistency.encode_frames`)."""
        return encode_frames(self, video, batch_size)


def image_encoder_from_run(path: str | os.PathLike, device: str | torch.device = "cpu") -> RecognitionFrameEncoder:
    """A run's per-frame features as an image encoder, ``(n c h w)`` float32 in [0, 1] → ``(n d)``; see
    :class:`RecognitionFrameEncoder`."""
    return RecognitionFrameEncoder(path, device)


def is_run(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a run of ours (a folder, or a ``.ckpt`` file) rather than a TorchScript file."""
    path = Path(path)
    return path.is_dir() or path.suffix == ".ckpt"


def load_image_encoder(path: str | os.PathLike, device: str | torch.device = "cpu", **torchscript_kwargs: Any):
    """An image encoder from a local path: a run of ours (:func:`image_encoder_from_run`) or a TorchScript file
    (:func:`models.metrics.consistency.load_image_encoder`).

    Args:
        path: a recognition checkpoint (``.ckpt`` file, or a run folder holding ``config.yaml``), or otherwise a
            TorchScript image encoder file.
        device: where the encoder runs.
        torchscript_kwargs: preprocessing arguments of :class:`models.metrics.consistency.TorchScriptImageEncoder`
            (``preset``, ``image_size``, ...); ignored for runs.

    Raises:
        FileNotFoundError: ``path`` does not exist (the message says what it should hold).
        ValueError: as the encoder classes.
    """
    if Path(path).exists() and is_run(path):
        return RecognitionFrameEncoder(path, device)
    return consistency.load_image_encoder(path, device, **torchscript_kwargs)


__all__ = ["RecognitionExtractor", "RecognitionFrameEncoder", "RecognitionModel", "classifier_from_run",
           "image_encoder_from_run", "is_run", "load_image_encoder", "load_recognition_model"]
