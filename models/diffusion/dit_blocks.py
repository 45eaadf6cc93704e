"""The building blocks of :class:`models.diffusion.dit.VideoDiT`: DiT's embedders, adaLN-Zero block and final layer.

They follow facebookresearch/DiT ``models.py`` (Peebles & Xie 2023, arXiv 2212.09748): ``TimestepEmbedder``,
``LabelEmbedder``, ``DiTBlock`` (here with attention sublayers over space, time or both, as Latte, Ma et al. 2024,
arXiv 2401.03048) and ``FinalLayer``; plus MAE/DiT's fixed sin-cos position embeddings and minRF's conv stem.
Tokens are (b t n d): b clips, t frames (or tubelets), n = gh·gw patches, width d.
"""

from __future__ import annotations

import torch
from diffusers.models.embeddings import (
    get_1d_sincos_pos_embed_from_grid,
    get_2d_sincos_pos_embed_from_grid,
    get_timestep_embedding,
)
from einops import rearrange
from timm.layers import Mlp
from torch import nn

from models.attention import (
    Attention,
    FirstFrameAttention,
    FirstFrameTemporalAttention,
    RotaryAttention,
    SplitHeadAttention,
    WindowedTemporalAttention,
)

MIXERS = ("space", "time", "joint", "split_heads")


def sincos_1d(embed_dim: int, positions: torch.Tensor) -> torch.Tensor:
    """1D sin-cos position embedding (Vaswani et al. 2017; MAE's ``get_1d_sincos_pos_embed_from_grid``), computed by
    ``diffusers.models.embeddings.get_1d_sincos_pos_embed_from_grid``.

    Args:
        embed_dim: even output width d.
        positions: tensor (n,) of positions (any real dtype; frame or patch indices).

    Returns:
        float32 tensor (n d): ``[sin(pos·ω_k) | cos(pos·ω_k)]`` with ``ω_k = 10000^(-k/(d/2))``, k < d/2.
    """
    return get_1d_sincos_pos_embed_from_grid(embed_dim, positions).float()  # (n d), computed in float64


def sincos_2d(embed_dim: int, grid: tuple[int, int]) -> torch.Tensor:
    """2D sin-cos position embedding of a patch grid, as MAE/DiT's ``get_2d_sincos_pos_embed``, computed by
    ``diffusers.models.embeddings.get_2d_sincos_pos_embed_from_grid`` (which also allows non-square grids).

    Args:
        embed_dim: output width d, divisible by 4.
        grid: patch grid (gh, gw).

    Returns:
        float32 tensor (n d), n = gh·gw in row-major order; the first d/2 channels encode the column, the rest the row.
    """
    rows, cols = torch.meshgrid(torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij")  # each (gh gw)
    coordinates = torch.stack([cols, rows]).float()  # (2 gh gw): column first, as diffusers' meshgrid(w, h)
    return get_2d_sincos_pos_embed_from_grid(embed_dim, coordinates).float()  # (n d)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation ``x·(1 + scale) + shift`` (DiT); ``shift`` and ``scale`` broadcast against ``x``."""
    return x * (1 + scale) + shift


class TimestepEmbedder(nn.Module):
    """Embeds diffusion timesteps: sinusoidal features (GLIDE/DiT, ``[cos | sin]``) then a 2-layer SiLU MLP."""

    def __init__(self, hidden_size: int, frequency_embedding_size: int = 256) -> None:
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, hidden_size),
            nn.SiLU(),
            nn.Linear(hidden_size, hidden_size),
        )

    @staticmethod
    def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: int = 10000) -> torch.Tensor:
        """Sinusoidal features of (possibly fractional) timesteps.

        Args:
            timesteps: tensor (b,), int or float, in scheduler steps (e.g. 0..999).
            dim: feature width.
            max_period: longest period, in timesteps.

        Returns:
            float32 tensor (b dim): ``[cos(ts·f_k) | sin(ts·f_k)]``, ``f_k = max_period^(-k/(dim/2))``; zero-padded
            when ``dim`` is odd (``diffusers.models.embeddings.get_timestep_embedding``).
        """
        # diffusers' DiT setting: cos first, no frequency shift (identical to DiT's own timestep_embedding)
        return get_timestep_embedding(timesteps, dim, flip_sin_to_cos=True, downscale_freq_shift=0,
                                      max_period=max_period)  # (b dim)

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        """Map timesteps (b,) to embeddings (b d)."""
        return self.mlp(self.timestep_embedding(timesteps, self.frequency_embedding_size))  # (b d)


