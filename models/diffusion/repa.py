"""REPA: align a diffusion transformer's hidden tokens with a frozen encoder's features of the clean frames.

Yu et al. 2024, "Representation Alignment for Generation: Training Diffusion Transformers Is Easier Than You Think"
(arXiv 2410.06940; official code github.com/sihyun-yu/REPA): the tokens after an early block of the denoiser,
computed from the noisy input, go through a small MLP projector (three linears with SiLU), and the loss is the
negative cosine similarity between each projected token and the encoder's feature of the same patch of the clean
image, averaged over patches and added to the diffusion loss with weight λ (0.5 in the paper; the official code's
default aligns the tokens after the 8th of SiT-XL's 28 blocks).

Here the encoder is a per-frame image classifier run (``experiment=mmnist_frame_digit``, a timm CNN): every clean
frame (the autoencoder's decoding of the clean latents) is read by it, and one stage's feature map is the target.
Where the encoder's grid and the DiT's token grid differ, the finer of the two is average-pooled to the coarser.
The encoder is only needed in training; a checkpoint samples without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


class Projector(nn.Module):
    """REPA's projector: ``Linear(d, h) → SiLU → Linear(h, h) → SiLU → Linear(h, e)`` on every token.

    Args:
        embed_dim: d, the DiT's token width.
        hidden_dim: h (REPA: 2048 for SiT-XL).
        out_dim: e, the encoder's feature width.
    """

    def __init__(self, embed_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(embed_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim),
                                 nn.SiLU(), nn.Linear(hidden_dim, out_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """float (..., d) -> float (..., e)."""
        return self.mlp(tokens)


def alignment_loss(tokens: torch.Tensor, features: torch.Tensor, projector: nn.Module) -> torch.Tensor:
    """REPA's loss: minus the mean cosine similarity of projected tokens and the encoder's features, patch by patch.

    Args:
        tokens: float (b t n d), the DiT's tokens of t frames on a square grid of n = g·g patches.
        features: float (b t e fh fw), the encoder's features of the same frames (fh = fw).
        projector: maps d to e (:class:`Projector`).

    Returns:
        Scalar float tensor in [-1, 1] (-1: every projected token points the way of its feature).

    Raises:
        ValueError: the frames differ, the token grid is not square, or one grid is not a multiple of the other.
    """
    b, t, n, _ = tokens.shape
    g = round(n ** 0.5)
    if g * g != n:
        raise ValueError(f"REPA needs a square token grid; got n={n} tokens a frame")
    if features.shape[:2] != (b, t) or features.shape[-1] != features.shape[-2]:
        raise ValueError(f"encoder features {tuple(features.shape)} (b t e h w) do not fit tokens "
                         f"{tuple(tokens.shape)} (b t n d)")
    f = features.shape[-1]
    if max(g, f) % min(g, f):
        raise ValueError(f"the token grid ({g}x{g}) and the encoder's ({f}x{f}) must divide one another")
    z = rearrange(projector(tokens), "b t (gh gw) e -> (b t) e gh gw", gh=g)
    y = rearrange(features, "b t e h w -> (b t) e h w").to(z)
    if g > f:
        z = F.adaptive_avg_pool2d(z, f)
    elif f > g:
        y = F.adaptive_avg_pool2d(y, g)
    return -F.cosine_similarity(z, y, dim=1).mean()


class FrameEncoder:
    """A frozen per-frame classifier run as REPA's encoder: one stage's feature map of every frame.

    Args:
        path: a checkpoint or run folder of a per-frame classifier whose net is a
            :class:`models.recognition.frame_classifier.FrameClassifier` (a timm backbone with
            ``forward_intermediates``), e.g. ``experiment=mmnist_frame_digit``.
        stage: index into the backbone's ``feature_info`` (resnet: 0 stem, 1-4 the stages; 3 gives 4 x 4 maps of
            256 channels on 64 px frames).
        device: where it runs.

    Raises:
        FileNotFoundError, ValueError: as :class:`models.recognition.scoring.RecognitionModel`; or the net has no
            timm backbone, or ``stage`` is out of range.
    """

    def __init__(self, path: str | Path, stage: int, device: str | torch.device = "cpu") -> None:
        from models.recognition.scoring import RecognitionModel

        self.model = RecognitionModel(path, device)
        backbone = getattr(self.model.net, "backbone", None)
        if backbone is None or not hasattr(backbone, "forward_intermediates"):
            raise ValueError(f"REPA encoder {path}: needs a per-frame classifier run (a timm backbone, e.g. "
                             f"experiment=mmnist_frame_digit), not {type(self.model.net).__name__}")
        stages = len(backbone.feature_info)
        if not 0 <= stage < stages:
            raise ValueError(f"model.repa.encoder_stage={stage} must be in [0, {stages}) for {path}")
        self.backbone, self.stage = backbone, stage
        self.out_dim = int(backbone.feature_info[stage]["num_chs"])

    @torch.no_grad()
    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        """Features of every frame.

        Args:
            video: float (b c t h w), frames nominally in [-1, 1] (a decoding; clamped).

        Returns:
            float32 (b t e fh fw), with e = :attr:`out_dim`.
        """
        x = self.model.prepare_frames(((video.float() + 1) / 2).clamp(0, 1))  # (b c t h w), normalised
        b = x.shape[0]
        maps = self.backbone.forward_intermediates(rearrange(x, "b c t h w -> (b t) c h w"), indices=[self.stage],
                                                   intermediates_only=True)[0]  # ((b t) e fh fw)
        return rearrange(maps.float(), "(b t) e h w -> b t e h w", b=b)


class Alignment(nn.Module):
    """What REPA adds to a training module: the projector (trained with the denoiser) and the frozen encoder (loaded
    on the first training step, so a checkpoint samples without it).

    Args:
        encoder: the encoder run (:class:`FrameEncoder`'s ``path``).
        depth: align the tokens after this block (1-based; REPA: an early block, 8 of 28 in SiT-XL).
        weight: λ, the loss's weight beside the diffusion loss (REPA: 0.5).
        encoder_stage: the encoder's feature stage (:class:`FrameEncoder`).
        encoder_dim: channels of that stage (resnet10t stage 3: 256); checked when the encoder loads.
        projector_dim: the projector's hidden width (REPA: 2048 for SiT-XL).
        embed_dim: the denoiser's token width.
        num_blocks: the denoiser's depth.

    Raises:
        ValueError: a bad value, naming the ``model.repa`` field.
    """

    def __init__(self, encoder: str, depth: int, embed_dim: int, num_blocks: int, weight: float = 0.5,
                 encoder_stage: int = 3, encoder_dim: int = 256, projector_dim: int = 512) -> None:
        super().__init__()
        if not encoder:
            raise ValueError("model.repa.encoder is not set: a per-frame classifier run (experiment=mmnist_frame_digit)")
        if not 1 <= depth <= num_blocks:
            raise ValueError(f"model.repa.depth={depth} must be in [1, {num_blocks}] (the net's blocks)")
        if not weight > 0:
            raise ValueError(f"model.repa.weight={weight} must be > 0")
        if encoder_dim < 1 or projector_dim < 1:
            raise ValueError(f"model.repa.encoder_dim={encoder_dim} and projector_dim={projector_dim} must be >= 1")
        self.encoder_path, self.depth, self.weight = str(encoder), int(depth), float(weight)
        self.encoder_stage, self.encoder_dim = int(encoder_stage), int(encoder_dim)
        self.projector = Projector(embed_dim, projector_dim, encoder_dim)
        self._encoder: tuple[FrameEncoder] | None = None  # a tuple: not a submodule, not in the state dict

    def encoder(self, device: torch.device) -> FrameEncoder:
        """The frozen encoder, loaded on first use.

        Raises:
            FileNotFoundError, ValueError: as :class:`FrameEncoder`; or its stage has other than ``encoder_dim``
                channels.
        """
        if self._encoder is None:
            encoder = FrameEncoder(self.encoder_path, self.encoder_stage, device)
            if encoder.out_dim != self.encoder_dim:
                raise ValueError(f"model.repa.encoder_dim={self.encoder_dim}, but stage {self.encoder_stage} of "
                                 f"{self.encoder_path} has {encoder.out_dim} channels")
            self._encoder = (encoder,)
        return self._encoder[0]

    def forward(self, tokens: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """The alignment loss (:func:`alignment_loss`, not yet weighted).

        Args:
            tokens: float (b t n d), the tokens after block ``depth`` (one frame a token row).
            frames: float (b c t h w) in [-1, 1], the same clean frames decoded.

        Returns:
            Scalar float tensor in [-1, 1].
        """
        return alignment_loss(tokens, self.encoder(tokens.device)(frames), self.projector)


@contextlib.contextmanager
def block_output(block: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Collect what ``block`` returns while the context is open (a forward hook, removed on exit).

    Yields:
        A list that receives each output tensor of the block, in call order.
    """
    outputs: list[torch.Tensor] = []
    handle = block.register_forward_hook(lambda _module, _args, output: outputs.append(output))
    try:
        yield outputs
    finally:
        handle.remove()


__all__ = ["Alignment", "FrameEncoder", "Projector", "alignment_loss", "block_output"]
