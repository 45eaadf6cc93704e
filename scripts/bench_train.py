"""Measure training speed against this machine's own fp32 matmul peak, for any experiment.

    python scripts/bench_train.py                                        # the main job's config (make demo)
    python scripts/bench_train.py experiment=mmnist_dit data=mmnist_latents --steps 100
    python scripts/bench_train.py model.net.embed_dim=128 --steps 300 --warmup 20
    python scripts/bench_train.py experiment=mmnist_dit_digits data.root=<cache> --steps 50 --profile 5  # + top ops

The training config is composed exactly as ``train.py`` composes it (same ``configs/train.yaml``, same overrides),
and one run measures three things with the same thread count (``num_threads``):

1. **the fp32 matmul peak**: the best of several 4096×4096 ``torch.mm`` products (2·4096³ FLOP each);
2. **the model's forward + backward FLOPs per training step** (``torch.utils.flop_counter.FlopCounterMode`` around the
   LightningModule's own ``training_step`` and ``backward`` on a real batch) and the time of that step alone
   (forward, backward and ``optimizer.step`` on one batch held in memory);
3. **end-to-end training throughput**: ``--steps`` optimizer steps of the real DataModule, optimizer, schedule,
   logging and progress bar, through the configured Lightning ``Trainer`` (validation and checkpoints off), timed
   after ``--warmup`` steps.

FLOPs count matrix products, convolutions and attention (what ``FlopCounterMode`` counts); element-wise work and
the optimizer's arithmetic are not counted, so the percentages are the share of peak spent on counted FLOPs.
``--profile N`` also runs N model-only steps under ``torch.profiler`` and prints the ten operators with the most
self CPU time, which says where a step below the peak spends it. The last line printed is always:

    train step: X GFLOP/s end to end = Y% of the fp32 matmul peak (Z GFLOP/s measured in this run)
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from pathlib import Path


import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, open_dict
from torch.utils.flop_counter import FlopCounterMode

from scripts.records import PEAK_SIZE, machine, matmul_peak, write_record
from train import build_trainer

CONFIG_DIR = str(Path(__file__).resolve().parents[1] / "configs")


def compose_train_config(overrides: list[str]) -> DictConfig:
    """``configs/train.yaml`` with command-line overrides, composed as ``train.py`` does (without a run folder)."""
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def _first_batch(datamodule: pl.LightningDataModule):
    datamodule.prepare_data()
    datamodule.setup("fit")
    return next(iter(datamodule.train_dataloader()))


def model_step(model: pl.LightningModule, batch, steps: int) -> tuple[float, float]:
    """FLOPs of one forward + backward of ``training_step`` on ``batch``, and seconds per step with the optimizer.

    The module runs outside a Trainer here, so its ``self.log`` calls are no-ops (their warnings are silenced).
    """
    # The configured optimizer over the trainable parameters (``configure_optimizers`` needs a Trainer for its
    # schedule length; the schedule does not change the step's cost).
    optimizer = model.optimizer_factory(params=[p for p in model.parameters() if p.requires_grad])
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with FlopCounterMode(display=False) as counter:
            model.training_step(batch, 0).backward()
        flops = counter.get_total_flops()
        optimizer.zero_grad(set_to_none=True)

        def step() -> None:
            model.training_step(batch, 0).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for _ in range(2):
            step()
        start = time.perf_counter()
        for _ in range(steps):
            step()
    return float(flops), (time.perf_counter() - start) / steps


def profile_table(model: pl.LightningModule, batch, steps: int, rows: int = 10) -> str:
    """``torch.profiler``'s table of the ``rows`` operators with the most self CPU time over ``steps`` training steps
    (forward, backward and ``optimizer.step``) on ``batch``."""
    from torch.profiler import ProfilerActivity, profile

    optimizer = model.optimizer_factory(params=[p for p in model.parameters() if p.requires_grad])
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                model.training_step(batch, 0).backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


class StepTimer(pl.Callback):
    """Wall time from the start of optimizer step ``warmup`` to the end of the last step (data loading included)."""

    def __init__(self, warmup: int) -> None:
        self.warmup = warmup
        self.start: float | None = None
        self.end: float | None = None
        self.timed_steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.warmup and self.start is None:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.start is not None:
            self.end = time.perf_counter()
            self.timed_steps = trainer.global_step - self.warmup


def end_to_end(cfg: DictConfig, steps: int, warmup: int) -> float:
    """Seconds per optimizer step of a real ``Trainer.fit`` over the configured DataModule (after ``warmup`` steps)."""
    with tempfile.TemporaryDirectory() as folder, open_dict(cfg):
        cfg.paths.output_dir = folder
        cfg.trainer.max_steps = warmup + steps
        cfg.trainer.max_epochs = -1
        cfg.trainer.limit_val_batches = 0
        cfg.trainer.num_sanity_val_steps = 0
        cfg.trainer.enable_checkpointing = False
        cfg.trainer.enable_model_summary = False
        for name in ("model_checkpoint", "last_checkpoint"):
            cfg.callbacks.pop(name, None)
        timer = StepTimer(warmup)
        trainer = build_trainer(cfg)
        trainer.callbacks.append(timer)
        trainer.fit(instantiate(cfg.model), datamodule=instantiate(cfg.data))
    if timer.start is None or timer.timed_steps < 1:
        raise RuntimeError(f"the run ended before step {warmup + 1}: the training split has too few batches for "
                           f"--warmup {warmup} --steps {steps}")
    return (timer.end - timer.start) / timer.timed_steps


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, as for train.py")
    parser.add_argument("--steps", type=int, default=200, help="timed end-to-end steps (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed first steps (default: %(default)s)")
    parser.add_argument("--model-steps", type=int, default=10, help="timed model-only steps (default: %(default)s)")
    parser.add_argument("--profile", type=int, default=0,
                        help="profile this many model-only steps and print the top ten operators (default: off)")
    parser.add_argument("--record", nargs="?", const="", default=None, metavar="NAME",
                        help="also write the figures to results/NAME.json (NAME left out: bench_train_<run_name>); "
                             "without --record nothing is written, so an exploratory run cannot overwrite a record")
    parser.add_argument("--results-dir", default=None, help="where the record goes (default: results/)")
    args = parser.parse_args(argv)
    if args.record and "=" in args.record:  # `--record experiment=x` would take the override as the name
        parser.error(f"--record {args.record}: a record name has no '='; put --record after the Hydra overrides")
    if args.steps < 1 or args.warmup < 1 or args.model_steps < 1:
        parser.error("--steps, --warmup and --model-steps must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    cfg = compose_train_config(args.overrides)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.get("num_threads"):
        torch.set_num_threads(int(cfg.num_threads))
    threads = torch.get_num_threads()

    peak = matmul_peak()
    print(f"fp32 matmul peak: {peak / 1e9:.1f} GFLOP/s ({PEAK_SIZE}x{PEAK_SIZE} torch.mm, {threads} threads)")

    model = instantiate(cfg.model)
    flops, model_seconds = model_step(model, _first_batch(instantiate(cfg.data)), args.model_steps)
    print(f"model: {flops / 1e9:.2f} GFLOP per step (forward + backward), {model_seconds * 1e3:.0f} ms per step "
          f"with the optimizer = {flops / model_seconds / 1e9:.1f} GFLOP/s = {100 * flops / model_seconds / peak:.0f}% "
          "of peak")

    if args.profile:
        print(profile_table(model, _first_batch(instantiate(cfg.data)), args.profile))

    seconds = end_to_end(cfg, args.steps, args.warmup)
    rate = flops / seconds
    print(f"end to end: {1 / seconds:.2f} it/s over {args.steps} steps ({seconds * 1e3:.0f} ms per step)")
    figures = {"peak": peak, "flops_per_step": flops, "model_seconds": model_seconds, "seconds": seconds}
    if args.record is not None:
        name = args.record or f"bench_train_{cfg.run_name}"
        row = {"gflop_per_step": flops / 1e9, "model_ms_per_step": model_seconds * 1e3,
               "model_percent_of_peak": 100 * flops / model_seconds / peak, "ms_per_step": seconds * 1e3,
               "gflops_end_to_end": rate / 1e9, "percent_of_peak": 100 * rate / peak}
        argv_text = " ".join(argv if argv is not None else sys.argv[1:])
        path = write_record(name, title=f"training speed of experiment {cfg.run_name} against the fp32 matmul peak",
                            command=f"python scripts/bench_train.py {argv_text}".strip(), rows={cfg.run_name: row},
                            seeds=[int(cfg.seed)], overrides=args.overrides,
                            machine_info=machine(peak_flops=peak, threads=threads),
                            **({"results_dir": args.results_dir} if args.results_dir else {}))
        print(f"record: {path}")
    print(f"train step: {rate / 1e9:.1f} GFLOP/s end to end = {100 * rate / peak:.1f}% of the fp32 matmul peak "
          f"({peak / 1e9:.1f} GFLOP/s measured in this run)")
    return figures


if __name__ == "__main__":
    main()
