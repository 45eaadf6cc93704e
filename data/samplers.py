"""Index samplers of the project's loaders, for one process or sharded over data-parallel processes.

* :class:`EpochShuffleSampler` (training): a permutation seeded by ``(seed, epoch)``, padded and dealt out to the
  processes, yielding ``(index, epoch)`` keys from which the datasets seed their per-item randomness.
* :class:`ShardSampler` (evaluation): file order, dealt out without padding, so every clip is scored exactly once.

Both subclass ``torch.utils.data.DistributedSampler`` and read the process group themselves
(``torch.distributed.get_world_size/get_rank`` once it is initialised, which Lightning does before it asks for the
dataloaders). Lightning therefore leaves them in place instead of wrapping them in its own distributed sampler. In one
process they shard nothing: the training order is the seeded permutation itself.

**Sharding, as ``DistributedSampler`` does it** (PyTorch, ``torch/utils/data/distributed.py``): the epoch's
permutation of ``n`` indices is padded to ``ceil(n / world) * world`` by repeating its first indices, and process
``rank`` takes positions ``rank, rank + world, ...``. The shards are disjoint as positions and together cover the
permutation; the ``ceil(n / world) * world - n`` padded positions repeat clips, so those clips are seen twice in that
epoch (with the same augmentation, since it is keyed by ``(index, epoch)``).

**Mid-epoch resume:** :meth:`EpochShuffleSampler.resume_at` skips the first items of one epoch's shard, the ones a run
consumed before it was interrupted, so a run restarted from a mid-epoch checkpoint sees exactly the clips an
uninterrupted run would (see :class:`data.datamodule.SplitDataModule`). Its length stays the full shard's
(``DistributedSampler``'s ``num_samples``): Lightning counts a resumed epoch's batches from the restored step.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler


def process_group() -> tuple[int, int]:
    """``(world_size, rank)`` of the initialised default process group, or ``(1, 0)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size(), dist.get_rank()
    return 1, 0


def _resolve(num_replicas: int | None, rank: int | None) -> tuple[int, int]:
    world, own_rank = process_group()
    num_replicas = world if num_replicas is None else num_replicas
    rank = own_rank if rank is None else rank
    if num_replicas < 1 or not 0 <= rank < num_replicas:
        raise ValueError(f"rank={rank} must be in [0, num_replicas={num_replicas})")
    return num_replicas, rank


class EpochShuffleSampler(DistributedSampler):
    """Training order: a permutation seeded by ``(seed, epoch)``, this process's shard of it, as ``(index, epoch)``.

    Lightning calls :meth:`set_epoch` before every training epoch.

    Args:
        dataset_len: number of items in the dataset (> 0).
        seed: base seed of the permutations; the same on every process.
        num_replicas, rank: the data-parallel world and this process's place in it; default: the process group's.

    Raises:
        ValueError: an empty dataset or a rank outside the world.
    """

    def __init__(self, dataset_len: int, seed: int = 0, num_replicas: int | None = None,
                 rank: int | None = None) -> None:
        if dataset_len < 1:
            raise ValueError(f"dataset_len={dataset_len}: cannot sample from an empty dataset")
        num_replicas, rank = _resolve(num_replicas, rank)
        super().__init__(range(dataset_len), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.dataset_len = dataset_len
        self._resume: tuple[int, int] | None = None  # (epoch, items of this shard already consumed in it)

    def resume_at(self, epoch: int, items_done: int) -> None:
        """Skip the first ``items_done`` items of this process's shard in epoch ``epoch`` (once)."""
        self._resume = (epoch, items_done) if items_done > 0 else None

    def permutation(self, epoch: int) -> list[int]:
        """The whole epoch's order, before padding and sharding: the same on every process."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.dataset_len, generator=generator).tolist()

    def shard(self, epoch: int) -> list[int]:
        """This process's indices of epoch ``epoch``: the padded permutation at positions ``rank::num_replicas``."""
        order = self.permutation(epoch)
        padding = self.total_size - len(order)
        order += (order * math.ceil(padding / len(order)))[:padding] if padding else []
        return order[self.rank:self.total_size:self.num_replicas]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, shard = self.epoch, self.shard(self.epoch)
        if self._resume is not None and self._resume[0] == epoch:
            shard = shard[self._resume[1]:]
            self._resume = None
        return iter([(index, epoch) for index in shard])


class ShardSampler(DistributedSampler):
    """Evaluation order: indices ``rank, rank + world, ...`` of the dataset, without padding.

    Every item is seen by exactly one process, so metrics synced over processes (torchmetrics states are summed) equal
    a one-process evaluation. Shards differ in length by at most one item.

    Args:
        dataset_len: number of items in the dataset.
        num_replicas, rank: as in :class:`EpochShuffleSampler`.
    """

    def __init__(self, dataset_len: int, num_replicas: int | None = None, rank: int | None = None) -> None:
        num_replicas, rank = _resolve(num_replicas, rank)
        super().__init__(range(dataset_len), num_replicas=num_replicas, rank=rank, shuffle=False)
        self.dataset_len = dataset_len

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.dataset_len, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.dataset_len, self.num_replicas))
