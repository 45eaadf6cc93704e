"""Multi-head self-attention shared by every model in the project.

One implementation serves the recognition models (TimeSformer, ViViT) and the video diffusion transformer,
so that an ablation of *where* attention runs (over space, over time, or both) never changes *how* it runs.

The fused path calls ``F.scaled_dot_product_attention``; the reference path is the textbook
``softmax(q kᵀ / √dh) v`` written out, kept for parity tests and for debugging.
Parameter names (``qkv``, ``proj``) follow timm and the official TimeSformer, so their checkpoints load by renaming alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import nn


def reference_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout_p: float = 0.0, training: bool = False,
    attn_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Plain scaled dot-product attention (Vaswani et al. 2017), the reference for the fused path.

    Args:
        q: float tensor (b nh n dh); any float dtype, computed in that dtype.
        k, v: float tensors (b nh m dh) (m = n for self-attention).
        dropout_p: dropout probability on the attention weights, applied only when ``training``.
        training: whether dropout is active.
        attn_mask: optional bool tensor broadcastable to (b nh n m), ``True`` where a key takes part (SDPA's
            convention); every query needs at least one ``True``.

    Returns:
        Tensor (b nh n dh), ``softmax(q kᵀ / sqrt(dh)) v``.
    """
    scale = q.shape[-1] ** -0.5
    weights = (q * scale) @ k.transpose(-2, -1)  # (b nh n m)
    if attn_mask is not None:
        weights = weights.masked_fill(~attn_mask, float("-inf"))
    weights = weights.softmax(dim=-1)
    weights = F.dropout(weights, p=dropout_p, training=training)
    return weights @ v  # (b nh n dh)


class Attention(nn.Module):
    """Multi-head self-attention over a token sequence.

    Args:
        dim: token width ``d``.
        num_heads: number of heads ``nh``; ``dim`` must be divisible by it.
        qkv_bias: add a bias to the fused q/k/v projection.
        attn_drop: dropout on attention weights (active only in training).
        proj_drop: dropout after the output projection (active only in training).
        fused_attn: use ``F.scaled_dot_product_attention``; ``False`` runs :func:`reference_attention`.

    Raises:
        ValueError: ``dim`` is not divisible by ``num_heads``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"embed_dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.fused_attn = fused_attn
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the second axis.

        Args:
            x: float tensor (b n d): b independent sequences of n tokens.

        Returns:
            Tensor (b n d).
        """
        qkv = rearrange(self.qkv(x), "b n (three nh dh) -> three b nh n dh", three=3, nh=self.num_heads)
        q, k, v = qkv.unbind(0)  # each (b nh n dh)
        dropout_p = self.attn_drop if self.training else 0.0
        if self.fused_attn:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
        else:
            out = reference_attention(q, k, v, dropout_p=dropout_p, training=self.training)
        out = rearrange(out, "b nh n dh -> b n (nh dh)")
        return self.proj_drop(self.proj(out))  # (b n d)


def _attend(attn: Attention, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
            attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Run ``attn``'s attention kernel (SDPA or the reference) on q (b nh n dh) and k, v (b nh m dh), as
    :class:`Attention` does; ``attn_mask`` as :func:`reference_attention`'s."""
    dropout_p = attn.attn_drop if attn.training else 0.0
    if attn.fused_attn:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)  # (b nh n dh)
    return reference_attention(q, k, v, dropout_p=dropout_p, training=attn.training,
                               attn_mask=attn_mask)  # (b nh n dh)


class SplitHeadAttention(Attention):
    """ViViT model 4 / Latte variant 4: half the heads attend over space, half over time, in one layer.

    Same parameters as :class:`Attention` (``qkv``, ``proj``). Heads ``[0, nh/2)`` attend within each frame, heads
    ``[nh/2, nh)`` across frames at each patch position; outputs are concatenated (spatial first) before ``proj``, so
    ``proj.weight[:, d/2:]`` reads the temporal heads.

    Raises:
        ValueError: ``num_heads`` is odd, or ``dim`` is not divisible by it.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, fused_attn: bool = True) -> None:
        if num_heads % 2:
            raise ValueError(f"num_heads={num_heads} must be even to split the heads between space and time")
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over space with half the heads and over time with the other half.

        Args:
            x: float tensor (b t n d).

        Returns:
            Tensor (b t n d).
        """
        b, t, n, _ = x.shape
        half = self.num_heads // 2
        qkv = rearrange(self.qkv(x), "b t n (three nh dh) -> three b nh t n dh", three=3, nh=self.num_heads)
        spatial = rearrange(qkv[:, :, :half], "three b nh t n dh -> three (b t) nh n dh")
        temporal = rearrange(qkv[:, :, half:], "three b nh t n dh -> three (b n) nh t dh")
        out_s = _attend(self, *spatial.unbind(0))  # ((b t) nh/2 n dh)
        out_t = _attend(self, *temporal.unbind(0))  # ((b n) nh/2 t dh)
        out_s = rearrange(out_s, "(b t) nh n dh -> b t n (nh dh)", b=b)  # (b t n d/2)
        out_t = rearrange(out_t, "(b n) nh t dh -> b t n (nh dh)", b=b)  # (b t n d/2)
        return self.proj_drop(self.proj(torch.cat([out_s, out_t], dim=-1)))  # (b t n d)


