"""Video diffusion transformer: DiT (Peebles & Xie 2023) over per-frame patches, with Latte's space-time layouts.

The model follows facebookresearch/DiT ``models.py`` (``TimestepEmbedder``, ``LabelEmbedder``, adaLN-Zero blocks,
``FinalLayer``, ``initialize_weights``) and Latte (Ma et al. 2024, ``models/latte.py``) for video: latents
(b c t h w) are patchified frame by frame into tokens (b t n d), every block is conditioned on ``c`` = timestep
embedding + label embedding, and the output has the input's channels (ε or v; no learned variance).

``layout`` chooses where attention runs (every attention is the project's :class:`models.attention.Attention`):

* ``interleaved`` (Latte variant 1, its released code): block 2i attends over space, block 2i+1 over time.
* ``late_fusion`` (Latte variant 2): the first depth/2 blocks attend over space, the rest over time.
* ``divided`` (Latte variant 3, Open-Sora STDiT, TimeSformer): each block runs spatial attention, then temporal
  attention, then the MLP; each of the three residuals has its own adaLN shift, scale and gate.
* ``split_heads`` (Latte variant 4, ViViT model 4): one attention layer whose q/k/v come from one projection; the
  first nh/2 heads (the first d/2 channels of q, k, v) attend among the n tokens of their frame, the last nh/2
  heads among the t tokens of their patch position; the head outputs are concatenated back to width d (spatial
  heads first) and pass through one shared ``proj``.
* ``joint``: one attention over all t·n tokens of the clip.
* ``space_only``: spatial blocks only, so every frame is denoised independently (the image-model ablation).

``zero_init_temporal`` (Open-Sora) makes the model start as an image model: temporal attentions output zero.

* ``interleaved``, ``late_fusion``, ``divided``: the temporal attention's ``proj`` (weight and bias) is zero and
  *its own adaLN gate starts at 1* (bias 1, weight 0). Zeroing both the gate (adaLN-Zero) and ``proj`` would be a
  saddle where each factor's gradient is proportional to the other, so the temporal branch would never train.
* ``split_heads``: the columns of the shared ``proj`` that read the temporal heads are zero. The gate is shared with
  the spatial heads, which move it off zero, so it stays adaLN-Zero.
* ``joint`` and ``space_only`` have no separate temporal path; the flag changes nothing for them.

Position embeddings: a fixed 2D sin-cos spatial embedding (a buffer, as in DiT/MAE) and a temporal embedding
``none | sincos | learned`` (learned: zero-initialised, as TimeSformer's ``time_embed``), both added to the tokens
once before the first block. Latte adds its temporal embedding before the first temporal block instead; adding it at
the input lets every layout, ``space_only`` included, see the same tokens (``space_only`` with a temporal embedding
knows each frame's index but still never mixes frames; set ``temporal_pos_embed="none"`` for a pure image model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from einops import rearrange
from torch import nn

from models.diffusion.dit_blocks import (
    ConvStem,
    DiTBlock,
    FinalLayer,
    LabelEmbedder,
    TimestepEmbedder,
    block_mixers,
    sincos_1d,
    sincos_2d,
)
from models.grad_checkpoint import run_block
from models.patch_embed import PatchEmbed

LAYOUTS = ("interleaved", "late_fusion", "divided", "split_heads", "joint", "space_only")
TEMPORAL_POS_EMBEDS = ("none", "sincos", "learned")
SEPARATE_TEMPORAL_LAYOUTS = ("divided", "interleaved", "late_fusion")  # layouts with their own temporal attentions
TIMESTEP_INITS = ("dit", "torch")
FIRST_FRAME_ATTENTIONS = ("none", "spatial", "temporal")  # where frames read frame 0 (VideoDiT's docstring)
NEW_LABEL_INITS = ("zero", "normal")  # the table of a label set an image model lacks (image_to_video_state_dict)


class VideoDiT(nn.Module):
    """Video diffusion transformer over latents (b c t h w), conditioned on timesteps and optional class labels.

    Args:
        input_size: latent frame side (h = w), divisible by ``patch_size``.
        num_frames: clip length t (frames); the temporal embedding holds t / tubelet_size entries.
        in_channels: latent channels c; the output has the same.
        patch_size: square patch side (latent pixels).
        tubelet_size: frames per token (ViViT tubelets, Arnab et al. 2021; Sora/Open-Sora temporal patches): the
            patch embedding is a Conv3d over k×p×p tubelets and each token's output holds k frames. 1 (the default)
            is a per-frame token, as in DiT and Latte. A tubelet sees and writes frames in order, so ``space_only``
            with k > 1 is no longer frame-independent.
        embed_dim, depth, num_heads, mlp_ratio: transformer size.
        num_classes: class count; 0 makes an unconditional model (only the null row). Row ``num_classes`` of the
            label table is the null label (``null_label``) used for classifier-free guidance. A mapping
            ``{set: class count}`` (e.g. ``{"digit": 10, "direction": 8}``) conditions on several label sets at
            once: one table per set (``y_embedders[set]``), their rows summed into ``c``, and ``null_label`` is then
            ``{set: class count}`` (see :mod:`models.diffusion.labels`).
        layout: ``interleaved | late_fusion | divided | split_heads | joint | space_only`` (module docstring).
        temporal_pos_embed: ``none | sincos | learned`` (learned starts at zero).
        zero_init_temporal: start temporal attentions at zero output (module docstring).
        fused_attn: SDPA (``True``) or the reference attention.
        label_embed_std: standard deviation of the label table's initial N(0, σ²) rows. DiT's 0.02 makes the
            conditioning vector c = t_emb + y_emb start at ~0.02 per channel; with adaLN-Zero the modulation weights
            W (zero) and c then feed each other's gradients (dL/dW ∝ SiLU(c), dL/dc ∝ W), a slow start in which the
            label is ignored. 1.0 (``nn.Embedding``'s default) starts c at O(1).
        timestep_embed_init: ``"dit"`` (the timestep MLP's weights N(0, 0.02²), as DiT) or ``"torch"`` (PyTorch's
            default ``nn.Linear`` initialisation, an O(1) timestep embedding).
        grad_checkpointing: recompute each block's activations in the backward pass instead of storing them.
        conv_stem_depth: 3×3 conv layers (:class:`ConvStem`, width ``embed_dim // 2``) before patchify; 0: none
            (DiT's linear patchify).
        final_conv: a per-frame 3×3 conv on the output latents (U-ViT, Bao et al. 2023, arXiv 2209.12152),
            initialised to the identity so the model still starts at zero output.
        temporal_rope: rotary frame positions (RoPE, Su et al. 2021, arXiv 2104.09864) in every temporal attention,
            as Open-Sora's STDiT: temporal attention knows frame order from step 0 without adding anything to the
            tokens, so a model started from an image stage is still the image model at step 0 (a zero-initialised
            learned ``temp_embed`` gives the order only as fast as it is learned). No parameters: the state dict is
            unchanged. Only layouts with separate temporal attentions (``divided``, ``interleaved``,
            ``late_fusion``).
        temporal_label_sets: label sets (names of ``num_classes``'s mapping, e.g. ``["direction"]``) that condition
            only the temporal attentions: each block's spatial attention, MLP and the final layer get
            c = t_emb + the other sets' rows, and only the temporal sublayer's (shift, scale, gate) also get these
            sets' rows. A video model started from an image stage then gives its image layers at step 0 exactly the
            conditioning they were trained on, however its new table (e.g. the direction) is initialised, while
            the temporal layers can read it (the motion module's own condition, as AnimateDiff's motion modules
            and Video LDM's temporal layers learn what the frozen image layers do not see). Empty: every set
            reaches every layer (DiT's summed ``c``).
        temporal_window: odd patch count w; > 1 makes every temporal attention read a w × w patch neighbourhood in
            each frame (:class:`models.attention.WindowedTemporalAttention`), so a stroke that moves up to w // 2
            patches a frame stays within reach; plain temporal attention compares only the same patch across frames.
            Same parameters as plain temporal attention (checkpoints load either way; ``model.init_from`` a video
            checkpoint compares it: ``recipe``). Needs a layout with separate temporal attentions.
        first_frame_attention: where frames read frame 0 directly, by content, wherever it has moved since (with
            ``model.num_cond_frames=1`` frame 0 is the given, clean frame). ``"none"``: only through the temporal
            attentions' same-patch comparison (TimeSformer). ``"spatial"``: every spatial attention reads the frame's
            own tokens and frame 0's (:class:`models.attention.FirstFrameAttention`; Tune-A-Video's sparse-causal
            attention, Text2Video-Zero's cross-frame attention); frames then depend on each other even in
            ``space_only``, and an image stage's frozen spatial layers are no longer the image model on frames > 0.
            ``"temporal"``: every temporal attention also reads all of frame 0
            (:class:`models.attention.FirstFrameTemporalAttention`; ConsistI2V's first-frame conditioning), which
            keeps an image stage's step-0 identity (its ``proj`` starts at zero) and trains with
            ``model.trainable=temporal``. No new parameters: checkpoints load whichever is set. ``"spatial"`` needs
            spatial attentions (not ``joint`` or ``split_heads``), ``"temporal"`` separate temporal attentions
            without ``temporal_window``.

    Raises:
        ValueError: an unknown ``layout`` or ``temporal_pos_embed``, or sizes that do not fit (named in the message).
    """

    fsdp_units = (DiTBlock,)  # one FSDP unit per block (models/distributed.py)

    def __init__(
        self,
        input_size: int,
        num_frames: int,
        in_channels: int,
        patch_size: int = 2,
        tubelet_size: int = 1,
        embed_dim: int = 384,
        depth: int = 12,
        num_heads: int = 6,
        mlp_ratio: float = 4.0,
        num_classes: int | Mapping[str, int] = 0,
        layout: str = "divided",
        temporal_pos_embed: str = "sincos",
        zero_init_temporal: bool = True,
        fused_attn: bool = True,
        label_embed_std: float = 0.02,
        timestep_embed_init: str = "dit",
        grad_checkpointing: bool = False,
        conv_stem_depth: int = 0,
        final_conv: bool = False,
        temporal_rope: bool = False,
        temporal_label_sets: Sequence[str] = (),
        temporal_window: int = 1,
        first_frame_attention: str = "none",
    ) -> None:
        super().__init__()
        if first_frame_attention not in FIRST_FRAME_ATTENTIONS:
            raise ValueError(f"first_frame_attention={first_frame_attention!r} is not one of {FIRST_FRAME_ATTENTIONS}")
        if first_frame_attention == "spatial" and layout in ("joint", "split_heads"):
            raise ValueError(f"first_frame_attention='spatial' needs spatial attentions (divided, interleaved, "
                             f"late_fusion, space_only), not layout={layout!r}")
        if first_frame_attention == "temporal" and (layout not in SEPARATE_TEMPORAL_LAYOUTS or temporal_window > 1):
            raise ValueError(f"first_frame_attention='temporal' needs separate temporal attentions (divided, "
                             f"interleaved, late_fusion) without temporal_window; got layout={layout!r}, "
                             f"temporal_window={temporal_window}")
        if temporal_window < 1 or temporal_window % 2 == 0:
            raise ValueError(f"temporal_window={temporal_window} must be a positive odd number of patches")
        if temporal_window > 1 and layout not in SEPARATE_TEMPORAL_LAYOUTS:
            raise ValueError(f"temporal_window={temporal_window} needs separate temporal attentions (divided, "
                             f"interleaved, late_fusion), not layout={layout!r}")
        if temporal_rope and layout not in SEPARATE_TEMPORAL_LAYOUTS:
            raise ValueError(f"temporal_rope=true needs separate temporal attentions (divided, interleaved, "
                             f"late_fusion), not layout={layout!r}")
        if conv_stem_depth < 0:
            raise ValueError(f"conv_stem_depth={conv_stem_depth} must be >= 0")
        if layout not in LAYOUTS:
            raise ValueError(f"layout={layout!r} is not one of {LAYOUTS}")
        if temporal_pos_embed not in TEMPORAL_POS_EMBEDS:
            raise ValueError(f"temporal_pos_embed={temporal_pos_embed!r} is not one of {TEMPORAL_POS_EMBEDS}")
        if input_size % patch_size:
            raise ValueError(f"input_size={input_size} is not divisible by patch_size={patch_size}")
        if timestep_embed_init not in TIMESTEP_INITS:
            raise ValueError(f"timestep_embed_init={timestep_embed_init!r} is not one of {TIMESTEP_INITS}")
        if not label_embed_std > 0:
            raise ValueError(f"label_embed_std={label_embed_std} must be > 0")
        if tubelet_size < 1 or num_frames % tubelet_size:
            raise ValueError(f"num_frames={num_frames} is not divisible by tubelet_size={tubelet_size}")
        label_sets = dict(num_classes) if isinstance(num_classes, Mapping) else None
        counts = list(label_sets.values()) if label_sets is not None else [num_classes]
        if num_frames < 1 or depth < 1 or min(counts, default=-1) < 0:
            raise ValueError(f"need num_frames >= 1, depth >= 1, num_classes >= 0 (and at least one label set); got "
                             f"num_frames={num_frames}, depth={depth}, num_classes={num_classes}")
        temporal_label_sets = tuple(temporal_label_sets or ())
        if temporal_label_sets:
            unknown = sorted(set(temporal_label_sets) - set(label_sets or {}))
            if unknown:
                raise ValueError(f"temporal_label_sets {unknown} are not among the label sets "
                                 f"{sorted(label_sets or {})} of num_classes={num_classes}")
            if layout not in SEPARATE_TEMPORAL_LAYOUTS:
                raise ValueError(f"temporal_label_sets needs separate temporal attentions (divided, interleaved, "
                                 f"late_fusion), not layout={layout!r}")
        if embed_dim % 4:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by 4 (2D sin-cos position embedding)")
        if layout in ("interleaved", "late_fusion") and depth % 2:
            raise ValueError(f"depth={depth} must be even for layout={layout!r} (equal spatial and temporal blocks)")
        self.input_size = input_size
        self.num_frames = num_frames
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.tubelet_size = tubelet_size
        self.num_classes = {k: int(v) for k, v in label_sets.items()} if label_sets is not None else int(num_classes)
        self.null_label = self.num_classes  # the row after the last class, per set
        self.layout = layout
        self.grad_checkpointing = grad_checkpointing
        self.temporal_label_sets = temporal_label_sets
        self.grid_size = (input_size // patch_size, input_size // patch_size)

        stem_width = embed_dim // 2
        self.conv_stem = ConvStem(in_channels, stem_width, conv_stem_depth) if conv_stem_depth else None
        self.x_embedder = PatchEmbed(patch_size, stem_width if conv_stem_depth else in_channels, embed_dim,
                                     tubelet_size)
        self.t_embedder = TimestepEmbedder(embed_dim)
        if label_sets is None:  # one label set: DiT's module name, so single-set checkpoints load unchanged
            self.y_embedder = LabelEmbedder(int(num_classes), embed_dim)
        else:
            self.y_embedders = nn.ModuleDict({name: LabelEmbedder(int(n), embed_dim) for name, n in label_sets.items()})
        self.register_buffer("pos_embed", sincos_2d(embed_dim, self.grid_size)[None], persistent=False)  # (1 n d)
        if temporal_pos_embed == "sincos":
            temp_embed = sincos_1d(embed_dim, torch.arange(num_frames // tubelet_size))[None]  # (1 t' d)
            self.register_buffer("temp_embed", temp_embed, persistent=False)
        elif temporal_pos_embed == "learned":
            self.temp_embed = nn.Parameter(torch.zeros(1, num_frames // tubelet_size, embed_dim))
        else:
            self.temp_embed = None
        self.blocks = nn.ModuleList(
            DiTBlock(embed_dim, num_heads, mlp_ratio, mixers, fused_attn, temporal_rope, temporal_window,
                     self.grid_size, first_frame_attention)
            for mixers in block_mixers(layout, depth)
        )
        self.final_layer = FinalLayer(embed_dim, patch_size, in_channels, tubelet_size)
        self.final_conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1) if final_conv else None
        self.initialize_weights(zero_init_temporal, label_embed_std, timestep_embed_init)
        # The switches that change what the weights compute without changing their names or shapes: saved beside
        # a checkpoint (VideoDiffusion.on_save_checkpoint) so a warm restart (model.init_from) can refuse another
        # recipe. The label sets are kept in order: their order is the class layout of the conditioning.
        self.recipe = {"layout": layout, "tubelet_size": tubelet_size, "temporal_pos_embed": temporal_pos_embed,
                       "temporal_rope": bool(temporal_rope), "temporal_window": int(temporal_window),
                       "temporal_label_sets": list(temporal_label_sets),
                       "first_frame_attention": first_frame_attention,
                       "num_classes": ([[k, v] for k, v in self.num_classes.items()]
                                       if isinstance(self.num_classes, dict) else self.num_classes)}

    @torch.no_grad()
    def initialize_weights(self, zero_init_temporal: bool = True, label_embed_std: float = 0.02,
                           timestep_embed_init: str = "dit") -> None:
        """DiT's initialisation (xavier linears, N(0, 0.02) embeddings, adaLN-Zero, zero output) plus zero temporal;
        ``label_embed_std`` and ``timestep_embed_init`` choose the conditioning embeddings' scale (class docstring)."""

        def _basic_init(module: nn.Module) -> None:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

        self.apply(_basic_init)
        weight = self.x_embedder.proj.weight  # (d c p p) or (d c k p p), initialised like a linear layer
        nn.init.xavier_uniform_(rearrange(weight, "d c ... -> d (c ...)"))
        nn.init.zeros_(self.x_embedder.proj.bias)
        for embedder in self.label_embedders().values():
            nn.init.normal_(embedder.embedding_table.weight, std=label_embed_std)
        if timestep_embed_init == "dit":
            nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
            nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        else:
            for layer in (self.t_embedder.mlp[0], self.t_embedder.mlp[2]):
                layer.reset_parameters()  # PyTorch's default (Kaiming-uniform weights, uniform bias)
        if isinstance(self.temp_embed, nn.Parameter):
            nn.init.zeros_(self.temp_embed)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[-1].weight)
            nn.init.zeros_(block.adaLN_modulation[-1].bias)
            if zero_init_temporal:
                block.zero_init_temporal_()
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].weight)
        nn.init.zeros_(self.final_layer.adaLN_modulation[-1].bias)
        nn.init.zeros_(self.final_layer.linear.weight)
        nn.init.zeros_(self.final_layer.linear.bias)
        if self.final_conv is not None:  # the identity: zero output at step 0, as without it
            nn.init.dirac_(self.final_conv.weight)
            nn.init.zeros_(self.final_conv.bias)

    def label_embedders(self) -> dict[str, LabelEmbedder]:
        """The label tables by set name (``{"label": y_embedder}`` for a single-set model)."""
        if hasattr(self, "y_embedders"):
            return dict(self.y_embedders.items())
        return {"label": self.y_embedder}

    def freeze_image_layers_(self) -> list[str]:
        """Leave trainable only what a video model adds to an image model: AnimateDiff's motion-module training
        (Guo et al. 2023, arXiv 2307.04725, Sec. 4.2: the image layers stay frozen, only the temporal layers learn).

        Trainable afterwards: every temporal attention, ``temp_embed``, the label tables (a new label set starts at
        zero and must learn), and the temporal rows (shift, scale, gate) of each block's adaLN linear. The other
        rows of those linears are shared with the image layers in one ``nn.Linear``; a gradient hook zeroes their
        gradients, so an Adam-type optimizer without weight decay on those linears leaves them exactly unchanged
        (:class:`models.diffusion.diffusion_module.VideoDiffusion` groups them so). Everything else gets
        ``requires_grad=False``.

        Returns:
            Names of the parameters whose gradients are masked row-wise (the blocks' adaLN linears).

        Raises:
            ValueError: the layout has no temporal attention (``space_only``, ``joint``, ``split_heads``).
        """
        blocks = [block for block in self.blocks if "time" in block.mixers]
        if not blocks:
            raise ValueError(f"layout={self.layout!r} has no temporal attention to train alone; use a layout with "
                             "temporal attentions (divided, interleaved, late_fusion)")
        self.requires_grad_(False)
        for embedder in self.label_embedders().values():
            embedder.requires_grad_(True)
        if self.temp_embed is not None and isinstance(self.temp_embed, nn.Parameter):
            self.temp_embed.requires_grad_(True)
        masked = []
        for index, block in enumerate(self.blocks):
            if "time" not in block.mixers:
                continue
            block.temporal_attn.requires_grad_(True)
            linear = block.adaLN_modulation[-1]
            dim = linear.in_features
            first = 3 * block.mixers.index("time") * dim
            mask = torch.zeros(linear.out_features, 1)
            mask[first : first + 3 * dim] = 1.0  # the temporal sublayer's (shift, scale, gate) rows
            for name, param in linear.named_parameters():
                param.requires_grad_(True)
                row_mask = mask if param.ndim == 2 else mask[:, 0]
                param.register_hook(lambda grad, m=row_mask: grad * m.to(grad))
                masked.append(f"blocks.{index}.adaLN_modulation.1.{name}")
        return masked

    def embed_labels(self, labels: torch.Tensor | Mapping[str, torch.Tensor] | None, b: int,
                     device: torch.device, sets: Sequence[str] | None = None) -> torch.Tensor:
        """The summed label embedding (b d); a set missing from ``labels`` (or ``labels=None``) gets its null row.
        ``sets`` (a multi-set model only) sums just those sets' rows; ``None``: every set.

        Raises:
            ValueError: a label tensor of the wrong shape, a dict for a single-set model (or a tensor for a
                multi-set one), or an unknown set name.
        """
        if not hasattr(self, "y_embedders"):
            if labels is None:
                labels = torch.full((b,), self.null_label, dtype=torch.long, device=device)
            if not torch.is_tensor(labels):
                raise ValueError(f"this model has one label set; got labels for {sorted(labels)}")
            if labels.shape != (b,):
                raise ValueError(f"labels has shape {tuple(labels.shape)}, expected ({b},)")
            return self.y_embedder(labels)  # (b d)
        labels = {} if labels is None else labels
        if torch.is_tensor(labels):
            raise ValueError(f"this model is conditioned on label sets {list(self.y_embedders)}: pass a dict")
        unknown = set(labels) - set(self.y_embedders)
        if unknown:
            raise ValueError(f"label sets {sorted(unknown)} are not among the model's {list(self.y_embedders)}")
        out = None
        for name, embedder in self.y_embedders.items():
            if sets is not None and name not in sets:
                continue
            value = labels.get(name)
            if value is None:
                value = torch.full((b,), self.null_label[name], dtype=torch.long, device=device)
            if value.shape != (b,):
                raise ValueError(f"labels[{name!r}] has shape {tuple(value.shape)}, expected ({b},)")
            out = embedder(value) if out is None else out + embedder(value)  # (b d)
        if out is None:  # ``sets`` named none of the model's sets
            return torch.zeros(b, self.pos_embed.shape[-1], device=device, dtype=self.pos_embed.dtype)
        return out

    def forward(
        self, x: torch.Tensor, timesteps: torch.Tensor,
        labels: torch.Tensor | Mapping[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Predict the diffusion target (ε or v) for noisy latents.

        Args:
            x: float tensor (b c t h w), noisy latents with c == in_channels, h == w == input_size and, unless
                ``temporal_pos_embed="none"``, t == num_frames.
            timesteps: tensor (b,) (or a scalar, used for the whole batch), int or float, in scheduler steps.
            labels: long tensor (b,) in [0, num_classes], where ``null_label`` == num_classes means "no class";
                ``None`` means all null. A multi-set model takes ``{set: long tensor (b,)}``; a missing set is null.

        Returns:
            Tensor (b c t h w), same dtype as ``x``.

        Raises:
            ValueError: a shape that does not fit the model (named in the message).
        """
        b, _, t, h, w = x.shape
        if t % self.tubelet_size:
            raise ValueError(f"input has {t} frames, not divisible by tubelet_size={self.tubelet_size}")
        if (h, w) != (self.input_size, self.input_size):
            raise ValueError(f"input frames are {h}x{w} but input_size={self.input_size}")
        if self.temp_embed is not None and t != self.num_frames:
            raise ValueError(f"input has {t} frames but num_frames={self.num_frames}")
        timesteps = torch.as_tensor(timesteps, device=x.device)
        if timesteps.dim() == 0:
            timesteps = timesteps.expand(b)
        if timesteps.shape != (b,):
            raise ValueError(f"timesteps has shape {tuple(timesteps.shape)}, expected ({b},)")

        features = self.conv_stem(x) if self.conv_stem is not None else x  # (b c' t h w)
        tokens, (gh, gw) = self.x_embedder(features)  # (b t' n d), t' = t / tubelet_size
        tokens = tokens + self.pos_embed[:, None]  # (b t' n d)
        if self.temp_embed is not None:
            tokens = tokens + self.temp_embed[:, :, None]  # (b t' n d)
        temporal = self.temporal_label_sets  # the image layers' c lacks them; the temporal sublayers' c adds them
        spatial_sets = [name for name in self.y_embedders if name not in temporal] if temporal else None
        c = self.t_embedder(timesteps) + self.embed_labels(labels, b, x.device, sets=spatial_sets)  # (b d)
        c_temporal = c + self.embed_labels(labels, b, x.device, sets=temporal) if temporal else None  # (b d)
        for block in self.blocks:
            tokens = run_block(block, tokens, c, c_temporal, checkpointing=self.grad_checkpointing)  # (b t' n d)
        out = self.final_layer(tokens, c)  # (b t' n (k p p c))
        p, k = self.patch_size, self.tubelet_size
        out = rearrange(out, "b t (gh gw) (k p1 p2 c) -> b c (t k) (gh p1) (gw p2)",
                        gh=gh, k=k, p1=p, p2=p)  # (b c t h w)
        if self.final_conv is not None:
            out = rearrange(self.final_conv(rearrange(out, "b c t h w -> (b t) c h w")), "(b t) c h w -> b c t h w",
                            b=b)  # (b c t h w)
        return out


def image_to_video_state_dict(
    image_state: Mapping[str, torch.Tensor], video: VideoDiT, new_label_init: str = "zero",
) -> dict[str, torch.Tensor]:
    """Map the weights of an image DiT (``layout="space_only"``, one frame per token) onto a video DiT.

    The video model then starts as the image model applied to every frame (Video LDM, Blattmann et al. 2023,
    arXiv 2304.08818; AnimateDiff, arXiv 2307.04725; Open-Sora 1.0): spatial attention, MLPs, embeddings and the
    final layer are copied; what the image model lacks keeps the video model's own initialisation, which is an
    identity at step 0 when ``zero_init_temporal`` is on (temporal ``proj`` zero) and ``temporal_pos_embed`` is
    ``none`` or ``learned`` (zero). A label set the image model was not conditioned on gets a zero table with
    ``new_label_init="zero"``, so it adds nothing at step 0; but then the loss's gradient is the same for every one
    of its classes until something else in the model depends on them (measured: after 1,500 steps a direction
    table started at zero had no effect on the loss), so ``"normal"`` keeps the video model's own
    N(0, ``label_embed_std``) table instead, at the price of the step-0 identity. Each ``divided`` block's adaLN rows are (space, time, MLP) × (shift, scale, gate); the
    image block's are (space, MLP), so its rows are split around the video model's own temporal rows.

    Args:
        image_state: the image model's state dict (``VideoDiT`` keys, no prefix).
        video: the video model to fill (``layout`` ``divided`` or ``space_only``; its patch size, width, depth and
            heads equal the image model's).
        new_label_init: ``"zero"`` or ``"normal"``, the table of a label set the image model lacks (see above).

    Returns:
        A complete state dict for ``video`` (load it with ``strict=True``).

    Raises:
        ValueError: another layout, a bad ``new_label_init``, or keys or shapes that do not line up (named in the
            message), e.g. an image model of another size or one with temporal layers.
    """
    if new_label_init not in NEW_LABEL_INITS:
        raise ValueError(f"new_label_init={new_label_init!r} must be one of {NEW_LABEL_INITS}")
    if video.layout not in ("divided", "space_only"):
        raise ValueError(f"image weights map onto layout 'divided' or 'space_only', not {video.layout!r}")
    if any(".temporal_attn." in key for key in image_state):
        raise ValueError("the image state dict has temporal attention layers: train the image stage with "
                         "model.net.layout=space_only")
    target = video.state_dict()
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    dim = video.pos_embed.shape[-1]
    for key, value in target.items():
        source = key
        if key.startswith("y_embedders.") and key not in image_state and "y_embedder.embedding_table.weight" in \
                image_state and len(video.label_embedders()) == 1:
            source = "y_embedder.embedding_table.weight"  # a one-set image model, named as DiT
        if ".temporal_attn." in key or key == "temp_embed":
            out[key] = value.clone()  # the video model's own (zero-output) initialisation
            continue
        if key.startswith("y_embedders.") and source not in image_state:
            # a label set the image model never saw: adds nothing at step 0, or the video model's own N(0, std) table
            out[key] = torch.zeros_like(value) if new_label_init == "zero" else value.clone()
            continue
        if source not in image_state:
            raise ValueError(f"the image state dict has no {source!r} for the video model's {key!r}")
        weight = image_state[source]
        used.add(source)
        if key.endswith("adaLN_modulation.1.weight") or key.endswith("adaLN_modulation.1.bias"):
            if key.startswith("blocks.") and weight.shape[0] == 6 * dim and value.shape[0] == 9 * dim:
                weight = torch.cat([weight[: 3 * dim], value[3 * dim : 6 * dim], weight[3 * dim :]])  # space|time|mlp
        if weight.shape != value.shape:
            raise ValueError(f"{key}: image weight {tuple(weight.shape)} does not fit the video model's "
                             f"{tuple(value.shape)}")
        out[key] = weight.clone()
    unused = sorted(set(image_state) - used - {"temp_embed"})
    if unused:
        raise ValueError(f"image weights with no place in the video model: {unused[:5]}")
    return out
