"""A learning curve of generated motion: every N steps, sample clips and measure their flow direction accuracy.

A single endpoint hides whether stage 2 converges; this callback logs, every ``every_n_steps`` optimizer steps,
``curve/flow_direction_accuracy`` of ``num_samples`` clips drawn with the EMA weights (labels cycling through the
classes, a fixed seed, so points differ only by the weights), plus their mean dominant speed, and appends the same
row to ``<run>/motion_curve.csv``. ``scripts/plot_curves.py`` draws it. The metric needs compass class names, which
the data module provides (``class_names``: the latent cache's ``classes.txt``, or the dataset's
``classes_<task>.txt``); without them the callback warns once and does nothing.

With frame conditioning (``num_cond_frames = k > 0``) the clips continue the first ``num_samples`` validation clips
from their first k frames, with their labels.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytorch_lightning as pl
import torch

from models.metrics.motion import compass_angles, direction_hits, dominant_motion

log = logging.getLogger(__name__)

CURVE_FILE = "motion_curve.csv"


class MotionCurve(pl.Callback):
    """Log the flow direction accuracy of generated clips during stage-2 training.

    Args:
        every_n_steps: optimizer steps between points (the first point is at step ``every_n_steps``).
        num_samples: clips per point (labels ``i % num_classes``).
        num_inference_steps: sampler steps per clip (the run's sampler, guidance and eta otherwise).
        seed: seeds the sampler at every point.

    Raises:
        ValueError: a count below 1.
    """

    def __init__(self, every_n_steps: int = 500, num_samples: int = 64, num_inference_steps: int = 25,
                 seed: int = 0) -> None:
        super().__init__()
        for name, value in (("every_n_steps", every_n_steps), ("num_samples", num_samples),
                            ("num_inference_steps", num_inference_steps)):
            if int(value) < 1:
                raise ValueError(f"callbacks.motion_curve.{name}={value} must be >= 1")
        self.every_n_steps = int(every_n_steps)
        self.num_samples = int(num_samples)
        self.num_inference_steps = int(num_inference_steps)
        self.seed = int(seed)
        self._angles = None
        self._disabled = False
        self._last_step = -1

    def _class_angles(self, trainer: pl.Trainer):
        names = getattr(trainer.datamodule, "class_names", None) if trainer.datamodule is not None else None
        try:
            return compass_angles(names) if names else None
        except ValueError as error:
            log.warning("motion curve off: %s", error)
            return None

    def _conditioning(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        """(labels, first-k latent frames) of the first ``num_samples`` validation clips."""
        labels, latents = [], []
        for batch in trainer.datamodule.val_dataloader():
            batch = {key: value.to(pl_module.device) for key, value in batch.items() if torch.is_tensor(value)}
            labels.append(batch["label"].long())
            latents.append(pl_module.latents(batch)[:, :, :pl_module.hparams.num_cond_frames])
            if sum(len(x) for x in labels) >= self.num_samples:
                break
        return torch.cat(labels)[: self.num_samples], torch.cat(latents)[: self.num_samples]

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float] | None:
        """Sample, decode and score one point; None when the data names no compass classes."""
        if self._angles is None:
            self._angles = self._class_angles(trainer)
            if self._angles is None:
                if not self._disabled:
                    log.warning("motion curve off: the data module names no compass classes (classes.txt)")
                self._disabled = True
                return None
        k = pl_module.hparams.num_cond_frames
        cond = None
        if k:
            labels, cond = self._conditioning(trainer, pl_module)
        else:
            labels = torch.arange(self.num_samples, device=pl_module.device) % len(self._angles)
        video = pl_module.generate(labels, num_samples=len(labels), cond_latents=cond,
                                   generator=torch.Generator().manual_seed(self.seed),
                                   num_inference_steps=self.num_inference_steps)  # uint8 (b c t h w)
        grey = video.float().mean(dim=1, keepdim=True) / 255.0  # (b 1 t h w) in [0, 1]
        motion = dominant_motion(grey)  # (b 2), measured once for both figures
        return {
            "flow_direction_accuracy": direction_hits(motion, labels.cpu(), self._angles).item(),
            "speed": motion.norm(dim=1).mean().item(),
        }

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if not trainer.is_global_zero:  # measured and written once, by rank 0
            return
        if self._disabled or step == self._last_step or step % self.every_n_steps:
            return
        self._last_step = step
        point = self.measure(trainer, pl_module)
        if point is None:
            return
        # Straight to the loggers: every point is kept, whatever the trainer's log_every_n_steps.
        for logger in trainer.loggers:
            logger.log_metrics({f"curve/{key}": value for key, value in point.items()}, step=step)
        path = Path(trainer.default_root_dir) / CURVE_FILE
        new = not path.is_file()
        with path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["step", "flow_direction_accuracy", "speed_px_per_frame"])
            writer.writerow([step, f"{point['flow_direction_accuracy']:.6f}", f"{point['speed']:.4f}"])
        log.info("step %d: flow_direction_accuracy %.3f, speed %.2f px/frame", step,
                 point["flow_direction_accuracy"], point["speed"])


__all__ = ["CURVE_FILE", "MotionCurve"]
