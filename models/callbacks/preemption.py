"""Preemption: a run that receives SIGTERM saves its state, so the same command started again continues it.

Lightning turns SIGTERM into a ``SIGTERMException`` at the end of the current training batch, on every process at
once (rank 0's flag is broadcast). :class:`SaveOnPreemption` then writes ``last.ckpt`` (atomically, by rank 0, through
the trainer's checkpoint plugin) before the process exits. Together with:

* the datamodule's mid-epoch state (:class:`data.datamodule.SplitDataModule`): the resumed epoch skips the batches that
  were already trained on;
* the torch RNG states in every checkpoint (:class:`models.checkpointing.ExactResume`): dropout, drop-path and
  diffusion noise continue the same random stream;
* ``train.py``'s ``resume: auto``: a run whose folder already holds ``checkpoints/last.ckpt`` resumes from it;

an interrupted run restarted with the same command (and the same run folder) ends with the weights of an uninterrupted
one. SLURM preemption sends SIGTERM to every task, so the same path covers it; a Ctrl-C (KeyboardInterrupt) in a
single-process run is saved the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.exceptions import SIGTERMException

log = logging.getLogger(__name__)


class SaveOnPreemption(pl.Callback):
    """Write ``<dirpath>/<filename>`` when the run is stopped by SIGTERM (or Ctrl-C in one process).

    Args:
        dirpath: checkpoint folder, usually ``${paths.output_dir}/checkpoints``.
        filename: file written there; ``last.ckpt`` so that ``resume: auto`` and ``ckpt_path=.../last.ckpt`` find it.
    """

    def __init__(self, dirpath: str, filename: str = "last.ckpt") -> None:
        self.path = Path(dirpath) / filename
        self.saved = False

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        interrupted = isinstance(exception, SIGTERMException) or (
            isinstance(exception, KeyboardInterrupt) and trainer.world_size == 1)
        if not interrupted or trainer.state.fn != "fit" or trainer.sanity_checking:
            return
        # No collective here (trainer.save_checkpoint has a barrier): the processes leave the loop at different
        # points while Lightning broadcasts the stop, and a barrier could pair with another collective and hang.
        # Each process's state is the same under DDP, so rank 0 alone writes it, through AtomicCheckpointIO.
        if trainer.is_global_zero:
            checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
            trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, self.path)
        self.saved = True
        log.warning("interrupted (%s) at step %d: state saved to %s; rerun the same command to continue",
                    type(exception).__name__, trainer.global_step, self.path)