def rotary_tables(n: int, dh: int, base: float = 10000.0, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables (n dh) of 1D rotary position embeddings (RoPE; Su et al. 2021, RoFormer, arXiv 2104.09864).

    Pair ``i`` of the ``dh`` channels (channels ``i`` and ``i + dh/2``, the "rotate half" layout of GPT-NeoX and
    Open-Sora's temporal RoPE) turns by ``pos · base^(−2i/dh)`` radians at position ``pos`` = 0..n−1.

    Raises:
        ValueError: ``dh`` is odd.
    """
    if dh % 2:
        raise ValueError(f"rotary embeddings need an even head dimension, got {dh}")
    inv_freq = base ** (-torch.arange(0, dh, 2, dtype=torch.float32, device=device) / dh)  # (dh/2)
    angles = torch.outer(torch.arange(n, dtype=torch.float32, device=device), inv_freq)  # (n dh/2)
    angles = torch.cat([angles, angles], dim=-1)  # (n dh)
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (... n dh) by the tables of :func:`rotary_tables`: ``x·cos + rotate_half(x)·sin``."""
    first, second = x.chunk(2, dim=-1)
    return x * cos.to(x.dtype) + torch.cat([-second, first], dim=-1) * sin.to(x.dtype)


class RotaryAttention(Attention):
    """:class:`Attention` whose queries and keys carry 1D rotary position embeddings over the sequence axis.

    Used as temporal attention (the sequence is the frames at one patch position), as Open-Sora's STDiT does: the
    attention scores then depend on the frames' offset ``m − n`` only, so temporal attention knows frame order without
    any embedding added to the tokens. It has no parameters of its own (same ``qkv``/``proj`` as :class:`Attention`,
    same state dict), and with ``proj`` at zero it still outputs zero, so an image model's step-0 identity holds.

    Args:
        rope_base: the RoPE frequency base (10,000 as RoFormer).
        (the others as :class:`Attention`)
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, fused_attn: bool = True, rope_base: float = 10000.0) -> None:
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn)
        self.rope_base = rope_base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over the second axis, with rotary positions 0..n−1 on it.

        Args:
            x: float tensor (b n d).

        Returns:
            Tensor (b n d).
        """
        qkv = rearrange(self.qkv(x), "b n (three nh dh) -> three b nh n dh", three=3, nh=self.num_heads)
        q, k, v = qkv.unbind(0)  # each (b nh n dh)
        cos, sin = rotary_tables(q.shape[-2], q.shape[-1], self.rope_base, q.device)  # each (n dh)
        out = _attend(self, apply_rotary(q, cos, sin), apply_rotary(k, cos, sin), v)  # (b nh n dh)
        out = rearrange(out, "b nh n dh -> b n (nh dh)")
        return self.proj_drop(self.proj(out))  # (b n d)


class WindowedTemporalAttention(Attention):
    """Temporal attention whose keys are a ``window × window`` patch neighbourhood in every frame.

    Plain (divided) temporal attention lets the token at patch (i, j) of frame t read only patch (i, j) of the other
    frames (TimeSformer, Bertasius et al. 2021, arXiv 2102.05095, Sec. 3): a stroke that moves by a patch between two
    frames is then at another position and out of reach. Here the token at (t, i, j) attends to every frame t' at
    patches (i + di, j + dj), |di|, |dj| <= window // 2, so motion of up to ``window // 2`` patches a frame (in
    either direction) is within one layer's reach. This is the local spatio-temporal neighbourhood of Video Swin
    (Liu et al. 2022, arXiv 2106.13230: 3D windows; here centred on each query, as neighbourhood attention,
    Hassani et al. 2023, arXiv 2204.07143) restricted to a temporal sublayer. Neighbours outside the frame are masked
    out (not zero-padded), so border tokens attend to fewer keys. ``window = 1`` is plain temporal attention.

    Same parameters as :class:`Attention` (``qkv``, ``proj``; the same state dict), so a checkpoint with plain
    temporal attention loads; with ``proj`` at zero it outputs zero, keeping an image model's step-0 identity.

    Args:
        window: odd neighbourhood side in patches (1, 3, 5, ...).
        rope: rotary frame positions on queries and keys (as :class:`RotaryAttention`; by frame index, the same for
            every neighbour of a frame).
        rope_base: the RoPE frequency base.
        (the others as :class:`Attention`)

    Raises:
        ValueError: ``window`` is not a positive odd integer, or ``dim`` is not divisible by ``num_heads``.
    """

    def __init__(self, dim: int, num_heads: int = 8, window: int = 3, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, fused_attn: bool = True, rope: bool = False,
                 rope_base: float = 10000.0) -> None:
        if window < 1 or window % 2 == 0:
            raise ValueError(f"temporal_window={window} must be a positive odd number of patches")
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn)
        self.window = window
        self.rope = rope
        self.rope_base = rope_base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over frames and a patch neighbourhood.

        Args:
            x: float tensor (b t gh gw d): tokens on their frame and patch grid.

        Returns:
            Tensor (b t gh gw d).
        """
        b, t, gh, gw, _ = x.shape
        w, r = self.window, self.window // 2
        qkv = rearrange(self.qkv(x), "b t gh gw (three nh dh) -> three b nh t gh gw dh", three=3, nh=self.num_heads)
        q, k, v = qkv.unbind(0)  # each (b nh t gh gw dh)
        if self.rope:
            cos, sin = rotary_tables(t, q.shape[-1], self.rope_base, q.device)  # each (t dh)
            cos, sin = rearrange(cos, "t dh -> t 1 1 dh"), rearrange(sin, "t dh -> t 1 1 dh")
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        # every query's neighbours: pad the patch grid by r, then take each w x w window (Tensor.unfold)
        k, v = (F.pad(z, (0, 0, r, r, r, r)).unfold(3, w, 1).unfold(4, w, 1) for z in (k, v))  # (b nh t gh gw dh w w)
        k, v = (rearrange(z, "b nh t gh gw dh wi wj -> (b gh gw) nh (t wi wj) dh") for z in (k, v))
        q = rearrange(q, "b nh t gh gw dh -> (b gh gw) nh t dh")
        inside = F.pad(x.new_ones(gh, gw, dtype=torch.bool), (r, r, r, r)).unfold(0, w, 1).unfold(1, w, 1)  # (gh gw w w)
        mask = repeat(inside, "gh gw wi wj -> (b gh gw) 1 1 (t wi wj)", b=b, t=t)  # keys inside the frame
        out = _attend(self, q, k, v, attn_mask=mask)  # ((b gh gw) nh t dh)
        out = rearrange(out, "(b gh gw) nh t dh -> b t gh gw (nh dh)", b=b, gh=gh)
        return self.proj_drop(self.proj(out))  # (b t gh gw d)


class FirstFrameAttention(Attention):
    """Spatial attention in which every frame also reads the first frame: keys and values are the frame's own n
    tokens followed by frame 0's n tokens.

    Plain spatial attention (TimeSformer's, DiT's per frame) lets frame t see only itself, so what frame t draws can
    agree with frame 0 only through the temporal attentions, which (divided) compare one patch position across
    frames. Here each query of frame t reaches every patch of frame 0 by content, wherever the thing has moved.
    This is the sparse-causal / cross-frame attention of Tune-A-Video (Wu et al. 2023, arXiv 2212.11565:
    frame i attends to frames 0 and i−1) and Text2Video-Zero (Khachatryan et al. 2023, arXiv 2303.13439:
    every frame attends to frame 0 only), restricted here to "own frame + frame 0", as ConsistI2V's spatial layers
    (Ren et al. 2024, arXiv 2402.04324).

    Same parameters as :class:`Attention` (``qkv``, ``proj``; the same state dict), so an image model's spatial
    weights load unchanged. Frame 0's keys are its own keys twice, which leaves its softmax unchanged, so frame 0's
    output equals plain spatial attention's (up to rounding), and a one-frame input is plain attention.

    Args:
        (as :class:`Attention`)
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend within each frame and to frame 0.

        Args:
            x: float tensor (b t n d): t frames (or tubelets) of n tokens each.

        Returns:
            Tensor (b t n d).
        """
        t = x.shape[1]
        qkv = rearrange(self.qkv(x), "b t n (three nh dh) -> three b t nh n dh", three=3, nh=self.num_heads)
        q, k, v = qkv.unbind(0)  # each (b t nh n dh)
        k, v = (torch.cat([z, repeat(z[:, 0], "b nh n dh -> b t nh n dh", t=t)], dim=3) for z in (k, v))  # 2n keys
        q, k, v = (rearrange(z, "b t nh m dh -> (b t) nh m dh") for z in (q, k, v))
        out = _attend(self, q, k, v)  # ((b t) nh n dh)
        out = rearrange(out, "(b t) nh n dh -> b t n (nh dh)", t=t)
        return self.proj_drop(self.proj(out))  # (b t n d)


class FirstFrameTemporalAttention(Attention):
    """Temporal attention whose keys are the query's patch position in every frame plus all n patches of frame 0.

    Divided temporal attention compares one patch position across frames (TimeSformer, Bertasius et al. 2021,
    arXiv 2102.05095), so once a thing has moved off a patch, the later frames can no longer read what it looked like
    in frame 0. Here the temporal sublayer also reads every token of frame 0, by content: ConsistI2V's first-frame
    conditioning of the temporal layers (Ren et al. 2024, arXiv 2402.04324, which reads a local window of frame 0;
    here the whole frame). Used with ``model.num_cond_frames=1``, frame 0 is the given frame. Frame 0's token at the
    query's own patch is among both key sets, so it is counted twice (a log 2 bonus to its score), as the loop
    reference in the tests also counts it.

    Same parameters as :class:`Attention` (``qkv``, ``proj``; the same state dict); with ``proj`` at zero it outputs
    zero, so a video model started from an image stage is still the image model at step 0. One softmax runs over
    the t + n keys of each query; frame 0's keys are shared by all n positions, so the scores are two matmuls
    (``q kᵀ`` over frames, and every query against frame 0) rather than one fused call on frame 0's keys and values
    copied to every position. ``fused_attn`` therefore has no effect here; the softmax runs in at least float32.

    Args:
        rope: rotary frame positions (as :class:`RotaryAttention`) on queries and keys; frame 0's keys are at
            position 0.
        rope_base: the RoPE frequency base.
        (the others as :class:`Attention`)
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, fused_attn: bool = True, rope: bool = False,
                 rope_base: float = 10000.0) -> None:
        super().__init__(dim, num_heads, qkv_bias, attn_drop, proj_drop, fused_attn)
        self.rope = rope
        self.rope_base = rope_base

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over frames at each patch position and over frame 0's patches.

        Args:
            x: float tensor (b t n d).

        Returns:
            Tensor (b t n d).
        """
        t, n = x.shape[1:3]
        qkv = rearrange(self.qkv(x), "b t n (three nh dh) -> three b nh n t dh", three=3, nh=self.num_heads)
        q, k, v = qkv.unbind(0)  # each (b nh n t dh)
        if self.rope:
            cos, sin = rotary_tables(t, q.shape[-1], self.rope_base, q.device)  # each (t dh)
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)  # frame 0 at position 0
        q = q * q.shape[-1] ** -0.5
        first_k, first_v = k[:, :, :, 0], v[:, :, :, 0]  # (b nh n dh): frame 0's n tokens
        time_scores = q @ k.transpose(-2, -1)  # (b nh n t t): patch p of every frame
        first_scores = rearrange(q, "b nh n t dh -> b nh (n t) dh") @ first_k.transpose(-2, -1)  # (b nh (n t) n)
        first_scores = rearrange(first_scores, "b nh (n t) m -> b nh n t m", t=t)
        scores = torch.cat([time_scores, first_scores], dim=-1)  # (b nh n t (t+n))
        weights = scores.softmax(dim=-1, dtype=torch.promote_types(q.dtype, torch.float32)).to(q.dtype)
        weights = F.dropout(weights, p=self.attn_drop, training=self.training)
        time_weights, first_weights = weights.split([t, n], dim=-1)
        from_first = rearrange(first_weights, "b nh n t m -> b nh (n t) m") @ first_v  # (b nh (n t) dh)
        out = time_weights @ v + rearrange(from_first, "b nh (n t) dh -> b nh n t dh", t=t)  # (b nh n t dh)
        out = rearrange(out, "b nh n t dh -> b t n (nh dh)")
        return self.proj_drop(self.proj(out))  # (b t n d)
