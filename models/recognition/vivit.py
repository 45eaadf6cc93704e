"""ViViT (Arnab et al., ICCV 2021, "ViViT: A Video Vision Transformer"), its four models, on the project's layers.

All four start from the tubelet embedding of §3.2 (:class:`models.patch_embed.PatchEmbed`, a Conv3d over
``tubelet_size × patch_size × patch_size``; ``tubelet_size = 1`` is uniform frame sampling) and use the project's
:class:`models.attention.Attention`, the same kernel as TimeSformer and the DiT. Tokens are (b t n d) with t the number
of tubelets in time and n the patches per frame.

* ``variant=1``, spatio-temporal attention (§3.3 model 1): a CLS token and one learned position embedding over all
  ``1 + t·n`` tokens, pre-norm transformer blocks over all of them, the CLS feature classified. This is also HF's
  ``VivitModel``.
* ``variant=2``, factorised encoder (model 2): a spatial transformer (``depth`` blocks) per time index, each frame
  with its own CLS token and the shared spatial position embedding; then a temporal transformer
  (``temporal_depth`` blocks) over the t frame CLS features plus a temporal CLS token with a temporal position
  embedding; the temporal CLS is classified. Late fusion of time.
* ``variant=3``, factorised self-attention (model 3): every block runs temporal attention (each patch position over
  t), then spatial attention (each time index over n), each with its own LayerNorm and residual, then the MLP, the
  order of scenic's ``EncoderFactorizedSelfAttentionBlock``. No CLS token: global average pooling over all tokens.
* ``variant=4``, factorised dot-product attention (model 4): one attention layer whose heads are split, half over
  space and half over time (:class:`models.attention.SplitHeadAttention`), then the MLP; global average pooling.

Where we differ from the paper or scenic: every block's MLP uses exact GELU (scenic's default; HF's checkpoints use
the tanh approximation, ``mlp_act=gelu_tanh``), LayerNorm eps is 1e-6 throughout, and models 3 and 4 add the position
embedding as one table over all ``t·n`` tokens, as scenic does with ``posemb_type='learned'`` on the flattened tokens.
"""

from __future__ import annotations

import torch
from einops import rearrange, reduce, repeat
from timm.layers import DropPath, Mlp, trunc_normal_
from torch import nn

from models.attention import Attention, SplitHeadAttention
from models.grad_checkpoint import run_block
from models.init import vit_init_
from models.patch_embed import PatchEmbed

VARIANTS = (1, 2, 3, 4)
MLP_ACTIVATIONS = {"gelu": lambda: nn.GELU(), "gelu_tanh": lambda: nn.GELU(approximate="tanh")}


