"""Train a model from the Hydra config in ``configs/train.yaml``.

    python train.py                                         # divided TimeSformer on Moving MNIST direction
    python train.py experiment=mmnist_direction_space_only  # the no-temporal-attention ablation
    python train.py model.net.depth=6 trainer.max_epochs=20 logger=many
    python train.py ckpt_path=outputs/train/<run>/<time>/checkpoints/last.ckpt   # resume where it stopped
    python train.py hydra.run.dir=outputs/long   # rerun after a SIGTERM/preemption: resume=auto continues it
    python train.py -m model.net.attention_type=divided_space_time,space_only seed=0,1,2   # a sweep
    python train.py trainer=ddp_cpu                 # 2 data-parallel processes (gloo); trainer=ddp on GPUs

A run writes to ``paths.output_dir``: ``config.yaml`` (resolved), ``checkpoints/{best,last}.ckpt`` (written
atomically), logger files, and ``train_metrics.json``. A resumed run writes into the folder of the run it resumes
(loggers start a new ``version_N``), so ``best.ckpt`` keeps competing with the scores saved before the interruption.

**Preemption.** On SIGTERM (SLURM preemption, ``kill``) the run saves ``checkpoints/last.ckpt`` mid-epoch and exits
(:class:`models.callbacks.preemption.SaveOnPreemption`). With ``resume: auto`` (the default) a run whose folder already holds
``checkpoints/last.ckpt`` resumes from it, so the same command, in the same folder, continues where it stopped.
Runs in a timestamped folder (the default ``hydra.run.dir``) never find one; give a fixed folder to use it.

**Data parallel.** With ``trainer=ddp_cpu|ddp|fsdp`` every process runs this function; rank 0 writes ``config.yaml``,
the checkpoints and ``train_metrics.json``. ``data.batch_size`` is per process.
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
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import SIGTERMException

from models.checkpointing import AtomicCheckpointIO
from models.run import read_run_config, run_dir_of

log = logging.getLogger(__name__)
LAST_CHECKPOINT = "checkpoints/last.ckpt"
EXIT_PREEMPTED = 143  # 128 + SIGTERM, the shell's status of a process stopped by SIGTERM
# Config keys that may differ when an interrupted run is restarted (resume: auto still applies).
RESTART_KEYS = {"ckpt_path", "resume", "num_threads", "paths", "hydra", "callbacks.progress_bar", "logger", "test"}


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


def config_differences(saved: DictConfig, current: DictConfig, prefix: str = "",
                       added: list[str] | None = None) -> list[str]:
    """Dotted keys whose values differ between two resolved configs, ignoring what may change on a restart.

    A key that only ``current`` has (one the code added after the run was saved) is not counted: it is appended to
    ``added`` when given, so the caller can decide (see :func:`auto_resume_path`).
    """
    keys = sorted(set(saved) | set(current), key=str)
    differences = []
    for key in keys:
        name = f"{prefix}{key}"
        if name in RESTART_KEYS:
            continue
        if key not in saved and added is not None:
            added.append(name)
            continue
        a, b = saved.get(key), current.get(key)
        if isinstance(a, DictConfig) and isinstance(b, DictConfig):
            differences += config_differences(a, b, f"{name}.", added)
        elif OmegaConf.to_container(OmegaConf.create({"v": a})) != OmegaConf.to_container(OmegaConf.create({"v": b})):
            differences.append(name)
    return differences


def command_line_keys() -> set[str]:
    """The dotted keys the command line sets (Hydra's task overrides), or an empty set outside a Hydra run."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return set()
    return {override.split("=", 1)[0].lstrip("+~") for override in HydraConfig.get().overrides.task}


def auto_resume_path(cfg: DictConfig, overridden: set[str] | None = None) -> str | None:
    """``resume: auto``: the run folder's ``checkpoints/last.ckpt`` if it has one (an interrupted run), else None.

    Keys the code added after the run was saved (absent from its ``config.yaml``) take their defaults, which keep
    the old behaviour, and do not stop the resume; setting one on the command line (``overridden``, by default the
    Hydra run's overrides) is a difference like any other.

    Raises:
        ValueError: ``resume`` is not ``auto``/``never``, or the folder's ``config.yaml`` was written by a run with a
            different config (resuming it would silently mix two experiments).
    """
    mode = cfg.get("resume", "auto")
    if mode not in ("auto", "never"):
        raise ValueError(f"resume={mode!r} must be 'auto' or 'never'")
    last = Path(cfg.paths.output_dir) / LAST_CHECKPOINT
    if mode == "never" or not last.is_file():
        return None
    saved = Path(cfg.paths.output_dir) / "config.yaml"
    if saved.is_file():
        current = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
        added: list[str] = []
        differences = config_differences(read_run_config(saved), current, added=added)
        overridden = command_line_keys() if overridden is None else overridden
        differences += [key for key in added  # a new key, or a new section the command line sets a key of
                        if any(key == o or o.startswith(f"{key}.") or key.startswith(f"{o}.") for o in overridden)]
        if differences:
            raise ValueError(f"{cfg.paths.output_dir} holds an interrupted run with a different config "
                             f"({', '.join(differences[:5])}); rerun with resume=never to overwrite it, or use "
                             f"another run folder")
        if added:
            log.info("resume=auto: keys added since the run was saved keep their defaults: %s", ", ".join(added[:10]))
    log.info("resume=auto: continuing the interrupted run from %s", last)
    return str(last)


def apply_source_preprocessing(cfg: DictConfig) -> None:
    """With ``model.pretrained``, take the input protocol (mean, std, crop and resize size) from the source where it
    states one (:func:`models.recognition.pretrained.source_preprocessing`), so the run is fed as the weights were trained
    and its ``config.yaml`` records it. Values that change are logged."""
    source = OmegaConf.select(cfg, "model.pretrained")
    if not source or "data" not in cfg:
        return
    from models.recognition.pretrained import source_preprocessing

    stated = {key: value for key, value in source_preprocessing(source).items() if key in cfg.data}
    changed = {key: value for key, value in stated.items()
               if OmegaConf.to_container(OmegaConf.create({"v": cfg.data[key]}))["v"] != value}
    for key, value in changed.items():
        log.info("data.%s=%s, as %s states (was %s)", key, value, source, cfg.data[key])
        cfg.data[key] = value


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit (and optionally test) the configured model.

    Args:
        cfg: the composed ``train.yaml`` config.

    Returns:
        The final metrics, with ``best_model_path`` and ``output_dir``.

    Raises:
        ValueError: a bad config value (raised by the module it configures, naming the field).
    """
    apply_source_preprocessing(cfg)
    if cfg.get("ckpt_path"):
        run_dir = run_dir_of(cfg.ckpt_path)
        if not Path(cfg.ckpt_path).is_file():
            raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path} does not exist")
        if (run_dir / "config.yaml").is_file():
            cfg.paths.output_dir = str(run_dir)  # resume in place: checkpoints keep their best-so-far score
    else:
        cfg.ckpt_path = auto_resume_path(cfg)
    output_dir = Path(cfg.paths.output_dir)
    if rank_zero_only.rank == 0:  # data-parallel processes share the folder; rank 0 writes
        output_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, output_dir / "config.yaml", resolve=True)
    pl.seed_everything(cfg.seed, workers=True)
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))  # intra-op threads of the training process

    datamodule = instantiate(cfg.data)
    model = instantiate(cfg.model)
    trainer = build_trainer(cfg)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    except SIGTERMException as stop:  # state saved by SaveOnPreemption; exit like a process killed by SIGTERM
        raise SystemExit(EXIT_PREEMPTED) from stop
    metrics: dict[str, Any] = scalar_metrics(trainer.callback_metrics)

    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if cfg.get("test"):
        if not best:
            log.warning("no best checkpoint was saved; testing the current weights")
        results = trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update(scalar_metrics(results[0]))
    metrics.update(best_model_path=best, output_dir=str(output_dir))
    if trainer.is_global_zero:
        (output_dir / "train_metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    log.info("best checkpoint: %s", best or "(none)")
    log.info("metrics: %s", output_dir / "train_metrics.json")
    return metrics


@hydra.main(version_base="1.3", config_path="configs", config_name="train")
def main(cfg: DictConfig) -> None:
    train(cfg)


if __name__ == "__main__":
    main()
