"""Learning-rate schedules built from torch's own schedulers (configured from Hydra with ``_partial_: true``)."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, LRScheduler, SequentialLR


def warmup_cosine(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    warmup_fraction: float = 0.1,
    warmup_start_factor: float = 0.01,
    min_lr_ratio: float = 0.01,
) -> LRScheduler:
    """Linear warmup, then cosine decay to ``min_lr_ratio``·lr, stepped once per optimizer step.

    Args:
        optimizer: the optimizer whose learning rates are scheduled.
        total_steps: optimizer steps in the whole run (Lightning's ``estimated_stepping_batches``).
        warmup_fraction: share of ``total_steps`` spent warming up, in [0, 1).
        warmup_start_factor: lr multiplier at step 0.
        min_lr_ratio: final lr as a fraction of the base lr.

    Raises:
        ValueError: ``warmup_fraction`` outside [0, 1) or ``total_steps`` < 1.
    """
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"scheduler.warmup_fraction={warmup_fraction} must be in [0, 1)")
    if total_steps < 1:
        raise ValueError(f"total_steps={total_steps} must be >= 1")
    warmup = int(round(warmup_fraction * total_steps))
    base_lr = optimizer.param_groups[0]["lr"]
    cosine = CosineAnnealingLR(optimizer, T_max=max(total_steps - warmup, 1), eta_min=base_lr * min_lr_ratio)
    if warmup == 0:
        return cosine
    ramp = LinearLR(optimizer, start_factor=warmup_start_factor, end_factor=1.0, total_iters=warmup)
    return SequentialLR(optimizer, schedulers=[ramp, cosine], milestones=[warmup])
