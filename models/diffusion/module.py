"""A thin LightningModule that trains a video denoiser over frozen-autoencoder latents (Latte-style latent DDPM).

Training (Ho et al. 2020; Latte, Ma et al. 2024): clean latents ``x_start`` (cached in the batch as ``"latents"``, or
encoded on the fly from ``"video"`` by the frozen autoencoder, posterior mean in both cases, so the two paths agree),
``timesteps ~ U{0..T−1}``, noise from the configured PYoCo prior, ``x_noisy = DDPMScheduler.add_noise(x_start,
noise, timesteps)``, and MSE to ε or v. Labels are replaced by the null label with probability ``label_dropout``
(classifier-free guidance training). With ``num_cond_frames = k > 0`` the first k frames of ``x_noisy`` are the
clean latents and are left out of the loss (frame-conditioned prediction).

An EMA copy of the net (``ema``, saved in the checkpoint) is used for ``val/loss`` (the online net's is
``val/loss_raw``), for the samples logged every ``log_every_n_epochs`` and by ``scripts/sample_videos.py``.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr
from torch import nn

from models.checkpointing import ExactResume
from models.diffusion.noise import NOISE_PRIORS, sample_noise
from models.diffusion.sampling import SAMPLERS, check_scheduler_config, sample_latents, training_target
from models.diffusion.video_io import DEFAULT_FPS, log_videos, to_uint8
from models.optim import lightning_optimizers

log = logging.getLogger(__name__)


def ema_decay_at(update: int, decay: float, warmup: bool = True) -> float:
    """The decay of the ``update``-th EMA step (1-based): ``min(decay, (1 + s) / (10 + s))`` with s = update − 1.

    This is ``diffusers.training_utils.EMAModel.get_decay`` with its defaults (0 at the first update, a copy; then
    2/11, 3/12, ...), so a short run's EMA is not dominated by its initial weights: with a constant 0.999 they would
    still weigh 0.999^1000 = 37 % after 1,000 steps. ``warmup=False`` gives DiT/Latte's constant decay.

    Args:
        update: 1-based count of EMA updates (the optimizer step just taken).
        decay: the maximum decay in [0, 1).
        warmup: use the warm-up ramp above.
    """
    if not warmup:
        return decay
    step = update - 1
    return 0.0 if step <= 0 else min(decay, (1 + step) / (10 + step))


def min_snr_weights(scheduler: DDPMScheduler, timesteps: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-γ weights (Hang et al., "Efficient Diffusion Training via Min-SNR Weighting Strategy", ICCV 2023).

    Args:
        scheduler: the training scheduler (its ``alphas_cumprod`` and ``prediction_type``).
        timesteps: int64 tensor (b,) in [0, num_train_timesteps).
        gamma: the clamp γ > 0 (5 in the paper).

    Returns:
        float32 tensor (b,): ``min(SNR, γ) / SNR`` for ε-prediction, ``min(SNR, γ) / (SNR + 1)`` for v-prediction,
        with ``SNR = ᾱ / (1 − ᾱ)`` from ``diffusers.training_utils.compute_snr``.
    """
    snr = compute_snr(scheduler, timesteps).float()  # (b,)
    clamped = snr.clamp(max=gamma)
    if scheduler.config.prediction_type == "v_prediction":
        return clamped / (snr + 1)
    return clamped / snr


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, decay: float) -> None:
    """One EMA step ``θ_ema ← decay·θ_ema + (1 − decay)·θ`` for every parameter; buffers are copied.

    The same update as ``diffusers.training_utils.EMAModel.step`` (tested equal, with :func:`ema_decay_at` giving its
    decay). It is kept, rather than ``EMAModel``, because the average here is a whole module: the checkpoint stores
    it as ``ema.*`` next to ``net.*``, and validation and sampling run it as a network (``self.ema(x, t, y)``);
    ``EMAModel`` keeps bare shadow tensors that would have to be copied into a module before every use, and the
    stored runs behind the README's numbers would no longer load.

    Args:
        ema: the averaged copy (same architecture as ``net``).
        net: the trained module.
        decay: in [0, 1]; Latte and DiT use 0.9999.
    """
    ema_params = [p for p in ema.parameters()]
    net_params = [p.detach() for p in net.parameters()]
    torch._foreach_lerp_(ema_params, net_params, 1.0 - decay)  # ema + (1 - decay)·(θ − ema)
    for ema_buffer, buffer in zip(ema.buffers(), net.buffers()):
        ema_buffer.copy_(buffer)


