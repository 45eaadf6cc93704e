"""Evaluate a checkpoint with the config saved by its own training run.

    python eval.py ckpt_path=outputs/train/<run>/<time>/checkpoints/best.ckpt
    python eval.py ckpt_path=... split=val +run_overrides.data.num_workers=0
    python eval.py ckpt_path=... trainer.devices=2 +trainer.strategy=ddp   # data parallel: the same metrics
    python eval.py ckpt_path=outputs/gen/dit/checkpoints/best.ckpt num_samples=128 \
        classifier=outputs/demo/divided/checkpoints/best.ckpt        # a generation checkpoint
    python eval.py ckpt_path=outputs/gen/digits/checkpoints/last.ckpt num_samples=8 grey=true \
        +labels.digit=7 +labels.direction=NE digit_classifier=outputs/frame_digit/checkpoints/best.ckpt   # "a 7 moving NE"

A **generation** checkpoint (a ``VideoDiffusion`` run) is evaluated by sampling ``num_samples`` labelled clips into
``<output_dir>/samples`` and scoring them with the same code as ``scripts/evaluate_videos.py``
(``generation_metrics.{json,md}`` and a per-frame figure); ``classifier`` adds motion accuracy and
``digit_classifier`` digit accuracy and identity consistency. A model conditioned on several label sets draws a
balanced grid of their combinations, or what ``labels`` asks for (``+labels.digit=7 +labels.direction=NE``).

The run's ``config.yaml`` (next to ``checkpoints/``) rebuilds the data and model; ``run_overrides`` patches it.
Weights are read with ``torch.load(weights_only=True)`` and loaded strictly. Prints the split's metrics and writes
them to ``<output_dir>/test_metrics.json``: ``test/acc_top1`` ... for a classifier, ``test/psnr``, ``test/ssim`` ...
for a stage-1 autoencoder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

__all__ = ["evaluate", "evaluate_generation"]

from models.run import Run, load_run
from train import scalar_metrics

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test (or validate) a checkpoint and write ``{split}_metrics.json`` to ``cfg.paths.output_dir``.

    Returns:
        Metrics keyed ``{split}/acc_top1`` etc., plus ``ckpt_path`` and ``metrics_path``.

    Raises:
        ValueError: ``split`` is not ``test`` or ``val``.
    """
    run = load_run(cfg.ckpt_path)  # its kind comes from the class its config builds
    if run.kind == "diffusion":
        return evaluate_generation(cfg, run)
    run_cfg = run.config
    if cfg.split not in ("test", "val"):
        raise ValueError(f"split={cfg.split!r} must be 'test' or 'val'")
    if cfg.get("run_overrides"):
        run_cfg = OmegaConf.merge(run_cfg, cfg.run_overrides)
    run_cfg.data.generate = None  # evaluation never builds data

    datamodule = instantiate(run_cfg.data)
    model = instantiate(run_cfg.model)
    model.load_state_dict(run.state_dict(), strict=True)
    trainer_options = {"accelerator": run_cfg.trainer.accelerator, "devices": 1, "precision": run_cfg.trainer.precision,
                       **instantiate(cfg.get("trainer") or {})}  # e.g. trainer.devices=2 +trainer.strategy=ddp
    trainer = pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=True, **trainer_options)
    run = trainer.test if cfg.split == "test" else trainer.validate
    metrics: dict[str, Any] = scalar_metrics(run(model, datamodule=datamodule)[0])

    output_dir = Path(cfg.paths.output_dir)
    metrics_path = output_dir / f"{cfg.split}_metrics.json"
    metrics.update(ckpt_path=str(cfg.ckpt_path), metrics_path=str(metrics_path))
    if not trainer.is_global_zero:  # data-parallel evaluation: metrics are synced; rank 0 writes and prints
        return metrics
    output_dir.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True))
    for key, value in sorted(metrics.items()):  # what the run type logs: accuracies, or PSNR/SSIM for stage 1
        if key.startswith(f"{cfg.split}/"):
            print(f"{key}: {value:.4f}")
    print(f"metrics written to {metrics_path}")
    return metrics


def evaluate_generation(cfg: DictConfig, run: Run | None = None) -> dict[str, Any]:
    """Sample ``cfg.num_samples`` clips from a generation checkpoint and score them with the metric library.

    ``run``: ``cfg.ckpt_path`` already opened (:func:`models.run.load_run`), or None to open it here.

    Returns:
        Metric values keyed ``gen/<metric>``, plus ``samples`` (the list file) and ``metrics_path``.

    Raises:
        ValueError: ``num_samples`` < 1.
    """
    from models.diffusion.generate import generate_to_folder
    from models.metrics.evaluate import evaluate_videos, summarise
    from models.metrics.report import write_report

    if cfg.num_samples < 1:
        raise ValueError(f"num_samples={cfg.num_samples} must be at least 1")
    output_dir = Path(cfg.paths.output_dir)
    request = {str(k): str(v) for k, v in (cfg.get("labels") or {}).items()}
    guidance = cfg.get("guidance_scale")  # a number, or {set: scale} in the order applied (nested guidance)
    guidance = {str(k): float(v) for k, v in guidance.items()} if isinstance(guidance, DictConfig) else guidance
    samples = generate_to_folder(run or cfg.ckpt_path, output_dir / "samples", cfg.num_samples, steps=cfg.get("steps"),
                                 sampler=cfg.get("sampler"), seed=cfg.seed, grey=cfg.get("grey", False),
                                 guidance_scale=guidance, requests=[request] if request else None)
    digits = samples.parent / "samples_digit.txt"
    result = evaluate_videos(samples, classifier=cfg.get("classifier"), groups=["temporal", "accuracy"],
                             digit_classifier=cfg.get("digit_classifier"),
                             digit_labels=digits if digits.is_file() else None)
    paths = write_report(result, output_dir / "generation_metrics.json")
    print(summarise(result))
    print(f"metrics written to {paths['json']}")
    metrics: dict[str, Any] = {f"gen/{key}": value for key, value in result.metrics.items()}
    metrics.update(ckpt_path=str(cfg.ckpt_path), samples=str(samples), metrics_path=str(paths["json"]))
    return metrics


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