class EncoderBlock(nn.Module):
    """A pre-norm transformer block over one token axis: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``.

    Input and output (b n d): b independent sequences of n tokens.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path: float = 0.0, fused_attn: bool = True,
                 mlp_act: str = "gelu") -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias, attn_drop_rate, drop_rate, fused_attn)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio), act_layer=MLP_ACTIVATIONS[mlp_act], drop=drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))  # (b n d)


class FactorisedBlock(nn.Module):
    """ViViT model 3 (``mixer="factorised"``) or model 4 (``mixer="split_heads"``) on tokens (b t n d).

    Model 3: ``x += temporal_attn(temporal_norm(x))`` over t at each position, then ``x += attn(norm1(x))`` over n
    in each frame, then the MLP. Model 4: ``x += attn(norm1(x))`` with half the heads over space and half over time,
    then the MLP.
    """

    def __init__(self, dim: int, num_heads: int, mixer: str, mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path: float = 0.0, fused_attn: bool = True,
                 mlp_act: str = "gelu") -> None:
        super().__init__()
        self.mixer = mixer
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        if mixer == "factorised":
            self.temporal_norm = nn.LayerNorm(dim, eps=1e-6)
            self.temporal_attn = Attention(dim, num_heads, qkv_bias, attn_drop_rate, drop_rate, fused_attn)
            self.attn = Attention(dim, num_heads, qkv_bias, attn_drop_rate, drop_rate, fused_attn)
        else:
            self.attn = SplitHeadAttention(dim, num_heads, qkv_bias, attn_drop_rate, drop_rate, fused_attn)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, hidden_features=int(dim * mlp_ratio), act_layer=MLP_ACTIVATIONS[mlp_act], drop=drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if self.mixer == "factorised":
            xt = self.temporal_attn(self.temporal_norm(rearrange(x, "b t n d -> (b n) t d")))  # ((b n) t d)
            x = x + self.drop_path(rearrange(xt, "(b n) t d -> b t n d", b=b))
            xs = self.attn(self.norm1(rearrange(x, "b t n d -> (b t) n d")))  # ((b t) n d)
            x = x + self.drop_path(rearrange(xs, "(b t) n d -> b t n d", b=b))
        else:
            x = x + self.drop_path(self.attn(self.norm1(x)))  # split heads on (b t n d)
        return x + self.drop_path(self.mlp(self.norm2(x)))  # (b t n d)


class ViViT(nn.Module):
    """ViViT video classifier, models 1-4 (see the module docstring).

    Args:
        img_size: configured frame size (pixels).
        patch_size: square patch side (pixels).
        tubelet_size: frames per token (ViViT's t in t×h×w tubelets; 2 in the paper's /16x2 models).
        in_chans: input channels.
        num_classes: classifier outputs; 0 gives an identity head (features).
        num_frames: configured clip length (frames), a multiple of ``tubelet_size``.
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias: transformer size; for ``variant=2``, ``depth`` is the
            spatial encoder's depth.
        temporal_depth: blocks of model 2's temporal encoder (ignored by the other models); the paper's ViViT-B FE
            uses 4.
        drop_rate, attn_drop_rate, drop_path_rate: dropout, attention dropout, stochastic depth (linear over blocks).
        variant: 1, 2, 3 or 4.
        fused_attn: SDPA (``True``) or the reference attention.
        mlp_act: ``gelu`` (exact, scenic) or ``gelu_tanh`` (HF's ``gelu_fast``).
        grad_checkpointing: recompute each block's activations in the backward pass instead of storing them.

    Raises:
        ValueError: an unknown variant or activation, or sizes that do not fit (named in the message).
    """

    fsdp_units = (EncoderBlock, FactorisedBlock)  # one FSDP unit per block (models/distributed.py)

    def __init__(self, img_size: int = 224, patch_size: int = 16, tubelet_size: int = 2, in_chans: int = 3,
                 num_classes: int = 400, num_frames: int = 32, embed_dim: int = 768, depth: int = 12,
                 num_heads: int = 12, mlp_ratio: float = 4.0, qkv_bias: bool = True, temporal_depth: int = 4,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0, variant: int = 1,
                 fused_attn: bool = True, mlp_act: str = "gelu", grad_checkpointing: bool = False) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant={variant} is not one of {VARIANTS}")
        if mlp_act not in MLP_ACTIVATIONS:
            raise ValueError(f"mlp_act={mlp_act!r} is not one of {tuple(MLP_ACTIVATIONS)}")
        if img_size % patch_size:
            raise ValueError(f"img_size={img_size} is not divisible by patch_size={patch_size}")
        if tubelet_size < 1 or num_frames % tubelet_size:
            raise ValueError(f"num_frames={num_frames} is not divisible by tubelet_size={tubelet_size}")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} is not divisible by num_heads={num_heads}")
        if variant == 2 and temporal_depth < 1:
            raise ValueError(f"temporal_depth={temporal_depth} must be >= 1 for variant=2")
        self.variant = variant
        self.grad_checkpointing = grad_checkpointing
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.num_tubelets = num_frames // tubelet_size
        self.num_patches = (img_size // patch_size) ** 2
        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, tubelet_size)
        self.pos_drop = nn.Dropout(drop_rate)
        kw = dict(mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop_rate=drop_rate, attn_drop_rate=attn_drop_rate,
                  fused_attn=fused_attn, mlp_act=mlp_act)
        total = depth + (temporal_depth if variant == 2 else 0)
        rates = torch.linspace(0, drop_path_rate, total).tolist()
        if variant == 1:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.num_tubelets * self.num_patches, embed_dim))
            self.blocks = nn.ModuleList(EncoderBlock(embed_dim, num_heads, drop_path=r, **kw) for r in rates)
        elif variant == 2:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
            self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.num_patches, embed_dim))
            self.blocks = nn.ModuleList(EncoderBlock(embed_dim, num_heads, drop_path=r, **kw) for r in rates[:depth])
            self.spatial_norm = nn.LayerNorm(embed_dim, eps=1e-6)
            self.temporal_cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
            self.temporal_pos_embed = nn.Parameter(torch.zeros(1, 1 + self.num_tubelets, embed_dim))
            self.temporal_blocks = nn.ModuleList(EncoderBlock(embed_dim, num_heads, drop_path=r, **kw)
                                                 for r in rates[depth:])
        else:
            self.pos_embed = nn.Parameter(torch.zeros(1, self.num_tubelets * self.num_patches, embed_dim))
            mixer = "factorised" if variant == 3 else "split_heads"
            self.blocks = nn.ModuleList(FactorisedBlock(embed_dim, num_heads, mixer, drop_path=r, **kw) for r in rates)
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self.head_drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """ViT's recipe: truncated-normal(0.02) embeddings and linears, zero biases, unit LayerNorms."""
        for name, param in self.named_parameters():
            if name.endswith(("cls_token", "pos_embed")):
                trunc_normal_(param, std=0.02)

        self.apply(vit_init_)

    def no_weight_decay(self) -> set[str]:
        """Embeddings and CLS tokens are not decayed (biases and norms are excluded by the classifier)."""
        return {n for n, _ in self.named_parameters() if n.endswith(("cls_token", "pos_embed"))}

    def _check_grid(self, t: int, n: int) -> None:
        if n != self.num_patches or t != self.num_tubelets:
            raise ValueError(f"input gives {t} tubelets x {n} patches; this ViViT was built for "
                             f"{self.num_tubelets} x {self.num_patches} (num_frames, img_size and the patch sizes)")

    def spatial_features(self, video: torch.Tensor) -> torch.Tensor:
        """Model 2's spatial encoder: the normalised CLS feature of every time index, each encoded alone: (b t d)."""
        if self.variant != 2:
            raise ValueError(f"spatial_features exists for variant=2 only (this is variant={self.variant})")
        x, _ = self.patch_embed(video)  # (b t n d)
        b, t, n, _ = x.shape
        self._check_grid(t, n)
        x = torch.cat([repeat(self.cls_token, "1 1 d -> (b t) 1 d", b=b, t=t),
                       rearrange(x, "b t n d -> (b t) n d")], dim=1) + self.pos_embed  # ((b t) 1+n d)
        x = self.pos_drop(x)
        for block in self.blocks:
            x = run_block(block, x, checkpointing=self.grad_checkpointing)
        return rearrange(self.spatial_norm(x[:, 0]), "(b t) d -> b t d", b=b)

    def forward_features(self, video: torch.Tensor) -> torch.Tensor:
        """Encode clips into the feature the head classifies.

        Args:
            video: float (b c t h w), normalised; t = ``num_frames`` and h = w = ``img_size``.

        Returns:
            Tensor (b d): the CLS feature (models 1, 2) or the mean of all tokens (models 3, 4), after the final norm.

        Raises:
            ValueError: the input does not give the configured token grid.
        """
        if self.variant == 2:
            frames = self.spatial_features(video)  # (b t d)
            cls = self.temporal_cls_token.expand(frames.shape[0], -1, -1)
            x = torch.cat([cls, frames], dim=1) + self.temporal_pos_embed  # (b 1+t d)
            for block in self.temporal_blocks:
                x = run_block(block, x, checkpointing=self.grad_checkpointing)
            return self.norm(x[:, 0])
        x, _ = self.patch_embed(video)  # (b t n d)
        b, t, n, _ = x.shape
        self._check_grid(t, n)
        if self.variant == 1:
            x = torch.cat([self.cls_token.expand(b, -1, -1), rearrange(x, "b t n d -> b (t n) d")], dim=1)
            x = self.pos_drop(x + self.pos_embed)  # (b 1+t·n d)
            for block in self.blocks:
                x = run_block(block, x, checkpointing=self.grad_checkpointing)
            return self.norm(x[:, 0])
        pos = rearrange(self.pos_embed, "1 (t n) d -> 1 t n d", t=t)
        x = self.pos_drop(x + pos)  # (b t n d)
        for block in self.blocks:
            x = run_block(block, x, checkpointing=self.grad_checkpointing)
        return self.norm(reduce(x, "b t n d -> b d", "mean"))

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Logits (b num_classes) of clips (b c t h w)."""
        return self.head(self.head_drop(self.forward_features(video)))