class VideoDiffusion(ExactResume, pl.LightningModule):
    """DDPM training of a class-conditional video denoiser on autoencoder latents.

    Args:
        net: pure-torch denoiser ``(x (b c t h w), timesteps (b,), labels (b,) | None) -> (b c t h w)`` with a
            ``null_label`` attribute (e.g. :class:`models.diffusion.dit.VideoDiT`).
        optimizer: partial ``optimizer(params)`` (Hydra ``_partial_: true``).
        scheduler: partial learning-rate ``scheduler(optimizer, total_steps=...)`` stepped every step, or None.
        noise_scheduler: ``DDPMScheduler`` kwargs (``num_train_timesteps``, ``beta_schedule`` linear |
            squaredcos_cap_v2, ``prediction_type`` epsilon | v_prediction, ...).
        num_classes: classes of the labels; 0 for unconditional training (labels ignored).
        num_frames: latent frames t (the autoencoder keeps the frame count).
        latent_channels: c of the latents.
        latent_size: latent side h = w (pixels / autoencoder downsample factor).
        autoencoder_path: stage-1 checkpoint or local diffusers VAE folder (see
            :func:`models.diffusion.autoencoder.load_frame_autoencoder`); loaded lazily, frozen, kept out of this
            module's state dict. Needed for ``"video"`` batches and for decoding samples.
        noise_prior: ``iid | mixed | progressive`` (PYoCo) or ``shared`` (one noise for every frame), used in training
            and sampling alike.
        noise_alpha: the prior's α (None: its default).
        label_dropout: probability in [0, 1) of training a sample with the null label.
        num_cond_frames: k clean leading frames given to the model (0: plain generation).
        ema_decay: EMA decay in [0, 1); Latte uses 0.9999 over ~1e5+ steps, 0.999 suits short CPU runs.
        ema_warmup: ramp the decay up as ``min(ema_decay, (1 + s) / (10 + s))`` (diffusers' ``EMAModel``; see
            :func:`ema_decay_at`); False: the constant decay of DiT/Latte.
        snr_gamma: Min-SNR-γ loss weighting (Hang et al., ICCV 2023): each clip's loss is weighted by
            ``min(SNR, γ) / SNR`` (ε-prediction) or ``min(SNR, γ) / (SNR + 1)`` (v-prediction), with SNR from
            ``diffusers.training_utils.compute_snr``; the paper uses γ = 5. None: the plain mean squared error.
        sampling: defaults of :func:`models.diffusion.sampling.sample_latents` (``sampler``,
            ``num_inference_steps``, ``guidance_scale``, ``eta``) for logged and scripted samples.
        num_log_samples: clips sampled and logged at the end of a validation epoch (0: none).
        log_every_n_epochs: sample every n-th validation epoch.
        val_seed: seeds the timesteps and noise of ``val/loss`` (identical every epoch) and the logged samples.
        fps: frames per second of written clips.
        compile: compile ``net`` in place.

    Raises:
        ValueError: a bad value, naming the field.
    """

    def __init__(
        self,
        net: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None,
        noise_scheduler: Mapping[str, Any],
        num_classes: int,
        num_frames: int,
        latent_channels: int,
        latent_size: int,
        autoencoder_path: str | None = None,
        noise_prior: str = "iid",
        noise_alpha: float | None = None,
        label_dropout: float = 0.1,
        num_cond_frames: int = 0,
        ema_decay: float = 0.999,
        ema_warmup: bool = True,
        snr_gamma: float | None = None,
        sampling: Mapping[str, Any] | None = None,
        num_log_samples: int = 8,
        log_every_n_epochs: int = 1,
        val_seed: int = 0,
        fps: int = DEFAULT_FPS,
        compile: bool = False,
    ) -> None:
        super().__init__()
        noise_scheduler = check_scheduler_config(noise_scheduler)
        if noise_prior not in NOISE_PRIORS:
            raise ValueError(f"model.noise_prior={noise_prior!r} must be one of {NOISE_PRIORS}")
        if not 0 <= label_dropout < 1:
            raise ValueError(f"model.label_dropout={label_dropout} must be in [0, 1)")
        if not 0 <= num_cond_frames < num_frames:
            raise ValueError(f"model.num_cond_frames={num_cond_frames} must be in [0, num_frames={num_frames})")
        tubelet = int(getattr(net, "tubelet_size", 1))
        if num_cond_frames % tubelet:
            raise ValueError(f"model.num_cond_frames={num_cond_frames} is not divisible by model.net.tubelet_size="
                             f"{tubelet}: a token would mix given and generated frames")
        if not 0 <= ema_decay < 1:
            raise ValueError(f"model.ema_decay={ema_decay} must be in [0, 1)")
        if snr_gamma is not None and not snr_gamma > 0:
            raise ValueError(f"model.snr_gamma={snr_gamma} must be > 0 or null")
        if log_every_n_epochs < 1 or num_log_samples < 0:
            raise ValueError(f"model.log_every_n_epochs={log_every_n_epochs} must be >= 1 and "
                             f"model.num_log_samples={num_log_samples} >= 0")
        sampling = {"sampler": "ddim", "num_inference_steps": 50, "guidance_scale": 1.0, "eta": None,
                    **(sampling or {})}
        if sampling["sampler"] not in SAMPLERS:
            raise ValueError(f"model.sampling.sampler={sampling['sampler']!r} must be one of {SAMPLERS}")
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.hparams.noise_scheduler = noise_scheduler
        self.hparams.sampling = sampling
        self.net = net
        self.ema = copy.deepcopy(net).requires_grad_(False)
        if compile:
            self.net.compile()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.train_scheduler = DDPMScheduler.from_config(noise_scheduler)
        self.latent_shape = (latent_channels, num_frames, latent_size, latent_size)
        self._autoencoder = None  # see the ``autoencoder`` property
        self._val_reference: tuple[torch.Tensor, torch.Tensor] | None = None
        self._ema_step = -1

    # ------------------------------------------------------------------------------------------------------------
    # Latents
    # ------------------------------------------------------------------------------------------------------------
    @property
    def autoencoder(self) -> nn.Module:
        """The frozen autoencoder, loaded on first use and moved to this module's device.

        Kept in a tuple so that ``nn.Module`` does not register it: its weights stay out of this module's state
        dict, optimizer and ``.train()`` calls.

        Raises:
            ValueError: ``autoencoder_path`` is not set.
        """
        if self._autoencoder is None:
            path = self.hparams.autoencoder_path
            if not path:
                raise ValueError("model.autoencoder_path=None: batches of 'video' and decoding samples need the "
                                 "stage-1 autoencoder")
            from models.diffusion.autoencoder import load_frame_autoencoder

            self._autoencoder = (load_frame_autoencoder(Path(path)),)
        autoencoder = self._autoencoder[0]
        return autoencoder.to(self.device)

    def latents(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Clean latents (b c t h w) of a batch: ``batch["latents"]``, or ``batch["video"]`` (in [-1, 1]) encoded.

        Raises:
            ValueError: the latents do not have the configured shape.
        """
        if "latents" in batch:
            x_start = batch["latents"].float()
        else:
            with torch.no_grad():
                x_start = self.autoencoder.encode(batch["video"].float(), sample=False)
        if tuple(x_start.shape[1:]) != self.latent_shape:
            raise ValueError(f"latents of shape {tuple(x_start.shape[1:])} (c t h w) do not match "
                             f"model.latent_channels, num_frames, latent_size = {self.latent_shape}")
        return x_start

    # ------------------------------------------------------------------------------------------------------------
    # Loss
    # ------------------------------------------------------------------------------------------------------------
    def diffusion_loss(
        self, net: nn.Module, x_start: torch.Tensor, labels: torch.Tensor | None, timesteps: torch.Tensor,
        noise: torch.Tensor,
    ) -> torch.Tensor:
        """MSE between ``net``'s prediction and the ε / v target over the frames after the k conditioning frames.

        Args:
            net: the denoiser.
            x_start: float tensor (b c t h w), clean latents.
            labels: int64 tensor (b,) (null label allowed) or None.
            timesteps: int64 tensor (b,) in [0, num_train_timesteps).
            noise: float tensor (b c t h w) from the noise prior.

        Returns:
            Scalar float tensor.
        """
        k = self.hparams.num_cond_frames
        x_noisy = self.train_scheduler.add_noise(x_start, noise, timesteps)  # √ᾱ x_start + √(1−ᾱ) ε
        if k:
            x_noisy = torch.cat([x_start[:, :, :k], x_noisy[:, :, k:]], dim=2)  # clean conditioning frames
        prediction = net(x_noisy, timesteps, labels)  # (b c t h w)
        target = training_target(self.train_scheduler, x_start, noise, timesteps)  # (b c t h w)
        if self.hparams.snr_gamma is None:
            return F.mse_loss(prediction[:, :, k:].float(), target[:, :, k:].float())
        per_clip = (prediction[:, :, k:].float() - target[:, :, k:].float()).square().mean(dim=(1, 2, 3, 4))  # (b,)
        return (min_snr_weights(self.train_scheduler, timesteps, self.hparams.snr_gamma) * per_clip).mean()

    def _labels(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor | None:
        return batch["label"].long() if self.hparams.num_classes > 0 else None

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x_start = self.latents(batch)
        b = x_start.shape[0]
        labels = self._labels(batch)
        if labels is not None and self.hparams.label_dropout > 0:
            # CPU draws from the global generator, whose state the checkpoint saves.
            drop = (torch.rand(b) < self.hparams.label_dropout).to(labels.device)
            labels = torch.where(drop, torch.full_like(labels, self.net.null_label), labels)
        timesteps = torch.randint(0, self.train_scheduler.config.num_train_timesteps, (b,)).to(self.device)
        noise = sample_noise(x_start.shape, self.hparams.noise_prior, self.hparams.noise_alpha).to(x_start)
        loss = self.diffusion_loss(self.net, x_start, labels, timesteps, noise)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _eval_step(self, batch: dict[str, torch.Tensor], batch_idx: int, stage: str) -> None:
        x_start = self.latents(batch)
        labels = self._labels(batch)
        # The same timesteps and noise for this batch every epoch, so the loss is comparable across epochs.
        generator = torch.Generator().manual_seed(self.hparams.val_seed + batch_idx)
        timesteps = torch.randint(0, self.train_scheduler.config.num_train_timesteps, (x_start.shape[0],),
                                  generator=generator).to(self.device)
        noise = sample_noise(x_start.shape, self.hparams.noise_prior, self.hparams.noise_alpha,
                             generator=generator).to(x_start)
        self.log(f"{stage}/loss", self.diffusion_loss(self.ema, x_start, labels, timesteps, noise), prog_bar=True,
                 sync_dist=True)
        self.log(f"{stage}/loss_raw", self.diffusion_loss(self.net, x_start, labels, timesteps, noise), sync_dist=True)
        if stage == "val" and batch_idx == 0:
            n = self.hparams.num_log_samples
            self._val_reference = (x_start[:n], batch["label"][:n].long())

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, batch_idx, "test")

    # ------------------------------------------------------------------------------------------------------------
    # EMA, checkpoints, optimizer
    # ------------------------------------------------------------------------------------------------------------
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # One EMA step per optimizer step (global_step counts them; it is restored on resume).
        if self.trainer.global_step != self._ema_step:
            decay = ema_decay_at(self.trainer.global_step, self.hparams.ema_decay, self.hparams.ema_warmup)
            update_ema(self.ema, self.net, decay)
            self._ema_step = self.trainer.global_step

    def on_train_start(self) -> None:
        self._ema_step = self.trainer.global_step

    def configure_optimizers(self):
        params = [p for p in self.net.parameters() if p.requires_grad]
        return lightning_optimizers(self.optimizer_factory, self.scheduler_factory, params,
                                    self.trainer.estimated_stepping_batches)

    # ------------------------------------------------------------------------------------------------------------
    # Sampling
    # ------------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        labels: torch.Tensor | None,
        num_samples: int | None = None,
        cond_latents: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
        **sampling: Any,
    ) -> torch.Tensor:
        """Sample clips with the EMA net and decode them.

        Args:
            labels: int64 tensor (b,) of class indices, or None (unconditional; give ``num_samples``).
            num_samples: b when ``labels`` is None.
            cond_latents: float tensor (b c k h w), the clean first k = ``num_cond_frames`` latent frames, or None.
            generator: seeds the sampler (see :func:`models.diffusion.sampling.sample_latents`).
            progress: show a progress bar over the steps.
            **sampling: overrides of ``hparams.sampling`` (``sampler``, ``num_inference_steps``,
                ``guidance_scale``, ``eta``).

        Returns:
            uint8 tensor (b c t h w) in [0, 255] on the CPU.

        Raises:
            ValueError: frame conditioning is configured but ``cond_latents`` is missing, or vice versa.
        """
        k = self.hparams.num_cond_frames
        if (cond_latents is None) != (k == 0):
            raise ValueError(f"model.num_cond_frames={k}: cond_latents must be given exactly when k > 0")
        if cond_latents is not None and cond_latents.shape[2] != k:
            raise ValueError(f"cond_latents has {cond_latents.shape[2]} frames, model.num_cond_frames={k}")
        b = len(labels) if labels is not None else int(num_samples)
        options = {**self.hparams.sampling, **{key: value for key, value in sampling.items() if value is not None}}
        latents = sample_latents(
            self.ema, self.hparams.noise_scheduler, (b, *self.latent_shape), labels=labels,
            noise_prior=self.hparams.noise_prior, alpha=self.hparams.noise_alpha, cond_latents=cond_latents,
            generator=generator, progress=progress, **options,
        )
        return to_uint8(self.autoencoder.decode(latents))

    def on_validation_epoch_end(self) -> None:
        n = self.hparams.num_log_samples
        if self.trainer.sanity_checking or n == 0 or (self.current_epoch + 1) % self.hparams.log_every_n_epochs:
            return
        if not self.trainer.is_global_zero:  # sample videos are drawn and written once, by rank 0
            return
        if self._val_reference is None or not self.hparams.autoencoder_path:
            log.warning("no validation batch or no model.autoencoder_path: skipping sample logging")
            return
        x_start, labels = self._val_reference
        k = self.hparams.num_cond_frames
        if k == 0:  # every class in turn; with frame conditioning the validation clips' own labels
            labels = torch.arange(n, device=self.device) % max(self.hparams.num_classes, 1)
        labels = labels if self.hparams.num_classes > 0 else None
        generator = torch.Generator().manual_seed(self.hparams.val_seed)
        videos = self.generate(labels, num_samples=len(x_start) if k else n,
                               cond_latents=x_start[:, :, :k] if k else None, generator=generator)
        folder = log_videos(self.trainer.loggers, videos, labels.tolist() if labels is not None else [-1] * len(videos),
                            root_dir=self.trainer.default_root_dir, epoch=self.current_epoch,
                            step=self.global_step, fps=self.hparams.fps)
        log.info("epoch %d samples: %s", self.current_epoch, folder)