class LabelEmbedder(nn.Module):
    """Class-label table of ``num_classes + 1`` rows; row ``num_classes`` is the null label (classifier-free guidance).

    Label dropout is the caller's job (replace labels by ``null_label``), so this module is deterministic.
    """

    def __init__(self, num_classes: int, hidden_size: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.null_label = num_classes
        self.embedding_table = nn.Embedding(num_classes + 1, hidden_size)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        """Map long labels (b,) in [0, num_classes] to embeddings (b d)."""
        return self.embedding_table(labels)  # (b d)


class DiTBlock(nn.Module):
    """A transformer block with adaLN-Zero conditioning whose attention sublayers (``mixers``) run in order.

    Args:
        dim: token width d.
        num_heads: attention heads nh.
        mlp_ratio: MLP hidden width / d.
        mixers: attention sublayers, each one of ``MIXERS``: ``("space",)``, ``("time",)``, ``("space", "time")``
            (divided), ``("joint",)`` or ``("split_heads",)``. Each sublayer and the MLP get their own
            (shift, scale, gate) from ``adaLN_modulation``, in that order (DiT's order for one sublayer).
        fused_attn: SDPA (``True``) or the reference attention.
        temporal_rope: rotary frame positions in the temporal attention (:class:`models.attention.RotaryAttention`).
        temporal_window: > 1: the temporal attention also reads a ``temporal_window``² patch neighbourhood in every
            frame (:class:`models.attention.WindowedTemporalAttention`); needs ``grid_size``.
        grid_size: the patch grid (gh, gw) of the tokens' n = gh·gw axis.
        first_frame_attention: ``"none"``; ``"spatial"``: each frame's spatial attention also reads frame 0's tokens
            (:class:`models.attention.FirstFrameAttention`); ``"temporal"``: the temporal attention also reads all of
            frame 0 (:class:`models.attention.FirstFrameTemporalAttention`). Same parameters either way.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, mixers: tuple[str, ...], fused_attn: bool,
                 temporal_rope: bool = False, temporal_window: int = 1,
                 grid_size: tuple[int, int] | None = None, first_frame_attention: str = "none") -> None:
        super().__init__()
        self.mixers = tuple(mixers)
        self.grid_size = grid_size
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)  # parameter-free: shared by sublayers
        if "split_heads" in self.mixers:
            self.attn = SplitHeadAttention(dim, num_heads, qkv_bias=True, fused_attn=fused_attn)
        elif "space" in self.mixers and first_frame_attention == "spatial":
            self.attn = FirstFrameAttention(dim, num_heads, qkv_bias=True, fused_attn=fused_attn)
        elif {"space", "joint"} & set(self.mixers):
            self.attn = Attention(dim, num_heads, qkv_bias=True, fused_attn=fused_attn)
        if "time" in self.mixers and temporal_window > 1:
            self.temporal_attn = WindowedTemporalAttention(dim, num_heads, temporal_window, qkv_bias=True,
                                                           fused_attn=fused_attn, rope=temporal_rope)
        elif "time" in self.mixers and first_frame_attention == "temporal":
            self.temporal_attn = FirstFrameTemporalAttention(dim, num_heads, qkv_bias=True, fused_attn=fused_attn,
                                                             rope=temporal_rope)
        elif "time" in self.mixers:
            temporal = RotaryAttention if temporal_rope else Attention
            self.temporal_attn = temporal(dim, num_heads, qkv_bias=True, fused_attn=fused_attn)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio), act_layer=lambda: nn.GELU(approximate="tanh"))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 3 * (len(self.mixers) + 1) * dim))

    def _mix(self, mixer: str, x: torch.Tensor) -> torch.Tensor:
        """Apply one attention sublayer to normalised tokens (b t n d) -> (b t n d)."""
        b, t = x.shape[:2]
        if mixer == "space" and isinstance(self.attn, FirstFrameAttention):
            return self.attn(x)  # (b t n d): every frame reads itself and frame 0
        if mixer == "space":
            out = self.attn(rearrange(x, "b t n d -> (b t) n d"))  # ((b t) n d)
            return rearrange(out, "(b t) n d -> b t n d", b=b)
        if mixer == "time" and isinstance(self.temporal_attn, WindowedTemporalAttention):
            grid = rearrange(x, "b t (gh gw) d -> b t gh gw d", gh=self.grid_size[0])
            return rearrange(self.temporal_attn(grid), "b t gh gw d -> b t (gh gw) d")
        if mixer == "time" and isinstance(self.temporal_attn, FirstFrameTemporalAttention):
            return self.temporal_attn(x)  # (b t n d): each patch over frames, and all of frame 0
        if mixer == "time":
            out = self.temporal_attn(rearrange(x, "b t n d -> (b n) t d"))  # ((b n) t d)
            return rearrange(out, "(b n) t d -> b t n d", b=b)
        if mixer == "joint":
            out = self.attn(rearrange(x, "b t n d -> b (t n) d"))  # (b (t n) d)
            return rearrange(out, "b (t n) d -> b t n d", t=t)
        return self.attn(x)  # split_heads: (b t n d)

    def forward(self, x: torch.Tensor, c: torch.Tensor, c_temporal: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the block.

        Args:
            x: tokens (b t n d).
            c: conditioning (b d).
            c_temporal: conditioning (b d) of the temporal sublayer's (shift, scale, gate) only; ``None``: ``c``
                (see ``VideoDiT``'s ``temporal_label_sets``).

        Returns:
            Tokens (b t n d).
        """
        k = 3 * (len(self.mixers) + 1)
        mod = rearrange(self.adaLN_modulation(c), "b (k d) -> k b 1 1 d", k=k)  # (k b 1 1 d)
        if c_temporal is not None and "time" in self.mixers:
            mod_temporal = rearrange(self.adaLN_modulation(c_temporal), "b (k d) -> k b 1 1 d", k=k)  # (k b 1 1 d)
        for i, mixer in enumerate(self.mixers):
            source = mod_temporal if mixer == "time" and c_temporal is not None else mod
            shift, scale, gate = source[3 * i : 3 * i + 3]  # each (b 1 1 d)
            x = x + gate * self._mix(mixer, modulate(self.norm1(x), shift, scale))  # (b t n d)
        shift, scale, gate = mod[-3:]  # each (b 1 1 d)
        return x + gate * self.mlp(modulate(self.norm2(x), shift, scale))  # (b t n d)

    @torch.no_grad()
    def zero_init_temporal_(self) -> None:
        """Make the temporal path output zero while keeping it trainable (see the module docstring)."""
        if "time" in self.mixers:
            nn.init.zeros_(self.temporal_attn.proj.weight)
            nn.init.zeros_(self.temporal_attn.proj.bias)
            dim = self.temporal_attn.proj.out_features
            gate = 3 * self.mixers.index("time") + 2
            self.adaLN_modulation[-1].bias[gate * dim : (gate + 1) * dim] = 1.0
        if "split_heads" in self.mixers:
            self.attn.proj.weight[:, self.attn.proj.in_features // 2 :] = 0.0


class ConvStem(nn.Module):
    """Per-frame 3×3 convolutions at latent resolution before patchify: a convolutional bias for a transformer
    denoiser (minRF's conv stem, cloneofsimo/minRF; Xiao et al. 2021, "Early Convolutions Help Transformers See
    Better", arXiv 2106.14881).

    Args:
        in_channels: latent channels c.
        width: output channels of every layer.
        depth: number of conv + GELU layers (>= 1).
    """

    def __init__(self, in_channels: int, width: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Conv2d(in_channels if i == 0 else width, width, kernel_size=3, padding=1), nn.GELU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map latents (b c t h w) to features (b width t h w), each frame alone."""
        b = x.shape[0]
        y = self.layers(rearrange(x, "b c t h w -> (b t) c h w"))  # ((b t) width h w)
        return rearrange(y, "(b t) c h w -> b c t h w", b=b)


class FinalLayer(nn.Module):
    """adaLN-modulated LayerNorm and a linear map from tokens to patches of ``out_channels`` (DiT)."""

    def __init__(self, hidden_size: int, patch_size: int, out_channels: int, tubelet_size: int = 1) -> None:
        super().__init__()
        self.norm_final = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(hidden_size, tubelet_size * patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, 2 * hidden_size))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Map tokens (b t' n d) and conditioning (b d) to patch values (b t' n (k p p c)), k the tubelet size."""
        shift, scale = rearrange(self.adaLN_modulation(c), "b (k d) -> k b 1 1 d", k=2)  # each (b 1 1 d)
        return self.linear(modulate(self.norm_final(x), shift, scale))  # (b t' n (k p p c))


def block_mixers(layout: str, depth: int) -> list[tuple[str, ...]]:
    """The attention sublayers of each of the ``depth`` blocks for a ``layout`` (see the module docstring)."""
    if layout == "interleaved":
        return [("space",) if i % 2 == 0 else ("time",) for i in range(depth)]
    if layout == "late_fusion":
        return [("space",) if i < depth // 2 else ("time",) for i in range(depth)]
    if layout == "divided":
        return [("space", "time")] * depth
    if layout == "split_heads":
        return [("split_heads",)] * depth
    if layout == "joint":
        return [("joint",)] * depth
    return [("space",)] * depth  # space_only


__all__ = ["MIXERS", "ConvStem", "DiTBlock", "FinalLayer", "LabelEmbedder", "TimestepEmbedder", "block_mixers",
           "modulate", "sincos_1d", "sincos_2d"]
