"""Evaluate a checkpoint on the test split with the config saved by its own training run.

    python eval.py ckpt_path=outputs/train/<run>/<time>/checkpoints/best.ckpt
    python eval.py ckpt_path=... split=val +run_overrides.data.num_workers=0

The run's ``config.yaml`` (next to ``checkpoints/``) rebuilds the data and model; ``run_overrides`` patches it.
Weights are read with ``torch.load(weights_only=True)`` and loaded strictly. Prints top-1, top-5 and mean class
accuracy and writes them to ``<output_dir>/test_metrics.json`` (keys like ``test/acc_top1``).
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

from models.checkpointing import load_state_dict
from train import scalar_metrics

log = logging.getLogger(__name__)


def load_run_config(ckpt_path: str | Path) -> DictConfig:
    """The resolved config saved by the run that wrote ``ckpt_path`` (``<run>/checkpoints/x.ckpt``).

    Raises:
        FileNotFoundError: the checkpoint or the run's ``config.yaml`` is missing.
    """
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path} does not exist")
    config = ckpt_path.resolve().parent.parent / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{config} not found: eval.py needs the config.yaml that train.py saved for this run")
    return OmegaConf.load(config)


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Test (or validate) a checkpoint and write ``{split}_metrics.json`` to ``cfg.paths.output_dir``.

    Returns:
        Metrics keyed ``{split}/acc_top1`` etc., plus ``ckpt_path`` and ``metrics_path``.

    Raises:
        ValueError: ``split`` is not ``test`` or ``val``.
    """
    if cfg.split not in ("test", "val"):
        raise ValueError(f"split={cfg.split!r} must be 'test' or 'val'")
    run_cfg = load_run_config(cfg.ckpt_path)
    if cfg.get("run_overrides"):
        run_cfg = OmegaConf.merge(run_cfg, cfg.run_overrides)
    run_cfg.data.generate = None  # evaluation never builds data

    datamodule = instantiate(run_cfg.data)
    model = instantiate(run_cfg.model)
    model.load_state_dict(load_state_dict(cfg.ckpt_path), strict=True)
    trainer = pl.Trainer(accelerator=run_cfg.trainer.accelerator, devices=1, precision=run_cfg.trainer.precision,
                         logger=False, enable_checkpointing=False, enable_progress_bar=True)
    run = trainer.test if cfg.split == "test" else trainer.validate
    metrics: dict[str, Any] = scalar_metrics(run(model, datamodule=datamodule)[0])

    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = output_dir / f"{cfg.split}_metrics.json"
    metrics.update(ckpt_path=str(cfg.ckpt_path), metrics_path=str(metrics_path))
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True))
    for name in ("acc_top1", "acc_top5", "acc_mean_class"):
        print(f"{cfg.split}/{name}: {metrics[f'{cfg.split}/{name}']:.4f}")
    print(f"metrics written to {metrics_path}")
    return metrics


@hydra.main(version_base="1.3", config_path="configs", config_name="eval")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
