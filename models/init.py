"""Weight initialisation shared by the ViT-style models (TimeSformer, ViViT)."""

from __future__ import annotations

from timm.layers import trunc_normal_
from torch import nn


def vit_init_(module: nn.Module) -> None:
    """timm's ViT recipe for one module, for ``model.apply``: truncated-normal(0.02) Linear weights with zero biases,
    unit-weight zero-bias LayerNorms; other modules are left alone (official TimeSformer and ViT code)."""
    if isinstance(module, nn.Linear):
        trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
