"""Preemption: SIGTERM mid-epoch saves last.ckpt; the same command, rerun in the same folder, ends like an
uninterrupted run (same weights, bit for bit)."""

from __future__ import annotations

import os
import signal

import pytest
import pytorch_lightning as pl
import torch

from models.checkpointing import load_state_dict
from train import train


class SigtermAtStep(pl.Callback):
    """Sends this process SIGTERM after training step ``step``, as a scheduler preempting the job would."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGTERM)


def weights(run):
    return load_state_dict(run / "checkpoints" / "last.ckpt")


# mid-epoch 0 and mid-epoch 1 (4 batches per epoch); the first is the slower suite's
@pytest.mark.parametrize("stop_step", [pytest.param(2, marks=pytest.mark.slow), 6])
def test_sigterm_mid_epoch_then_same_command_matches_an_uninterrupted_run(train_config, tmp_path, stop_step):
    common = ("debug=tiny", "trainer.max_epochs=2", "test=false", "model.net.drop_path_rate=0.1")
    train(train_config(*common, output_dir=tmp_path / "full"))

    run = tmp_path / "preempted"
    command = (*common, f"+callbacks.kill._target_={__name__}.SigtermAtStep", f"+callbacks.kill.step={stop_step}")
    with pytest.raises(SystemExit) as stopped:
        train(train_config(*command, output_dir=run))
    assert stopped.value.code == 143  # 128 + SIGTERM
    saved = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert saved["global_step"] == stop_step

    # The same command again: resume=auto finds last.ckpt (the step-k signal is not sent twice: steps only grow).
    resumed = train(train_config(*command, output_dir=run))
    assert resumed["output_dir"] == str(run)
    final = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert final["global_step"] == 8
    reference = weights(tmp_path / "full")
    for name, tensor in weights(run).items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0, msg=lambda m: f"{name}: {m}")


def test_resume_auto_refuses_a_folder_of_a_different_config(train_config, tmp_path):
    run = tmp_path / "run"
    train(train_config("debug=tiny", "trainer.max_epochs=1", "test=false", output_dir=run))
    with pytest.raises(ValueError, match="model.net.depth"):
        train(train_config("debug=tiny", "trainer.max_epochs=1", "test=false", "model.net.depth=1", output_dir=run))
    fresh = train(train_config("debug=tiny", "trainer.max_epochs=1", "test=false", "model.net.depth=1",
                               "resume=never", output_dir=run))
    assert fresh["output_dir"] == str(run)
