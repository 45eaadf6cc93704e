"""Optimizer set-up shared by the LightningModules: weight-decay groups, and schedules from torch's own schedulers.

Optimizers and schedulers are configured from Hydra with ``_partial_: true``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn
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


def weight_decay_groups(net: nn.Module) -> list[dict]:
    """Two parameter groups: weights with the optimizer's weight decay; biases, norms and the net's
    ``no_weight_decay()`` names (embeddings, as in timm and the official TimeSformer) without.
    """
    skip = set(net.no_weight_decay()) if hasattr(net, "no_weight_decay") else set()
    decay, no_decay = [], []
    for name, param in net.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 or name in skip else decay).append(param)
    return [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]


def lightning_optimizers(
    optimizer_factory: Callable[..., torch.optim.Optimizer],
    scheduler_factory: Callable[..., LRScheduler] | None,
    params: Iterable,
    total_steps: int,
) -> torch.optim.Optimizer | dict:
    """What ``LightningModule.configure_optimizers`` returns: the optimizer, and its schedule stepped every step.

    Args:
        optimizer_factory: a partial ``optimizer(params=...)``.
        scheduler_factory: a partial ``scheduler(optimizer, total_steps=...)``, or None for a constant lr.
        params: parameters or parameter groups.
        total_steps: optimizer steps in the run (``trainer.estimated_stepping_batches``).
    """
    optimizer = optimizer_factory(params=params)
    if scheduler_factory is None:
        return optimizer
    scheduler = scheduler_factory(optimizer, total_steps=int(total_steps))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
