"""Patch and tubelet embedding, shared by TimeSformer, ViViT and the video DiT."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


class PatchEmbed(nn.Module):
    """Non-overlapping patch embedding, per frame or per tubelet (named ``proj`` as in the official code).

    ``tubelet_size = 1`` is TimeSformer's per-frame ``Conv2d`` (official checkpoints load into it). ``tubelet_size
    = k > 1`` is ViViT's tubelet embedding (Arnab et al., ICCV 2021, §3.2): a ``Conv3d`` over k×p×p tubelets, so a
    token already sees k consecutive frames in order.
    """

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int, tubelet_size: int = 1) -> None:
        super().__init__()
        if tubelet_size < 1:
            raise ValueError(f"tubelet_size={tubelet_size} must be >= 1")
        self.patch_size = patch_size
        self.in_chans = in_chans
        self.tubelet_size = tubelet_size
        if tubelet_size == 1:
            self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        else:
            kernel = (tubelet_size, patch_size, patch_size)
            self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=kernel, stride=kernel)

    def forward(self, video: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Embed patches.

        Args:
            video: float tensor (b c t h w), t divisible by ``tubelet_size``, h and w by ``patch_size``.

        Returns:
            Tokens (b t' n d) with t' = t / tubelet_size and n = (h/p)·(w/p), and the patch grid size (gh, gw).

        Raises:
            ValueError: wrong channel count, or t, h or w not divisible by the tubelet or patch size.
        """
        b, c, t, h, w = video.shape
        if c != self.in_chans:
            raise ValueError(f"input has {c} channels but in_chans={self.in_chans}")
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"input size {h}x{w} is not divisible by patch_size={self.patch_size}")
        if t % self.tubelet_size:
            raise ValueError(f"num_frames={t} is not divisible by tubelet_size={self.tubelet_size}")
        if self.tubelet_size == 1:
            x = self.proj(rearrange(video, "b c t h w -> (b t) c h w"))  # ((b t) d gh gw)
            grid = (x.shape[-2], x.shape[-1])
            return rearrange(x, "(b t) d gh gw -> b t (gh gw) d", b=b, t=t), grid
        x = self.proj(video)  # (b d t' gh gw)
        return rearrange(x, "b d t gh gw -> b t (gh gw) d"), (x.shape[-2], x.shape[-1])
