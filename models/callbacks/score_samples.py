"""Sample and score a generation run when its training ends, so that a sweep of stage-2 runs is one Hydra multirun.

    python train.py -m experiment=mmnist_dit,mmnist_dit_space_only model.noise_prior=iid,progressive,shared \\
        callbacks.score_samples.num_samples=256 callbacks.score_samples.classifier=<recognition ckpt> ...
    python scripts/summarize_sweep.py <sweep dir> --metric flow_direction_accuracy
    python scripts/generation_table.py <sweep dir>/*/samples_metrics.json

:class:`ScoreSamples` does, in the run's folder, what ``scripts/generation_demo.sh`` steps 6 and 7 do for one row:
``checkpoints/last.ckpt`` (the final weights, written here), ``num_samples`` clips from the EMA weights
(:func:`models.diffusion.generate.generate_to_folder`) in ``samples/``, and their scores
(:func:`models.metrics.evaluate.evaluate_videos`) in ``samples_metrics.{json,md}``. Rank 0 samples and writes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl

log = logging.getLogger(__name__)


class ScoreSamples(pl.Callback):
    """At the end of ``fit``: save the final weights, sample clips and score them.

    Args:
        num_samples: clips to draw (0: off, the default in ``experiment=mmnist_dit``).
        steps: sampler steps (None: the run's ``model.sampling.num_inference_steps``).
        classifier: recognition checkpoint for ``classifier_accuracy`` (None: skipped, as in ``evaluate_videos``).
        grey: write grey clips (grey data such as Moving MNIST).
        groups: metric groups of :func:`models.metrics.evaluate.evaluate_videos`.
        seed: sampler seed.
        digit_classifier: per-frame digit classifier for ``digit_accuracy`` and ``identity_consistency`` (None:
            skipped). A multi-set model's digits are read from ``samples/samples_digit.txt``.
        guidance_scale: classifier-free guidance of the samples (None: the run's ``model.sampling``).
    """

    def __init__(self, num_samples: int = 0, steps: int | None = None, classifier: str | None = None,
                 grey: bool = True, groups: tuple[str, ...] = ("temporal", "accuracy"), seed: int = 0,
                 digit_classifier: str | None = None, guidance_scale: float | None = None) -> None:
        if num_samples < 0:
            raise ValueError(f"callbacks.score_samples.num_samples={num_samples} must be >= 0")
        self.num_samples, self.steps, self.classifier = num_samples, steps, classifier
        self.grey, self.groups, self.seed = grey, tuple(groups), seed
        self.digit_classifier, self.guidance_scale = digit_classifier, guidance_scale

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.num_samples == 0:
            return
        run = Path(trainer.default_root_dir)
        ckpt = run / "checkpoints" / "last.ckpt"
        trainer.save_checkpoint(ckpt)  # the final weights, whatever the checkpoint callbacks last saved
        if not trainer.is_global_zero:
            return
        from models.diffusion.generate import generate_to_folder
        from models.metrics.evaluate import evaluate_videos
        from models.metrics.report import write_report

        samples = generate_to_folder(ckpt, run / "samples", self.num_samples, steps=self.steps, seed=self.seed,
                                     grey=self.grey, progress=False, guidance_scale=self.guidance_scale)
        digits = samples.parent / "samples_digit.txt"
        result = evaluate_videos(samples, classifier=self.classifier, groups=self.groups, progress=False,
                                 digit_classifier=self.digit_classifier,
                                 digit_labels=digits if digits.is_file() and samples.name != digits.name else None)
        write_report(result, run / "samples_metrics.json")
        log.info("scored %d samples: %s", self.num_samples, run / "samples_metrics.json")
