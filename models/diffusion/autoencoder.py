"""A per-frame KL autoencoder (diffusers ``AutoencoderKL``, the SD VAE architecture) for video latent diffusion.

Frames are encoded one by one, as Latte does with the SD VAE (Ma et al. 2024, github.com/Vchitect/Latte): a clip (b c t h w) is folded into a
batch of frames ((b t) c h w), encoded, and unfolded into latents (b c_lat t h' w') with h' = h / downsample_factor.

Latents handed to a diffusion model are ``(z - shift_factor) * scaling_factor``, z being the posterior mean (or a
sample) of the encoder's diagonal Gaussian. ``scaling_factor`` makes them roughly unit-variance (Rombach et al. 2022,
"High-Resolution Image Synthesis with Latent Diffusion Models", §4.3.2 and D.1): for the SD VAE it is 0.18215; for
our own autoencoder :class:`models.diffusion.autoencoder_module.AutoencoderModule` estimates it as
1 / std(posterior means) while training and stores it in the checkpoint (the ``latent_scale`` buffer).
``shift_factor`` is 0 except for foreign VAEs whose diffusers config sets one (SD3/Flux style).

:func:`load_frame_autoencoder` returns a frozen model from either a checkpoint of ours or a local diffusers folder.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from einops import rearrange
from torch import nn


class FrameAutoencoder(nn.Module):
    """``AutoencoderKL`` applied to every frame of a clip, with the latent scaling of latent diffusion.

    Args:
        in_channels: image channels of the input frames.
        out_channels: image channels of the decoded frames.
        block_out_channels: channels of each encoder (and, mirrored, decoder) resolution level; every level but
            the last halves the side, so ``downsample_factor = 2 ** (len(block_out_channels) - 1)``.
        layers_per_block: ResNet blocks per level.
        latent_channels: channels of the latent (c_lat).
        norm_num_groups: GroupNorm groups; must divide every entry of ``block_out_channels``.
        sample_size: nominal frame side in pixels (recorded in the diffusers config; any size divisible by
            ``downsample_factor`` works).
        scaling_factor: multiplies the latents after encoding (divides them before decoding).
        mid_block_add_attention: self-attention in the middle block at the latent resolution (as in the SD VAE).

    Attributes:
        vae: the wrapped ``diffusers.AutoencoderKL``.
        scaling_factor: float, kept in the persistent buffer ``latent_scale`` so checkpoints carry it.
        shift_factor: float, kept in the persistent buffer ``latent_shift`` (0 for our own autoencoder).
        latent_channels, downsample_factor, in_channels: ints read from the diffusers config.

    Raises:
        ValueError: a size that the architecture cannot take, naming the field.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        block_out_channels: Sequence[int] = (32, 64, 64),
        layers_per_block: int = 1,
        latent_channels: int = 4,
        norm_num_groups: int = 16,
        sample_size: int = 64,
        scaling_factor: float = 1.0,
        mid_block_add_attention: bool = True,
    ) -> None:
        super().__init__()
        block_out_channels = tuple(int(c) for c in block_out_channels)
        if not block_out_channels:
            raise ValueError("block_out_channels=() must list at least one level")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("layers_per_block", layers_per_block), ("latent_channels", latent_channels),
                            ("norm_num_groups", norm_num_groups), ("sample_size", sample_size)):
            if int(value) < 1:
                raise ValueError(f"{name}={value} must be >= 1")
        if any(c % norm_num_groups for c in block_out_channels):
            raise ValueError(f"norm_num_groups={norm_num_groups} does not divide every block_out_channels="
                             f"{list(block_out_channels)}")
        levels = len(block_out_channels)
        vae = AutoencoderKL(
            in_channels=in_channels,
            out_channels=out_channels,
            down_block_types=("DownEncoderBlock2D",) * levels,
            up_block_types=("UpDecoderBlock2D",) * levels,
            block_out_channels=block_out_channels,
            layers_per_block=layers_per_block,
            latent_channels=latent_channels,
            norm_num_groups=norm_num_groups,
            sample_size=sample_size,
            scaling_factor=scaling_factor,
            mid_block_add_attention=mid_block_add_attention,
        )
        self._attach(vae, scaling_factor, 0.0)

    @classmethod
    def from_vae(cls, vae: AutoencoderKL) -> FrameAutoencoder:
        """Wrap an existing ``AutoencoderKL``, taking ``scaling_factor`` and ``shift_factor`` from its config.

        Raises:
            ValueError: the config sets per-channel ``latents_mean``/``latents_std``, which this wrapper does not
                apply.
        """
        if vae.config.get("latents_mean") is not None or vae.config.get("latents_std") is not None:
            raise ValueError("the VAE config sets per-channel latents_mean/latents_std, which FrameAutoencoder does "
                             "not apply; only scaling_factor and shift_factor are supported")
        model = cls.__new__(cls)
        nn.Module.__init__(model)
        model._attach(vae, vae.config.scaling_factor, vae.config.get("shift_factor") or 0.0)
        return model

    def _attach(self, vae: AutoencoderKL, scaling_factor: float, shift_factor: float) -> None:
        self.vae = vae
        self.register_buffer("latent_scale", torch.tensor(float(scaling_factor)))
        self.register_buffer("latent_shift", torch.tensor(float(shift_factor)))

    @property
    def scaling_factor(self) -> float:
        return float(self.latent_scale)

    @scaling_factor.setter
    def scaling_factor(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"scaling_factor={value} must be > 0")
        self.latent_scale.fill_(float(value))

    @property
    def shift_factor(self) -> float:
        return float(self.latent_shift)

    @property
    def in_channels(self) -> int:
        return int(self.vae.config.in_channels)

    @property
    def latent_channels(self) -> int:
        return int(self.vae.config.latent_channels)

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def _check(self, tensor: torch.Tensor, channels: int, name: str, divisible: int) -> None:
        if tensor.ndim != 5 or tensor.shape[1] != channels:
            raise ValueError(f"{name} must be (b c t h w) with c={channels}, got shape {tuple(tensor.shape)}")
        if tensor.shape[-1] % divisible or tensor.shape[-2] % divisible:
            raise ValueError(f"{name} side {tuple(tensor.shape[-2:])} is not divisible by {divisible}")

    def encode(
        self, video: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Encode every frame of a clip to scaled latents.

        Args:
            video: float tensor (b c t h w) in [-1, 1]; h and w divisible by ``downsample_factor`` pixels.
            sample: draw from the posterior instead of taking its mean.
            generator: random source of the posterior sample (ignored when ``sample`` is False).

        Returns:
            Latents (b c_lat t h' w') in the video's dtype, ``(z - shift_factor) * scaling_factor`` with z the
            posterior mean or sample and h' = h / downsample_factor.

        Raises:
            ValueError: not a 5-D tensor with ``in_channels`` channels, or a side not divisible by
                ``downsample_factor``.
        """
        self._check(video, self.in_channels, "video", self.downsample_factor)
        b = video.shape[0]
        frames = rearrange(video, "b c t h w -> (b t) c h w")
        posterior = self.vae.encode(frames).latent_dist
        z = posterior.sample(generator) if sample else posterior.mean  # ((b t) c_lat h' w')
        z = (z - self.latent_shift) * self.latent_scale
        return rearrange(z, "(b t) c h w -> b c t h w", b=b)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Decode scaled latents to frames.

        Args:
            latents: float tensor (b c_lat t h' w'), scaled as :meth:`encode` returns them.

        Returns:
            Video (b c t h w) with h = h' · downsample_factor, nominally in [-1, 1] (not clamped).

        Raises:
            ValueError: not a 5-D tensor with ``latent_channels`` channels.
        """
        self._check(latents, self.latent_channels, "latents", 1)
        b = latents.shape[0]
        z = rearrange(latents, "b c t h w -> (b t) c h w") / self.latent_scale + self.latent_shift
        frames = self.vae.decode(z).sample  # ((b t) c h w)
        return rearrange(frames, "(b t) c h w -> b c t h w", b=b)

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write the VAE as a diffusers folder whose config carries this model's ``scaling_factor``."""
        self.vae.register_to_config(scaling_factor=self.scaling_factor)
        self.vae.save_pretrained(path)


def _from_run_checkpoint(path: Path) -> FrameAutoencoder:
    from models.run import load_run

    run = load_run(path).expect("autoencoder")
    return run.build_net()


def load_frame_autoencoder(path: str | os.PathLike) -> FrameAutoencoder:
    """A frozen autoencoder in eval mode, from a stage-1 checkpoint or a local diffusers VAE folder.

    Args:
        path: either a checkpoint written by ``train.py experiment=mmnist_autoencoder``
            (``<run>/checkpoints/*.ckpt``; the architecture is rebuilt from ``<run>/config.yaml`` and the weights
            read with ``torch.load(weights_only=True)``), or a local folder in diffusers format (``config.json`` +
            weights, e.g. the SD VAE; a pipeline folder with a ``vae/`` subfolder also works), whose config gives
            ``scaling_factor``. Nothing is downloaded.

    Returns:
        The model with ``requires_grad`` off and ``eval()`` set.

    Raises:
        FileNotFoundError: ``path`` does not exist, or the run's ``config.yaml`` / the folder's ``config.json`` is
            missing.
        ValueError: the checkpoint is not a stage-1 autoencoder's, or cannot be read safely.
    """
    path = Path(path)
    if path.is_dir():
        subfolder = None if (path / "config.json").is_file() else "vae"
        if subfolder and not (path / subfolder / "config.json").is_file():
            raise FileNotFoundError(f"{path}: no config.json (or vae/config.json): not a diffusers VAE folder")
        try:
            vae = AutoencoderKL.from_pretrained(path, subfolder=subfolder, local_files_only=True)
        except (OSError, ValueError) as err:
            raise ValueError(f"{path}: cannot load an AutoencoderKL from it ({err})") from err
        model = FrameAutoencoder.from_vae(vae)
    elif path.is_file():
        model = _from_run_checkpoint(path)
    else:
        raise FileNotFoundError(f"autoencoder path {path} does not exist")
    return model.requires_grad_(False).eval()
