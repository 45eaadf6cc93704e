"""A 2D image classifier applied to every frame: the per-frame baseline of video recognition.

Each frame is classified alone by a timm image model; the clip's logits are the mean of its frames' logits, the
"average consensus" of TSN (Wang et al., ECCV 2016, "Temporal Segment Networks", §3.1). The model never compares two
frames, so, like TimeSformer's ``space_only``, it sees a clip as an unordered set of frames.

Trained on one frame per clip (``data.num_frames=1``: a random frame in training, the centre frame in evaluation) it is
the framework's per-frame digit classifier, which the identity-consistency metric uses
(:mod:`models.metrics.identity`).
"""

from __future__ import annotations

import timm
import torch
from einops import rearrange, reduce
from torch import nn


class FrameClassifier(nn.Module):
    """A timm image classifier run on every frame, logits averaged over time.

    Args:
        backbone: a timm model name (``timm.list_models()``), built with random weights: nothing is downloaded.
        num_classes: number of classes.
        in_chans: input channels.
        drop_rate: dropout before the classifier (timm's ``drop_rate``).
        **kwargs: further keyword arguments of ``timm.create_model`` (for example ``drop_path_rate``).

    Raises:
        RuntimeError: ``backbone`` is not a timm model (timm's message names it).
    """

    def __init__(self, backbone: str, num_classes: int, in_chans: int = 3, drop_rate: float = 0.0, **kwargs) -> None:
        super().__init__()
        self.backbone = timm.create_model(backbone, pretrained=False, num_classes=num_classes, in_chans=in_chans,
                                          drop_rate=drop_rate, **kwargs)
        self.in_chans = in_chans
        self.num_classes = num_classes

    @staticmethod
    def _check(video: torch.Tensor) -> None:
        if video.ndim != 5:
            raise ValueError(f"video must be (b c t h w), got shape {tuple(video.shape)}")

    def forward_frames(self, video: torch.Tensor) -> torch.Tensor:
        """Logits of every frame.

        Args:
            video: float (b c t h w), normalised as the run's data config says.

        Returns:
            float (b t num_classes).
        """
        self._check(video)
        logits = self.backbone(rearrange(video, "b c t h w -> (b t) c h w"))  # ((b t) k)
        return rearrange(logits, "(b t) k -> b t k", b=video.shape[0])

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """Pooled pre-logit features of the backbone, averaged over frames: float (b d)."""
        self._check(video)
        frames = self.backbone.forward_head(self.backbone.forward_features(
            rearrange(video, "b c t h w -> (b t) c h w")), pre_logits=True)  # ((b t) d)
        return reduce(frames, "(b t) d -> b d", "mean", b=video.shape[0])

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Clip logits (b num_classes): the mean over t of :meth:`forward_frames`."""
        return reduce(self.forward_frames(video), "b t k -> b k", "mean")
