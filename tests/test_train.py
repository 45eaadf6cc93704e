"""train(cfg) and evaluate(cfg) end to end on tiny generated data: fast_dev_run, eval parity, exact resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from eval import evaluate
from models.checkpointing import load_state_dict
from tests.conftest import compose_config
from train import train


def test_fast_dev_run_trains_validates_and_tests(train_config):
    cfg = train_config("debug=fast_dev_run")
    metrics = train(cfg)
    assert {"train/loss", "val/acc_top1", "test/acc_top1", "test/acc_top5", "test/acc_mean_class"} <= metrics.keys()
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))


@pytest.mark.parametrize(("attention_type", "temporal_attention", "time_embed"),
                         [("divided_space_time", True, True), ("joint_space_time", False, True),
                          ("space_only", False, False)])
def test_train_builds_the_attention_type_it_is_given(train_config, tmp_path, attention_type, temporal_attention,
                                                     time_embed):
    # The checkpoint train.py writes holds the layout asked for: temporal attention layers only in the divided
    # model, a temporal position embedding in every model that mixes frames (TimeSformer's official layouts).
    run = tmp_path / attention_type
    train(train_config("debug=tiny", "trainer.max_epochs=1", "test=false",
                       f"model.net.attention_type={attention_type}", output_dir=run))
    keys = set(load_state_dict(run / "checkpoints" / "last.ckpt"))
    assert any(".temporal_attn." in key for key in keys) == temporal_attention
    assert ("net.time_embed" in keys) == time_embed


def test_eval_after_train_reproduces_the_logged_test_metric(train_config, tmp_path):
    run = tmp_path / "run"
    metrics = train(train_config("debug=tiny", output_dir=run))
    best = Path(metrics["best_model_path"])
    assert best == run / "checkpoints" / "best.ckpt" and best.is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert not list((run / "checkpoints").glob("*.tmp"))  # atomic writes leave no temp files

    eval_cfg = compose_config("eval", [f"ckpt_path={best}", f"paths.output_dir={tmp_path / 'eval'}"])
    result = evaluate(eval_cfg)
    for key in ("test/acc_top1", "test/acc_top5", "test/acc_mean_class"):
        assert result[key] == pytest.approx(metrics[key], abs=1e-6), key
    written = json.loads(Path(result["metrics_path"]).read_text())
    assert written["test/acc_top1"] == result["test/acc_top1"]
    assert Path(result["metrics_path"]) == tmp_path / "eval" / "test_metrics.json"


class StopAfterFirstEpoch(pl.Callback):
    """Stands in for a run killed after its first epoch's checkpoint."""

    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


def test_resume_continues_from_the_saved_step_exactly(train_config, tmp_path):
    full = train(train_config("debug=tiny", "trainer.max_epochs=2", "test=false", output_dir=tmp_path / "full"))
    first = train(train_config("debug=tiny", "trainer.max_epochs=2", "test=false",
                               "+callbacks.stop._target_=tests.test_train.StopAfterFirstEpoch",
                               output_dir=tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, map_location="cpu", weights_only=True)
    assert saved["global_step"] == 4 and saved["epoch"] == 0
    resumed = train(train_config("debug=tiny", "trainer.max_epochs=2", "test=false", f"ckpt_path={last}",
                                 output_dir=tmp_path / "resumed"))
    assert resumed["output_dir"] == str(tmp_path / "first")  # resumed in place
    final = torch.load(last, map_location="cpu", weights_only=True)
    assert final["global_step"] == 8 and final["epoch"] == 1
    reference = load_state_dict(tmp_path / "full" / "checkpoints" / "last.ckpt")
    for name, tensor in load_state_dict(last).items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0, msg=lambda m: f"{name}: {m}")
    assert resumed["train/loss"] == pytest.approx(full["train/loss"])
    assert first["train/loss"] != pytest.approx(full["train/loss"])


def test_csv_tensorboard_and_offline_wandb_loggers_all_write(train_config, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    train(train_config("debug=tiny", "trainer.max_epochs=1", "test=false", "logger=many", output_dir=run))
    metrics_csv = next(run.glob("csv/version_*/metrics.csv"))
    assert "val/acc_top1" in metrics_csv.read_text().splitlines()[0]
    assert list(run.glob("tensorboard/**/events.out.tfevents.*"))
    assert list(run.glob("wandb/offline-run-*"))
