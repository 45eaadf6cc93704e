"""Inflating an ImageNet ViT (a timm ``VisionTransformer`` checkpoint) into the project's video transformers.

The image weights initialise every video model the way its paper does (nothing is downloaded: the file is yours):

* **TimeSformer** (Bertasius et al. 2021; official ``vit.py``, ``load_pretrained``): every ViT weight is copied by
  name; with divided attention the temporal attention and its norm start as copies of the spatial ones
  (``temporal_attn`` ← ``attn``, ``temporal_norm1`` ← ``norm1``) and ``temporal_fc`` and ``time_embed`` stay at zero
  (the model's own initialisation), so a one-frame clip gives the ViT's logits.
* **ViViT** (Arnab et al. 2021, §3.4): the tubelet embedding is inflated from the 2D patch embedding by
  ``central_frame`` (the kernel at t // 2, zeros elsewhere; the paper's default) or ``filter`` (the kernel repeated
  over t and divided by t); position embeddings are repeated over the tubelet index when the model has one per
  space-time token. Keys the image model lacks (model 2's temporal encoder, model 3's temporal attention) keep the
  model's own initialisation and are returned, by name.
* **Position embeddings** are resampled on the 2D grid when the patch grid differs (timm's
  ``resample_abs_pos_embed``); the class-token position is dropped for models without a class token.
* **The head** is kept from the model when the class count differs (ImageNet's 1000 classes).

Files are read with ``safetensors`` or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from einops import repeat
from timm.layers import resample_abs_pos_embed
from torch import nn

TUBELET_INITS = ("central_frame", "filter")
HEAD_KEYS = ("head.weight", "head.bias")


def read_image_vit(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A timm ViT state dict from ``.safetensors`` or ``.pth``/``.bin`` (plain or under ``state_dict``/``model``).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: the file holds no ViT (no ``patch_embed.proj.weight`` and ``blocks.0.attn.qkv.weight``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image ViT checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            state = state.get(key, state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not {"patch_embed.proj.weight", "blocks.0.attn.qkv.weight"} <= set(state):
        raise ValueError(f"{path}: not a timm ViT state dict (first keys: {list(state)[:4]})")
    return state


def inflate_patch_kernel(kernel: torch.Tensor, tubelet_size: int, method: str) -> torch.Tensor:
    """A 2D patch kernel (d c p p) as a tubelet kernel (d c t p p), by ``central_frame`` or ``filter`` inflation.

    Raises:
        ValueError: an unknown ``method``.
    """
    if method not in TUBELET_INITS:
        raise ValueError(f"tubelet init {method!r} is not one of {TUBELET_INITS}")
    if method == "filter":
        return repeat(kernel, "d c p q -> d c t p q", t=tubelet_size) / tubelet_size
    inflated = torch.zeros(*kernel.shape[:2], tubelet_size, *kernel.shape[2:], dtype=kernel.dtype)
    inflated[:, :, tubelet_size // 2] = kernel
    return inflated


def _position_embedding(source: torch.Tensor, target: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """The ViT's (1 1+n' d) position embedding for a target of (1 [1+] [t·]n d) positions on ``grid``."""
    old = int(round((source.shape[1] - 1) ** 0.5))
    spatial = resample_abs_pos_embed(source, new_size=list(grid), old_size=[old, old], num_prefix_tokens=1)
    n = grid[0] * grid[1]
    cls, patches = spatial[:, :1], spatial[:, 1:]  # (1 1 d), (1 n d)
    tokens = target.shape[1]
    for prefix in (1, 0):
        if (tokens - prefix) % n == 0 and tokens - prefix > 0:
            t = (tokens - prefix) // n
            patches = repeat(patches, "1 n d -> 1 (t n) d", t=t)  # the same spatial position at every tubelet
            return torch.cat([cls, patches], dim=1) if prefix else patches
    raise ValueError(f"cannot map a {tuple(source.shape)} position embedding onto {tuple(target.shape)}")


def inflate_from_image_vit(net: nn.Module, source: str | os.PathLike | dict[str, torch.Tensor],
                           tubelet_init: str = "central_frame") -> list[str]:
    """Initialise a TimeSformer or ViViT ``net`` in place from an image ViT's weights.

    Args:
        net: a :class:`models.recognition.timesformer.TimeSformer` or :class:`models.recognition.vivit.ViViT` of the
            ViT's width and depth.
        source: a timm ViT checkpoint file (:func:`read_image_vit`) or its state dict.
        tubelet_init: ``central_frame`` or ``filter`` for a tubelet embedding (``tubelet_size > 1``).

    Returns:
        The keys of ``net`` left at its own initialisation: the image model has no counterpart (``time_embed``,
        ``temporal_fc``, a temporal encoder), or the head has another class count.

    Raises:
        ValueError: a weight whose shape does not fit (named), or a ViT of another width or depth.
    """
    image = read_image_vit(source) if not isinstance(source, dict) else source
    own = net.state_dict()
    grid = tuple(getattr(net, "grid_size", None) or (int(round(net.num_patches ** 0.5)),) * 2)
    filled, kept = {}, []
    for key, target in own.items():
        name = key
        if ".temporal_attn." in key and key.replace(".temporal_attn.", ".attn.") in image \
                and hasattr(net, "time_embed"):  # TimeSformer's divided attention: a copy of the spatial one
            name = key.replace(".temporal_attn.", ".attn.")
        elif ".temporal_norm1." in key:
            name = key.replace(".temporal_norm1.", ".norm1.")
        elif key.startswith("spatial_norm."):  # ViViT model 2: the image ViT's final norm closes its spatial encoder
            name = key.replace("spatial_norm.", "norm.")
        elif key.startswith("norm.") and "spatial_norm.weight" in own:  # ... and model 2's temporal encoder is new
            name = None
        value = image.get(name) if name else None
        if value is None or (key in HEAD_KEYS and value.shape != target.shape):
            kept.append(key)
            continue
        if key == "pos_embed":
            value = _position_embedding(value, target, grid)
        elif key == "patch_embed.proj.weight" and target.ndim == 5:
            value = inflate_patch_kernel(value, target.shape[2], tubelet_init)
        if value.shape != target.shape:
            raise ValueError(f"{key}: the image ViT's {tuple(value.shape)} does not fit the model's "
                             f"{tuple(target.shape)} (another width, patch size or depth?)")
        filled[key] = value.to(target.dtype)
    renames = ((".temporal_attn.", ".attn."), (".temporal_norm1.", ".norm1."), ("spatial_norm.", "norm."))
    used = set()
    for key in filled:
        for old, new in renames:
            key = key.replace(old, new)
        used.add(key)
    unused = sorted(set(image) - used - set(HEAD_KEYS) - {"cls_token"})  # ViViT models 3 and 4 have no class token
    if unused:
        raise ValueError(f"image ViT weights with no place in the model: {unused[:8]} (another depth?)")
    net.load_state_dict({**own, **filled}, strict=True)
    return kept


__all__ = ["TUBELET_INITS", "inflate_from_image_vit", "inflate_patch_kernel", "read_image_vit"]
