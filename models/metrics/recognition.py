"""A recognition checkpoint trained in this framework, used as a metric network: logits, features, accuracy.

A run folder, as ``train.py`` writes it::

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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torchvision.transforms.v2.functional as TF
from einops import rearrange, repeat
from omegaconf import DictConfig

from models.metrics.checks import check_video
from models.run import load_run



class RecognitionModel:
    """A trained clip classifier in eval mode, with the data protocol it was trained with.

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
        if not isinstance(labels, torch.Tensor):
            labels = torch.as_tensor(labels)
        if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.shape != (num_clips,):
            raise ValueError(f"labels must be integers of shape ({num_clips},), got dtype={labels.dtype} "
                             f"shape={tuple(labels.shape)}")
        bad = (labels < 0) | (labels >= self.num_classes)
        if bad.any():
            index = int(bad.nonzero()[0])
            raise ValueError(f"labels[{index}]={int(labels[index])} is out of range [0, num_classes={self.num_classes})"
                             f" of {self.name}")
        return labels.to(self.device, torch.long)


def load_recognition_model(path: str | os.PathLike, device: str | torch.device = "cpu",
                           frame_stride: int = 1) -> RecognitionModel:
    """Load a recognition checkpoint or run folder; see :class:`RecognitionModel` (same arguments and errors)."""
    return RecognitionModel(path, device, frame_stride)


def count_correct(model: RecognitionModel, video: torch.Tensor, labels: torch.Tensor) -> int:
    """Number of clips whose arg-max logit equals the label.

    Args:
        model: the classifier.
        video: float (b c t h w) in [0, 1], as :meth:`RecognitionModel.preprocess` takes it.
        labels: integer (b,) in [0, num_classes).

    Raises:
        ValueError: bad labels (see :meth:`RecognitionModel.check_labels`) or a bad video.
    """
    predicted = model.logits(video).argmax(dim=1)  # checks the video first
    return int((predicted == model.check_labels(labels, video.shape[0])).sum())


def classifier_accuracy(model: RecognitionModel, video: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy of a trained classifier on clips: the fraction in [0, 1] whose arg-max equals the label.

    Higher is better. For generated clips this measures whether the generator produced the class it was asked for
    ("classifier accuracy" of conditional video generation), as judged by ``model``.

    Args:
        model: the classifier.
        video: float (b c t h w) in [0, 1].
        labels: integer (b,) in [0, num_classes).

    Raises:
        ValueError: bad labels or a bad video.
    """
    return count_correct(model, video, labels) / video.shape[0]


def batched_classifier_accuracy(model: RecognitionModel, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Top-1 accuracy over a stream of ``(video, labels)`` batches, e.g. :func:`models.metrics.video_set.iter_batches`.

    Every clip counts once: ``Σ correct / Σ clips``, whatever the batch sizes.

    Args:
        model: the classifier.
        batches: pairs of float (b c t h w) in [0, 1] and integer (b,) labels.

    Raises:
        ValueError: no clips, unlabelled batches (labels None), or bad labels / videos.
    """
    correct = total = 0
    for video, labels in batches:
        if labels is None:
            raise ValueError("classifier accuracy needs labelled clips, got labels=None")
        correct += count_correct(model, video, labels)
        total += video.shape[0]
    if total == 0:
        raise ValueError("no clips were given")
    return correct / total
