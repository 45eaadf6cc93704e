"""Activation checkpointing changes memory, never numbers: outputs and gradients equal the plain run, dropout included."""

from __future__ import annotations

import pytest
import torch

from models.diffusion.dit import VideoDiT
from models.recognition.timesformer import TimeSformer
from models.recognition.vivit import ViViT


def make(kind: str, checkpointing: bool) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "timesformer":
        return TimeSformer(img_size=32, patch_size=8, num_classes=4, num_frames=4, embed_dim=16, depth=2, num_heads=2,
                           drop_rate=0.2, drop_path_rate=0.2, grad_checkpointing=checkpointing)
    if kind.startswith("vivit"):
        return ViViT(img_size=32, patch_size=8, num_classes=4, num_frames=4, embed_dim=16, depth=2, num_heads=2,
                     temporal_depth=1, variant=int(kind[-1]), drop_rate=0.2, drop_path_rate=0.2,
                     grad_checkpointing=checkpointing)
    dit = VideoDiT(input_size=8, patch_size=2, in_channels=4, num_frames=4, embed_dim=16, depth=2, num_heads=2,
                   num_classes=3, grad_checkpointing=checkpointing)
    with torch.no_grad():  # adaLN-Zero makes every block the identity at init: give the blocks something to do
        for param in dit.parameters():
            param.add_(0.05 * torch.randn_like(param))
    return dit


@pytest.mark.parametrize("kind", ["timesformer", "vivit1", "vivit2", "vivit3", "vivit4", "dit"])
def test_checkpointing_leaves_outputs_and_gradients_unchanged(kind):
    results = []
    for checkpointing in (False, True):
        model = make(kind, checkpointing).train()  # dropout on: the recomputation must replay the same masks
        torch.manual_seed(1)
        if kind == "dit":
            out = model(torch.randn(2, 4, 4, 8, 8), torch.tensor([5, 900]), torch.tensor([0, 2]))
        else:
            out = model(torch.randn(2, 3, 4, 32, 32))
        out.square().mean().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (plain, plain_grads), (ckpt, ckpt_grads) = results
    torch.testing.assert_close(ckpt, plain)
    assert plain_grads.keys() == ckpt_grads.keys()
    for name in plain_grads:
        torch.testing.assert_close(ckpt_grads[name], plain_grads[name], msg=name)
