"""Sweeps and launchers: a Hydra multirun through hydra-submitit-launcher's local executor (the same launcher code
as hydra/launcher=slurm, with processes instead of SLURM jobs), summarised by scripts/summarize_sweep.py; and the
distributed trainer configs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.utils import instantiate
from pytorch_lightning.strategies import DDPStrategy, FSDPStrategy
from torch.distributed.fsdp.wrap import ModuleWrapPolicy

from models.diffusion.dit_blocks import DiTBlock
from models.distributed import DeclaredUnitsPolicy, block_wrap_policy, fsdp_units
from models.recognition.timesformer import Block
from models.recognition.vivit import EncoderBlock, FactorisedBlock
from tests.conftest import compose_config
from tests.test_grad_checkpoint import make

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("trainer", "strategy", "backend"), [("ddp_cpu", DDPStrategy, "gloo"),
                                                               ("ddp", DDPStrategy, "nccl"),
                                                               ("fsdp", FSDPStrategy, None)])
def test_distributed_trainer_configs_build_their_strategy(trainer, strategy, backend):
    cfg = compose_config("train", [f"trainer={trainer}"])
    built = instantiate(cfg.trainer.strategy)
    assert isinstance(built, strategy)
    if backend:
        assert built._process_group_backend == backend
    else:
        assert isinstance(built.kwargs["auto_wrap_policy"], DeclaredUnitsPolicy)
    assert cfg.trainer.accelerator == ("cpu" if trainer == "ddp_cpu" else "gpu")


@pytest.mark.parametrize(("kind", "units"), [("timesformer", {Block}), ("vivit1", {EncoderBlock, FactorisedBlock}),
                                             ("vivit3", {EncoderBlock, FactorisedBlock}), ("dit", {DiTBlock})])
def test_fsdp_units_are_the_blocks_each_model_declares(kind, units):
    model = make(kind, checkpointing=False)
    assert fsdp_units(model) == units
    wrapped = set(block_wrap_policy()._run_policy(model, set(), {}))
    # the same modules as the policy over every block class of the project, which distributed.py used to import
    every_block = ModuleWrapPolicy({Block, EncoderBlock, FactorisedBlock, DiTBlock})._run_policy(model, set(), {})
    assert wrapped == set(every_block) and wrapped
    assert all(type(module) in units for module in wrapped)


def test_slurm_launcher_config_composes_with_the_submitit_plugin():
    cfg = compose_config("train", ["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.tasks_per_node == launcher.gpus_per_node  # one process per GPU, as Lightning expects
    assert launcher.partition is None and launcher.account is None  # left to the user


@pytest.mark.slow
def test_submitit_local_sweep_runs_both_jobs_and_the_summary_reads_them(tiny_mmnist, tmp_path):
    sweep = tmp_path / "sweep"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "train.py", "-m", "hydra/launcher=submitit_local", f"hydra.sweep.dir={sweep}",
                    f"data.root={tiny_mmnist}", "data.generate=null", "data.num_workers=0", "data.batch_size=8",
                    "model.net.embed_dim=32", "model.net.depth=2", "debug=tiny", "num_threads=1",
                    "~callbacks.progress_bar", "+trainer.enable_progress_bar=false", "seed=0,1"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    runs = sorted(path.parent for path in sweep.glob("*/train_metrics.json"))
    assert [run.name for run in runs] == ["0", "1"]
    assert all((run / "config.yaml").is_file() and (run / "checkpoints" / "best.ckpt").is_file() for run in runs)

    subprocess.run([sys.executable, "scripts/summarize_sweep.py", str(sweep), "--metric", "test/acc_top1"],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    rows = list(csv.DictReader((sweep / "summary.csv").open()))
    assert len(rows) == 1 and int(rows[0]["n"]) == 2
    assert (sweep / "summary.png").is_file()


def test_coherence_sweep_passes_a_run_folder_path_with_hydra_characters_as_one_value(tmp_path):
    """Hydra run folders are named like ``experiment=X,seed=0``; a classifier path inside one must reach the sweep
    as a single quoted value, or Hydra's override grammar rejects the command (it did)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    stub = tmp_path / "python"  # records the train.py command instead of training
    stub.write_text(f'#!/usr/bin/env bash\n[[ "$1" == train.py ]] && printf "%s\\n" "$@" > {tmp_path}/args\nexit 0\n')
    stub.chmod(0o755)
    classifier = "outputs/seeds/experiment=mmnist_direction_divided,seed=0/checkpoints/best.ckpt"
    env = {**os.environ, "PY": str(stub), "CLASSIFIER": classifier, "EXPERIMENTS": "mmnist_dit", "PRIORS": "iid",
           "SEEDS": "1,2"}
    subprocess.run(["bash", "scripts/coherence_sweep.sh"], cwd=ROOT, env=env, check=True, capture_output=True)
    args = (tmp_path / "args").read_text().splitlines()[1:]  # after "train.py"
    overrides = {o.key_or_group: o for o in OverridesParser.create().parse_overrides([a for a in args if a != "-m"])}
    assert overrides["callbacks.score_samples.classifier"].value() == classifier
    assert overrides["seed"].is_sweep_override() and list(overrides["seed"].sweep_iterator()) == [1, 2]
    assert overrides["experiment"].value() == "mmnist_dit"
