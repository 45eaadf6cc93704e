"""Activation (gradient) checkpointing per transformer block, shared by TimeSformer, ViViT and the video DiT."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.checkpoint import checkpoint


def run_block(block: Callable, *args: torch.Tensor, checkpointing: bool = False):
    """``block(*args)``; with ``checkpointing`` (and gradients on) its activations are not kept but recomputed in the
    backward pass (``torch.utils.checkpoint``, non-reentrant, RNG state preserved so dropout masks repeat exactly).

    Trades one extra forward of the block for not storing its intermediate activations (Chen et al. 2016,
    "Training Deep Nets with Sublinear Memory Cost"); outputs and gradients are unchanged.
    """
    if checkpointing and torch.is_grad_enabled():
        return checkpoint(block, *args, use_reentrant=False)
    return block(*args)
