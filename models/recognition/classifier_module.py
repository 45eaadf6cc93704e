"""A thin LightningModule that trains any clip classifier ``net: (b c t h w) -> (b num_classes)``."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from einops import rearrange, reduce
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from models.checkpointing import ExactResume
from models.optim import lightning_optimizers, weight_decay_groups
from models.run import register_run_kind

log = logging.getLogger(__name__)


def classification_metrics(num_classes: int, prefix: str) -> MetricCollection:
    """top-1 and top-5 accuracy (micro) and mean class accuracy (macro top-1), keyed ``{prefix}acc_*``."""
    return MetricCollection(
        {
            "acc_top1": MulticlassAccuracy(num_classes, top_k=1, average="micro"),
            "acc_top5": MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro"),
            "acc_mean_class": MulticlassAccuracy(num_classes, top_k=1, average="macro"),
        },
        prefix=prefix,
    )


VIEW_AGGREGATIONS = ("sum_logits", "mean_softmax")


def aggregate_views(logits: torch.Tensor, aggregation: str) -> torch.Tensor:
    """Per-video scores from the logits of its test views.

    Args:
        logits: float tensor (b v k): v views of each of b videos.
        aggregation: ``"sum_logits"`` (TimeSformer's test code sums the views' logits) or ``"mean_softmax"``
            (the average of the views' class probabilities, as PySlowFast's ``ensemble_method: sum`` of softmax
            scores and ViViT's evaluation do up to a constant).

    Returns:
        float tensor (b k): logits for ``sum_logits``, log-probabilities for ``mean_softmax``, so that argmax and
        cross-entropy apply to both.

    Raises:
        ValueError: an unknown aggregation.
    """
    if aggregation == "sum_logits":
        return reduce(logits, "b v k -> b k", "sum")
    if aggregation == "mean_softmax":
        return reduce(logits.softmax(dim=-1), "b v k -> b k", "mean").clamp_min(1e-12).log()
    raise ValueError(f"model.view_aggregation={aggregation!r} is not one of {VIEW_AGGREGATIONS}")


@register_run_kind("classifier")
class VideoClassifier(ExactResume, pl.LightningModule):
    """Cross-entropy training of a video classifier.

    Args:
        net: a pure-torch module mapping float clips (b c t h w) to logits (b num_classes).
        optimizer: a partial ``optimizer(params)`` (Hydra ``_partial_: true``).
        scheduler: a partial ``scheduler(optimizer, total_steps=...)`` stepped every optimizer step, or None.
        num_classes: number of classes.
        label_smoothing: cross-entropy label smoothing in [0, 1).
        compile: compile ``net`` in place (``module.compile()`` keeps state-dict keys stable).
        pretrained: fine-tune from published or saved weights (an HF folder or a run of this project, see
            :func:`models.recognition.pretrained.init_from_pretrained`); the head is replaced when the class count
            differs.
        pretrained_tubelet_init: ``central_frame`` or ``filter``: how a timm image ViT's patch kernel becomes a tubelet
            kernel when ``pretrained`` is one (:func:`models.recognition.inflate.inflate_patch_kernel`).
        view_aggregation: how a multi-view test (``video`` of shape (b v c t h w), ``data.test_views``) turns the
            views' logits into one score per video (:func:`aggregate_views`).

    Logs ``train/loss``, ``train/acc_top1``, ``train/decode_failures``, ``{val,test}/loss`` and
    ``{val,test}/acc_top1``, ``acc_top5``, ``acc_mean_class``.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None,
        num_classes: int,
        label_smoothing: float = 0.0,
        compile: bool = False,
        pretrained: str | None = None,
        view_aggregation: str = "sum_logits",
        pretrained_tubelet_init: str = "central_frame",
    ) -> None:
        super().__init__()
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"model.label_smoothing={label_smoothing} must be in [0, 1)")
        if view_aggregation not in VIEW_AGGREGATIONS:
            raise ValueError(f"model.view_aggregation={view_aggregation!r} is not one of {VIEW_AGGREGATIONS}")
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.net = net
        if pretrained:
            from models.recognition.pretrained import init_from_pretrained

            replaced = init_from_pretrained(self.net, pretrained, pretrained_tubelet_init)
            log.info("initialised from %s%s", pretrained, f" (new {', '.join(replaced)})" if replaced else "")
        if compile:
            self.net.compile()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.train_acc = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_metrics = classification_metrics(num_classes, "val/")
        self.test_metrics = classification_metrics(num_classes, "test/")
        self.decode_failures = 0

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.net(video)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        logits = self(batch["video"])
        loss = F.cross_entropy(logits, batch["label"], label_smoothing=self.hparams.label_smoothing)
        self.train_acc(logits, batch["label"])
        self.decode_failures += int(batch["decode_failures"].sum())
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc_top1", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/decode_failures", float(self.decode_failures), on_step=False, on_epoch=True)
        return loss

    def scores(self, video: torch.Tensor) -> torch.Tensor:
        """Logits (b k) of clips (b c t h w), or per-video aggregated scores of multi-view items (b v c t h w)."""
        if video.ndim == 5:
            return self(video)
        b = video.shape[0]
        logits = self(rearrange(video, "b v c t h w -> (b v) c t h w"))  # every view of every video at once
        return aggregate_views(rearrange(logits, "(b v) k -> b v k", b=b), self.hparams.view_aggregation)

    def _eval_step(self, batch: dict[str, torch.Tensor], stage: str, metrics: MetricCollection) -> None:
        logits = self.scores(batch["video"])
        self.log(f"{stage}/loss", F.cross_entropy(logits, batch["label"]), prog_bar=False, sync_dist=True)
        metrics.update(logits, batch["label"])
        self.log_dict(metrics, prog_bar=stage == "val")

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val", self.val_metrics)

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_metrics)

    def configure_optimizers(self):
        return lightning_optimizers(self.optimizer_factory, self.scheduler_factory, weight_decay_groups(self.net),
                                    self.trainer.estimated_stepping_batches)
