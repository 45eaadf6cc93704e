"""A learning curve of generated motion: every N steps, sample clips and measure their flow direction accuracy.

A single endpoint hides whether stage 2 converges; this callback logs, every ``every_n_steps`` optimizer steps,
``curve/flow_direction_accuracy`` of ``num_samples`` clips drawn with the EMA weights (labels cycling through the
classes, a fixed seed, so points differ only by the weights), plus their mean dominant speed, and appends the same
row to ``<run>/motion_curve.csv``. ``scripts/plot_curves.py`` draws it. The metric needs compass class names, which
the data module provides (``class_names``: the latent cache's ``classes.txt``, or the dataset's
``classes_<task>.txt``); without them the callback warns once and does nothing.

With frame conditioning (``num_cond_frames = k > 0``) the clips continue the first ``num_samples`` validation clips
from their first k frames, with their labels.

With ``digit_classifier`` (a per-frame classifier, ``experiment=mmnist_frame_digit``) every point also measures the
other half of coherence, on the same clips: ``digit_accuracy`` (frames showing the requested digit) and
``identity_consistency`` (clips whose frames all show one digit), so a user sees when motion and when shape is
learned. The digits asked for are the ``digit_set`` labels of a multi-set model (``model.conditioning``), or the
single label of a model whose data is labelled by digit (``still``, or an image stage). A model conditioned on several
sets draws a balanced grid of their combinations (:func:`models.diffusion.labels.balanced_grid`); its motion is
scored against its ``direction_set`` labels.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import pytorch_lightning as pl
import torch

from data.compass import compass_angles
from models.diffusion.labels import balanced_grid
from models.metrics.motion import direction_hits, dominant_motion

log = logging.getLogger(__name__)

CURVE_FILE = "motion_curve.csv"
# point key -> CSV column, in column order (the first two are the file's original columns)
COLUMNS = {"flow_direction_accuracy": "flow_direction_accuracy", "speed": "speed_px_per_frame",
           "digit_accuracy": "digit_accuracy", "identity_consistency": "identity_consistency"}


class MotionCurve(pl.Callback):
    """Log the flow direction accuracy of generated clips during stage-2 training.

    Args:
        every_n_steps: optimizer steps between points (the first point is at step ``every_n_steps``).
        num_samples: clips per point (labels ``i % num_classes``).
        num_inference_steps: sampler steps per clip (the run's sampler, guidance and eta otherwise).
        seed: seeds the sampler at every point.
        digit_classifier: optional per-frame digit classifier checkpoint (see the module docstring).
        digit_set, direction_set: which label sets of a multi-set model are the digit and the direction.
        guidance_scale: classifier-free guidance of the sampled points (None: the run's ``model.sampling``).

    Raises:
        ValueError: a count below 1.
    """

    def __init__(self, every_n_steps: int = 500, num_samples: int = 64, num_inference_steps: int = 25,
                 seed: int = 0, digit_classifier: str | None = None, digit_set: str = "digit",
                 direction_set: str = "direction", guidance_scale: float | None = None) -> None:
        super().__init__()
        for name, value in (("every_n_steps", every_n_steps), ("num_samples", num_samples),
                            ("num_inference_steps", num_inference_steps)):
            if int(value) < 1:
                raise ValueError(f"callbacks.motion_curve.{name}={value} must be >= 1")
        self.every_n_steps = int(every_n_steps)
        self.num_samples = int(num_samples)
        self.num_inference_steps = int(num_inference_steps)
        self.seed = int(seed)
        self.digit_classifier = digit_classifier
        self.digit_set, self.direction_set = digit_set, direction_set
        self.guidance_scale = guidance_scale
        self._angles = None
        self._digits = None
        self._disabled = False
        self._last_step = -1

    def _class_angles(self, trainer: pl.Trainer, pl_module: pl.LightningModule):
        names = getattr(trainer.datamodule, "class_names", None) if trainer.datamodule is not None else None
        if pl_module.hparams.conditioning:
            if self.direction_set not in pl_module.hparams.conditioning:
                return None
            names = trainer.datamodule.label_set_classes.get(self.direction_set)
        if pl_module.hparams.num_frames < 2:
            return None  # an image stage: nothing moves
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
            labels.append(pl_module.labels_of(batch) if pl_module.hparams.conditioning else batch["label"].long())
            latents.append(pl_module.latents(batch)[:, :, :pl_module.hparams.num_cond_frames])
            if sum(len(x) for x in labels) >= self.num_samples:
                break
        if isinstance(labels[0], dict):
            joined = {name: torch.cat([x[name] for x in labels])[: self.num_samples] for name in labels[0]}
        else:
            joined = torch.cat(labels)[: self.num_samples]
        return joined, torch.cat(latents)[: self.num_samples]

    def _digit_model(self):
        if self._digits is None and self.digit_classifier:
            from models.metrics.identity import check_per_frame
            from models.recognition.scoring import load_recognition_model

            self._digits = load_recognition_model(self.digit_classifier)
            check_per_frame(self._digits)
        return self._digits

    @torch.no_grad()
    def measure(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float] | None:
        """Sample, decode and score one point; None when there is nothing to score (no compass classes and no
        digit classifier)."""
        if self._angles is None and not self._disabled:
            self._angles = self._class_angles(trainer, pl_module)
            if self._angles is None and not self.digit_classifier:
                log.warning("motion curve off: the data names no compass classes and no digit classifier is given")
                self._disabled = True
        if self._disabled:
            return None
        k = pl_module.hparams.num_cond_frames
        cond = None
        multi = bool(pl_module.hparams.conditioning)
        if k:
            labels, cond = self._conditioning(trainer, pl_module)
        elif multi:
            grid = balanced_grid(pl_module.label_sizes, self.num_samples)
            labels = {name: torch.tensor(value, device=pl_module.device) for name, value in grid.items()}
        else:
            classes = len(self._angles) if self._angles is not None else max(int(pl_module.hparams.num_classes), 1)
            labels = torch.arange(self.num_samples, device=pl_module.device) % classes
        count = len(next(iter(labels.values()))) if multi else len(labels)
        video = pl_module.generate(labels, num_samples=count, cond_latents=cond,
                                   generator=torch.Generator().manual_seed(self.seed),
                                   num_inference_steps=self.num_inference_steps,
                                   guidance_scale=self.guidance_scale)  # uint8 (b c t h w)
        grey = video.float().mean(dim=1, keepdim=True) / 255.0  # (b 1 t h w) in [0, 1]
        point = {}
        if self._angles is not None:
            directions = labels[self.direction_set] if multi else labels
            motion = dominant_motion(grey)  # (b 2), measured once for both figures
            point["flow_direction_accuracy"] = direction_hits(motion, directions.cpu(), self._angles).item()
            point["speed"] = motion.norm(dim=1).mean().item()
        digits = labels.get(self.digit_set) if multi else (labels if self._angles is None else None)
        if self._digit_model() is not None and digits is not None:
            from models.metrics.identity import digit_accuracy, frame_predictions, identity_consistency

            predictions = frame_predictions(self._digits, grey)  # (b t)
            point["digit_accuracy"] = digit_accuracy(predictions, digits.cpu()).mean().item()
            point["identity_consistency"] = identity_consistency(predictions).mean().item()
        return point

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
        columns = [key for key in COLUMNS if key in point]
        with path.open("a", newline="") as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(["step", *[COLUMNS[key] for key in columns]])
            writer.writerow([step, *[f"{point[key]:.6f}" for key in columns]])
        log.info("step %d: %s", step, ", ".join(f"{key} {point[key]:.3f}" for key in columns))


__all__ = ["CURVE_FILE", "MotionCurve"]
