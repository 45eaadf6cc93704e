"""Data-parallel training and evaluation: the samplers against torch's DistributedSampler (fast), and real 2-process
gloo runs of train.py/eval.py (slow): disjoint shards of the seeded permutation, synced evaluation, rank-0 checkpoint
writes, and an exact resume after SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DistributedSampler

from data.samplers import EpochShuffleSampler, ShardSampler
from models.checkpointing import load_state_dict

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("dataset_len", "world"), [(10, 3), (64, 2), (5, 8), (7, 1)])
def test_training_shards_are_torch_distributed_sampler_over_the_seeded_permutation(dataset_len, world):
    for epoch in (0, 3):
        order = EpochShuffleSampler(dataset_len, seed=5, num_replicas=1, rank=0).permutation(epoch)
        assert sorted(order) == list(range(dataset_len))
        shards = []
        for rank in range(world):
            sampler = EpochShuffleSampler(dataset_len, seed=5, num_replicas=world, rank=rank)
            sampler.set_epoch(epoch)
            keys = list(sampler)
            # Reference: torch's own sharding (pad by repeating the head, then every world-th position) of the order.
            reference = DistributedSampler(order, num_replicas=world, rank=rank, shuffle=False)
            assert keys == [(order[position], epoch) for position in reference]
            assert len(keys) == len(sampler) == len(reference)
            shards.append([index for index, _ in keys])
        seen = [index for shard in shards for index in shard]
        padding = -dataset_len % world
        assert len(seen) == dataset_len + padding and set(seen) == set(range(dataset_len))


def test_resume_at_skips_the_consumed_head_of_one_epoch_only():
    sampler = EpochShuffleSampler(20, seed=1, num_replicas=2, rank=1)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.resume_at(2, 4)
    assert list(sampler) == full[4:]
    assert list(sampler) == full  # once only
    sampler.resume_at(1, 4)
    assert list(sampler) == full  # another epoch's position does not apply


@pytest.mark.parametrize(("dataset_len", "world"), [(16, 2), (17, 2), (5, 3)])
def test_evaluation_shards_score_every_clip_exactly_once(dataset_len, world):
    shards = [list(ShardSampler(dataset_len, num_replicas=world, rank=rank)) for rank in range(world)]
    assert sorted(i for shard in shards for i in shard) == list(range(dataset_len))
    assert [len(ShardSampler(dataset_len, num_replicas=world, rank=r)) for r in range(world)] == list(map(len, shards))


def test_samplers_reject_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="rank=2"):
        EpochShuffleSampler(8, num_replicas=2, rank=2)


# ---------------------------------------------------------------------------------------------------- 2 processes


class RecordBatches(pl.Callback):
    """Saves, per rank and epoch, a checksum of every training clip the process trained on (in order)."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.seen: dict[int, list[float]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        video = batch["video"].double()
        self.seen.setdefault(trainer.current_epoch, []).extend(video.flatten(1).sum(1).tolist())

    def on_train_end(self, trainer, pl_module) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        torch.save(self.seen, self.out / f"rank{trainer.global_rank}.pt")


class SigtermRank0AtStep(pl.Callback):
    """Rank 0 sends itself SIGTERM after step ``step``; Lightning broadcasts the stop to every rank."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_rank == 0 and trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def run_script(script: str, *overrides: str, expect_ok: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / script), *overrides], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    if expect_ok and result.returncode != 0:
        raise AssertionError(f"{script} failed ({result.returncode}):\n{result.stderr[-4000:]}")
    return result


def train_overrides(data_root: Path, run: Path, *extra: str) -> list[str]:
    return [f"data.root={data_root}", "data.generate=null", "data.num_workers=0", "data.batch_size=8",
            "model.net.embed_dim=32", "model.net.depth=2", "model.net.drop_path_rate=0.1", "trainer=ddp_cpu",
            "trainer.max_epochs=2", "+trainer.limit_val_batches=2", "test=false", "num_threads=1",
            "~callbacks.progress_bar", "+trainer.enable_progress_bar=false", "hydra.verbose=models.checkpointing",
            f"hydra.run.dir={run}", *extra]


@pytest.mark.slow
def test_two_gloo_processes_shard_sync_checkpoint_once_and_resume_exactly(tiny_mmnist, tmp_path):
    full = tmp_path / "full"
    result = run_script("train.py", *train_overrides(
        tiny_mmnist, full, f"+callbacks.record._target_={__name__}.RecordBatches", f"+callbacks.record.out={full}"))
    log = result.stdout + result.stderr

    # 1. Each process trained on its shard of the seeded epoch permutation, in order; together they cover it.
    from data.datamodule import VideoDataModule
    from hydra.utils import instantiate
    from tests.conftest import compose_config

    cfg = compose_config("train", [f"data.root={tiny_mmnist}", "data.generate=null", "data.num_workers=0"])
    datamodule: VideoDataModule = instantiate(cfg.data)
    datamodule.setup("fit")
    train_set = datamodule.datasets["train"]
    ranks = [torch.load(full / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    for epoch in (0, 1):
        order = EpochShuffleSampler(len(train_set), seed=cfg.data.seed, num_replicas=1, rank=0).permutation(epoch)
        expected = [float(train_set[(index, epoch)]["video"].double().sum()) for index in order]
        for rank in (0, 1):
            assert ranks[rank][epoch] == pytest.approx(expected[rank::2], rel=1e-12), f"rank {rank}, epoch {epoch}"

    # 2. Checkpoints are written by rank 0 only (the plugin logs its rank), and once per save.
    writes = [line for line in log.splitlines() if " wrote " in line and "checkpoints" in line]
    assert writes and all("rank 0 wrote" in line for line in writes), writes
    assert (full / "train_metrics.json").is_file()

    # 3. A 2-process evaluation equals a 1-process evaluation of the same checkpoint.
    best = full / "checkpoints" / "best.ckpt"
    one = run_script("eval.py", f"ckpt_path={best}", f"hydra.run.dir={tmp_path / 'eval1'}")
    two = run_script("eval.py", f"ckpt_path={best}", f"hydra.run.dir={tmp_path / 'eval2'}", "trainer.devices=2",
                     "+trainer.strategy=ddp", "+trainer.accelerator=cpu")
    import json

    single = json.loads((tmp_path / "eval1" / "test_metrics.json").read_text())
    double = json.loads((tmp_path / "eval2" / "test_metrics.json").read_text())
    for key in ("test/acc_top1", "test/acc_top5", "test/acc_mean_class"):
        assert double[key] == single[key], key
    assert double["test/loss"] == pytest.approx(single["test/loss"], rel=1e-5)  # 16 clips: 8 per process
    assert "test/acc_top1" in one.stdout and two.returncode == 0

    # 4. SIGTERM mid-epoch 1, then the same command: the final weights equal the uninterrupted run's.
    preempted = tmp_path / "preempted"
    command = train_overrides(tiny_mmnist, preempted, f"+callbacks.kill._target_={__name__}.SigtermRank0AtStep",
                              "+callbacks.kill.step=6")
    stopped = run_script("train.py", *command, expect_ok=False)
    assert stopped.returncode == 143 and not (preempted / "train_metrics.json").is_file()
    assert torch.load(preempted / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 6
    run_script("train.py", *command)
    reference = load_state_dict(full / "checkpoints" / "last.ckpt")
    for name, tensor in load_state_dict(preempted / "checkpoints" / "last.ckpt").items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0, msg=lambda m: f"{name}: {m}")
