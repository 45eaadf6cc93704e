"""TimeSformer (Bertasius et al., ICML 2021) with its three attention types.

Follows facebookresearch/TimeSformer ``timesformer/models/vit.py``:

* ``divided_space_time``: in every block, temporal attention over each patch position's t tokens (CLS left out),
  through a zero-initialised ``temporal_fc``; then spatial attention per frame with the CLS token repeated t times
  and its t outputs averaged; then the MLP.
* ``joint_space_time``: one attention over all t·n patch tokens plus one CLS token.
* ``space_only``: a ViT per frame, one CLS token per frame, averaged over t before the final norm. It sees the frames
  as an unordered set (no time embedding), which makes it the "no temporal modelling" ablation.

Tokens are kept as a CLS tensor (b d) and patch tokens (b t n d). Parameter names follow the official code
(``blocks.i.temporal_fc``, ``time_embed``, ``patch_embed.proj`` ...), so official checkpoints load by renaming
alone. The frame count and image size come from the input; ``pos_embed`` is resampled on
its 2D grid and ``time_embed`` along time when they differ from the configured size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, reduce, repeat
from timm.layers import DropPath, Mlp, resample_abs_pos_embed, trunc_normal_
from torch import nn

from models.attention import Attention
from models.grad_checkpoint import run_block
from models.init import vit_init_
from models.patch_embed import PatchEmbed

ATTENTION_TYPES = ("divided_space_time", "joint_space_time", "space_only")


class Block(nn.Module):
    """A TimeSformer block: ``divided_space_time`` or ``joint_space_time`` (``space_only`` runs joint blocks per frame).

    Drop-path masks follow the official code: temporal residuals are dropped per (clip, patch position), spatial
    residuals per (clip, frame), MLP residuals per clip.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path: float = 0.0,
        attention_type: str = "divided_space_time",
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        self.attention_type = attention_type
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop_rate, drop_rate, fused_attn)
        if attention_type == "divided_space_time":
            self.temporal_norm1 = nn.LayerNorm(dim, eps=1e-6)
            self.temporal_attn = Attention(dim, num_heads, qkv_bias, attn_drop_rate, drop_rate, fused_attn)
            self.temporal_fc = nn.Linear(dim, dim)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU, drop=drop_rate)

    def forward(self, cls: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Apply the block.

        Args:
            cls: CLS token (b d).
            x: patch tokens (b t n d).

        Returns:
            Updated ``(cls, x)`` with the same shapes.
        """
        b, t, n, _ = x.shape
        if self.attention_type == "divided_space_time":
            xt = rearrange(x, "b t n d -> (b n) t d")
            res_t = self.temporal_fc(self.drop_path(self.temporal_attn(self.temporal_norm1(xt))))  # ((b n) t d)
            x = x + rearrange(res_t, "(b n) t d -> b t n d", b=b)

            xs = torch.cat([repeat(cls, "b d -> (b t) 1 d", t=t), rearrange(x, "b t n d -> (b t) n d")], dim=1)
            res_s = self.drop_path(self.attn(self.norm1(xs)))  # ((b t) 1+n d)
            cls = cls + reduce(res_s[:, 0], "(b t) d -> b d", "mean", t=t)
            x = x + rearrange(res_s[:, 1:], "(b t) n d -> b t n d", t=t)
            tokens = torch.cat([cls[:, None], rearrange(x, "b t n d -> b (t n) d")], dim=1)  # (b 1+t·n d)
        else:
            tokens = torch.cat([cls[:, None], rearrange(x, "b t n d -> b (t n) d")], dim=1)  # (b 1+t·n d)
            tokens = tokens + self.drop_path(self.attn(self.norm1(tokens)))
        tokens = tokens + self.drop_path(self.mlp(self.norm2(tokens)))
        return tokens[:, 0], rearrange(tokens[:, 1:], "b (t n) d -> b t n d", t=t, n=n)


class TimeSformer(nn.Module):
    """TimeSformer video classifier.

    Args:
        img_size: configured frame size (pixels); ``pos_embed`` holds (img_size/patch_size)² positions.
        patch_size: square patch side (pixels).
        in_chans: input channels.
        num_classes: classifier outputs; 0 gives an identity head (features).
        num_frames: configured clip length (frames); ``time_embed`` holds ``num_frames / tubelet_size`` entries.
        tubelet_size: frames per token (see :class:`PatchEmbed`); 1 is TimeSformer's per-frame embedding. A tubelet
            sees frame order, so ``space_only`` with ``tubelet_size > 1`` is no longer order-blind.
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: transformer size, as in timm's ViT.
        drop_rate: dropout after position/time embeddings, in attention projections and MLPs (training only).
        attn_drop_rate: dropout on attention weights (training only).
        drop_path_rate: stochastic depth, linearly increasing over blocks up to this value (training only).
        attention_type: ``divided_space_time``, ``joint_space_time`` or ``space_only``.
        fused_attn: use SDPA (``True``) or the plain reference attention.
        grad_checkpointing: recompute each block's activations in the backward pass instead of storing them
            (:func:`models.grad_checkpoint.run_block`): less memory for one more forward per block.

    Raises:
        ValueError: an unknown ``attention_type`` or a size that does not fit (named in the message).
    """

    fsdp_units = (Block,)  # one FSDP unit per block (models/distributed.py)

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 400,
        num_frames: int = 8,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        attention_type: str = "divided_space_time",
        fused_attn: bool = True,
        tubelet_size: int = 1,
        grad_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type={attention_type!r} is not one of {ATTENTION_TYPES}")
        if img_size % patch_size != 0:
            raise ValueError(f"img_size={img_size} is not divisible by patch_size={patch_size}")
        if num_frames < 1:
            raise ValueError(f"num_frames={num_frames} must be >= 1")
        if tubelet_size < 1 or num_frames % tubelet_size:
            raise ValueError(f"num_frames={num_frames} is not divisible by tubelet_size={tubelet_size}")
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")
        self.attention_type = attention_type
        self.grad_checkpointing = grad_checkpointing
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.grid_size = (img_size // patch_size, img_size // patch_size)

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, tubelet_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid_size[0] * self.grid_size[1], embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        if attention_type != "space_only":
            self.time_embed = nn.Parameter(torch.zeros(1, num_frames // tubelet_size, embed_dim))
            self.time_drop = nn.Dropout(drop_rate)
        block_type = "divided_space_time" if attention_type == "divided_space_time" else "joint_space_time"
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, rate, block_type, fused_attn)
            for rate in rates
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """The official recipe: truncated-normal(0.02) linears and embeddings, zero ``time_embed`` and ``temporal_fc``."""
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)

        self.apply(vit_init_)
        if self.attention_type == "divided_space_time":
            for block in self.blocks:
                nn.init.zeros_(block.temporal_fc.weight)
                nn.init.zeros_(block.temporal_fc.bias)

    def no_weight_decay(self) -> set[str]:
        """Parameters excluded from weight decay, as in the official code (plus every bias and norm, see classifier)."""
        return {"pos_embed", "cls_token", "time_embed"}

    def _pos_embed(self, grid: tuple[int, int]) -> torch.Tensor:
        """Spatial position embedding for a patch grid, resampled on the 2D grid if it differs: (1 1+n d)."""
        if grid == self.grid_size:
            return self.pos_embed
        return resample_abs_pos_embed(self.pos_embed, new_size=list(grid), old_size=list(self.grid_size),
                                      num_prefix_tokens=1)

    def _time_embed(self, num_frames: int) -> torch.Tensor:
        """Time embedding for ``num_frames`` frames, nearest-resampled as in the official code: (1 t d)."""
        if num_frames == self.time_embed.shape[1]:
            return self.time_embed
        resized = F.interpolate(rearrange(self.time_embed, "1 t d -> 1 d t"), size=num_frames, mode="nearest")
        return rearrange(resized, "1 d t -> 1 t d")

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """Encode a clip into its final normalised CLS feature.

        Args:
            video: float tensor (b c t h w), normalised frames; t and h/w may differ from the configured sizes.

        Returns:
            Tensor (b d).
        """
        x, grid = self.patch_embed(video)  # (b t n d)
        b, t = x.shape[:2]
        pos = self._pos_embed(grid)  # (1 1+n d)
        cls = self.cls_token[:, 0].expand(b, -1) + pos[:, 0]  # (b d)
        x = self.pos_drop(x + pos[:, None, 1:])  # (b t n d)
        cls = self.pos_drop(cls)
        if self.attention_type == "space_only":
            x = rearrange(x, "b t n d -> (b t) 1 n d")
            cls = repeat(cls, "b d -> (b t) d", t=t)
        else:
            x = self.time_drop(x + self._time_embed(t)[:, :, None])  # (b t n d)
        for block in self.blocks:
            cls, x = run_block(block, cls, x, checkpointing=self.grad_checkpointing)
        if self.attention_type == "space_only":
            cls = reduce(cls, "(b t) d -> b d", "mean", t=t)
        return self.norm(cls)  # (b d)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Classify clips.

        Args:
            video: float tensor (b c t h w).

        Returns:
            Logits (b num_classes), float.
        """
        return self.head(self.head_drop(self.forward_features(video)))
