"""Train a model from the Hydra config in ``configs/train.yaml``.

    python train.py                                         # divided TimeSformer on Moving MNIST direction
    python train.py experiment=mmnist_direction_space_only  # the no-temporal-attention ablation
    python train.py model.net.depth=6 trainer.max_epochs=20 logger=many
    python train.py ckpt_path=outputs/train/<run>/<time>/checkpoints/last.ckpt   # resume where it stopped

A run writes to ``paths.output_dir``: ``config.yaml`` (resolved), ``checkpoints/{best,last}.ckpt`` (written
atomically), logger files, and ``train_metrics.json``. A resumed run writes into the folder of the run it resumes
(loggers start a new ``version_N``), so ``best.ckpt`` keeps competing with the scores saved before the interruption.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from models.checkpointing import AtomicCheckpointIO

log = logging.getLogger(__name__)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a config group mapping (callbacks, loggers) that has a ``_target_``."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if isinstance(entry, DictConfig) and "_target_" in entry]


def build_trainer(cfg: DictConfig, **overrides: Any) -> pl.Trainer:
    """The configured Trainer with callbacks, loggers and atomic checkpoint writes."""
    loggers = instantiate_group(cfg.get("logger"))
    return instantiate(
        cfg.trainer,
        callbacks=instantiate_group(cfg.get("callbacks")),
        logger=loggers if loggers else False,
        plugins=[AtomicCheckpointIO()],
        **overrides,
    )


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Plain floats from Lightning's metric dicts (tensors or numbers)."""
    return {key: float(value) for key, value in metrics.items()}


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit (and optionally test) the configured model.

    Args:
        cfg: the composed ``train.yaml`` config.

    Returns:
        The final metrics, with ``best_model_path`` and ``output_dir``.

    Raises:
        ValueError: a bad config value (raised by the module it configures, naming the field).
    """
    if cfg.get("ckpt_path"):
        run_dir = Path(cfg.ckpt_path).resolve().parent.parent
        if not Path(cfg.ckpt_path).is_file():
            raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path} does not exist")
        if (run_dir / "config.yaml").is_file():
            cfg.paths.output_dir = str(run_dir)  # resume in place: checkpoints keep their best-so-far score
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))  # intra-op threads of the training process

    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    trainer = build_trainer(cfg)
    trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    metrics: dict[str, Any] = scalar_metrics(trainer.callback_metrics)

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if cfg.get("test"):
        if not best:
            log.warning("no best checkpoint was saved; testing the current weights")
        results = trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update(scalar_metrics(results[0]))
    metrics.update(best_model_path=best, output_dir=str(output_dir))
    (output_dir / "train_metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    log.info("best checkpoint: %s", best or "(none)")
    log.info("metrics: %s", output_dir / "train_metrics.json")
    return metrics


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
