"""A thin LightningModule that trains a video denoiser over frozen-autoencoder latents (Latte-style latent DDPM).

Training (Ho et al. 2020; Latte, Ma et al. 2024): clean latents ``x_start`` (cached in the batch as ``"latents"``, or
encoded on the fly from ``"video"`` by the frozen autoencoder, posterior mean in both cases, so the two paths agree),
``timesteps ~ U{0..T−1}``, noise from the configured PYoCo prior, ``x_noisy = DDPMScheduler.add_noise(x_start,
noise, timesteps)``, and MSE to ε or v. Labels are replaced by the null label with probability ``label_dropout``
(classifier-free guidance training); with ``conditioning`` naming several label sets (``[digit, direction]``), each
set is dropped on its own. With ``num_cond_frames = k > 0`` the first k frames of ``x_noisy`` are the
clean latents and are left out of the loss (frame-conditioned prediction); with ``cond_frame_dropout`` they are
replaced by zeros (the null frame) with that probability, so the given frames can be guided at sampling time
(InstructPix2Pix's image conditioning dropout, Brooks et al. 2023; Stable Video Diffusion, arXiv 2311.15127).

An EMA copy of the net (``ema``, saved in the checkpoint) is used for ``val/loss`` (the online net's is
``val/loss_raw``), for the samples logged every ``log_every_n_epochs`` and by ``scripts/sample_videos.py``.
"""

from __future__ import annotations

import contextlib
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
from einops import rearrange
from torch import nn

from models.checkpointing import ExactResume
from models.diffusion import labels as label_sets
from models.diffusion.denoising import SAMPLERS, check_scheduler_config, sample_latents, training_target
from models.diffusion.dit import NEW_LABEL_INITS
from models.diffusion.noise import NOISE_PRIORS, sample_noise
from models.diffusion.repa import Alignment, block_output
from models.diffusion.video_io import DEFAULT_FPS, log_videos, to_uint8
from models.optim import lightning_optimizers
from models.run import register_run_kind

TRAINABLE = ("all", "temporal")

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


@register_run_kind("diffusion")
class VideoDiffusion(ExactResume, pl.LightningModule):
    """DDPM training of a class-conditional video denoiser on autoencoder latents.

    Args:
        net: pure-torch denoiser ``(x (b c t h w), timesteps (b,), labels (b,) | None) -> (b c t h w)`` with a
            ``null_label`` attribute (e.g. :class:`models.diffusion.dit.VideoDiT`).
        optimizer: partial ``optimizer(params)`` (Hydra ``_partial_: true``).
        scheduler: partial learning-rate ``scheduler(optimizer, total_steps=...)`` stepped every step, or None.
        noise_scheduler: ``DDPMScheduler`` kwargs (``num_train_timesteps``, ``beta_schedule`` linear |
            squaredcos_cap_v2, ``prediction_type`` epsilon | v_prediction, ...).
        num_classes: classes of the labels; 0 for unconditional training (labels ignored). With ``conditioning``,
            a mapping ``{set: class count}`` with exactly those sets (the net's ``num_classes`` too).
        conditioning: None (the batch's one ``label``, as DiT) or the label sets to condition on, e.g.
            ``["digit", "direction"]``: batch keys ``label_<set>`` (see :class:`data.latents.LatentClipDataset`),
            one embedding table each (:class:`models.diffusion.dit.VideoDiT`), summed.
        init_from: optional checkpoint of an image-stage run (``model.net.layout=space_only``, one frame), or of a
            video-stage run of the same net, which then restarts from its EMA weights (:func:`image_weights`): its EMA
            weights initialise ``net`` and ``ema`` through :func:`models.diffusion.dit.image_to_video_state_dict`
            when training starts (``setup("fit")``, before a resumed run's checkpoint is restored), so the video
            model starts as the image model applied to every frame (Video LDM, AnimateDiff).
        new_label_init: with ``init_from``, the table of a label set the image model lacks: ``"zero"`` (adds nothing
            at step 0) or ``"normal"`` (the net's own N(0, ``label_embed_std``) table, so its classes differ from step
            0; see :func:`models.diffusion.dit.image_to_video_state_dict`).
        trainable: ``"all"`` (every parameter of ``net``) or ``"temporal"``: only what a video model adds to an
            image model, the rest frozen (AnimateDiff's motion modules; see
            :meth:`models.diffusion.dit.VideoDiT.freeze_image_layers_`). Meant for ``init_from`` runs.
        num_frames: latent frames t (the autoencoder keeps the frame count).
        latent_channels: c of the latents.
        latent_size: latent side h = w (pixels / autoencoder downsample factor).
        autoencoder_path: stage-1 checkpoint or local diffusers VAE folder (see
            :func:`models.diffusion.autoencoder.load_frame_autoencoder`); loaded lazily, frozen, kept out of this
            module's state dict. Needed for ``"video"`` batches and for decoding samples.
        noise_prior: ``iid | mixed | progressive`` (PYoCo) or ``shared`` (one noise for every frame), used in training
            and sampling alike.
        noise_alpha: the prior's α (None: its default).
        label_dropout: probability in [0, 1) of training a sample with the null label; with several sets, one
            probability for all or ``{set: probability}``.
        num_cond_frames: k clean leading frames given to the model (0: plain generation).
        cond_frame_dropout: probability in [0, 1) of training a clip with its k given frames replaced by zeros (the
            null frame), drawn per clip like ``label_dropout``; > 0 lets sampling guide the given frames
            (``frame_guidance_scale``, see :func:`models.diffusion.denoising.guided_prediction`).
            Needs ``num_cond_frames > 0``.
        ema_decay: EMA decay in [0, 1); Latte uses 0.9999 over ~1e5+ steps, 0.999 suits short CPU runs.
        ema_warmup: ramp the decay up as ``min(ema_decay, (1 + s) / (10 + s))`` (diffusers' ``EMAModel``; see
            :func:`ema_decay_at`); False: the constant decay of DiT/Latte.
        snr_gamma: Min-SNR-γ loss weighting (Hang et al., ICCV 2023): each clip's loss is weighted by
            ``min(SNR, γ) / SNR`` (ε-prediction) or ``min(SNR, γ) / (SNR + 1)`` (v-prediction), with SNR from
            ``diffusers.training_utils.compute_snr``; the paper uses γ = 5. None: the plain mean squared error.
        repa: None, or REPA (Yu et al. 2024, arXiv 2410.06940; :mod:`models.diffusion.repa`): ``{encoder,
            depth, weight, encoder_stage, encoder_dim, projector_dim}`` (:class:`models.diffusion.repa.Alignment`),
            which aligns the tokens after block ``depth`` with a frozen per-frame classifier's features of the clean
            frames (decoded by the autoencoder), the generated frames only, weighted by ``weight``. Needs a net with
            ``blocks`` and ``embed_dim`` and one frame a token (``tubelet_size=1``).
        sampling: defaults of :func:`models.diffusion.denoising.sample_latents` (``sampler``,
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
        num_classes: int | Mapping[str, int],
        num_frames: int,
        latent_channels: int,
        latent_size: int,
        autoencoder_path: str | None = None,
        noise_prior: str = "iid",
        noise_alpha: float | None = None,
        label_dropout: float | Mapping[str, float] = 0.1,
        conditioning: list[str] | None = None,
        init_from: str | None = None,
        new_label_init: str = "zero",
        trainable: str = "all",
        num_cond_frames: int = 0,
        cond_frame_dropout: float = 0.0,
        ema_decay: float = 0.999,
        ema_warmup: bool = True,
        snr_gamma: float | None = None,
        repa: Mapping[str, Any] | None = None,
        sampling: Mapping[str, Any] | None = None,
        num_log_samples: int = 8,
        log_every_n_epochs: int = 1,
        val_seed: int = 0,
        fps: int = DEFAULT_FPS,
        compile: bool = False,
    ) -> None:
        super().__init__()
        # plain containers (not Hydra's DictConfig), so checkpoints load with torch.load(weights_only=True)
        num_classes = {str(k): int(v) for k, v in num_classes.items()} if isinstance(num_classes, Mapping) \
            else int(num_classes)
        if isinstance(label_dropout, Mapping):
            label_dropout = {str(k): float(v) for k, v in label_dropout.items()}
        noise_scheduler = check_scheduler_config(noise_scheduler)
        if noise_prior not in NOISE_PRIORS:
            raise ValueError(f"model.noise_prior={noise_prior!r} must be one of {NOISE_PRIORS}")
        dropouts = label_dropout.values() if isinstance(label_dropout, Mapping) else [label_dropout]
        if not all(0 <= p < 1 for p in dropouts):
            raise ValueError(f"model.label_dropout={label_dropout} must be in [0, 1)")
        if conditioning is not None:
            conditioning = [str(name) for name in conditioning]
            sizes = dict(num_classes) if isinstance(num_classes, Mapping) else {}
            if not conditioning or sorted(sizes) != sorted(conditioning):
                raise ValueError(f"model.conditioning={conditioning} needs model.num_classes to give a class count for "
                                 f"exactly those sets, e.g. {{digit: 10, direction: 8}}; got {num_classes}")
            if getattr(net, "null_label", None) != sizes:
                raise ValueError(f"model.conditioning={conditioning} with class counts {sizes}, but the net's label "
                                 f"tables are {getattr(net, 'num_classes', None)} (set model.net.num_classes)")
        elif isinstance(num_classes, Mapping):
            raise ValueError(f"model.num_classes={dict(num_classes)} is per label set: name the sets in "
                             "model.conditioning")
        if new_label_init not in NEW_LABEL_INITS:
            raise ValueError(f"model.new_label_init={new_label_init!r} must be one of {NEW_LABEL_INITS}")
        if trainable not in TRAINABLE:
            raise ValueError(f"model.trainable={trainable!r} must be one of {TRAINABLE}")
        if not 0 <= num_cond_frames < num_frames:
            raise ValueError(f"model.num_cond_frames={num_cond_frames} must be in [0, num_frames={num_frames})")
        if not 0 <= cond_frame_dropout < 1 or (cond_frame_dropout and not num_cond_frames):
            raise ValueError(f"model.cond_frame_dropout={cond_frame_dropout} must be in [0, 1), and 0 unless "
                             f"model.num_cond_frames > 0 (it is {num_cond_frames})")
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
        alignment = None
        if repa is not None:
            repa = {str(k): v for k, v in repa.items()}
            if not hasattr(net, "blocks") or tubelet != 1:
                raise ValueError("model.repa needs a net with blocks and one frame a token (model.net.tubelet_size=1)")
            try:
                alignment = Alignment(**repa, embed_dim=int(net.embed_dim), num_blocks=len(net.blocks))
            except TypeError as error:
                raise ValueError(f"model.repa={repa}: {error}") from error
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.hparams.noise_scheduler = noise_scheduler
        self.hparams.sampling = sampling
        self.net = net
        self.ema = copy.deepcopy(net).requires_grad_(False)
        self.repa = alignment
        self._row_masked: set[str] = set()
        if trainable == "temporal":
            if not hasattr(net, "freeze_image_layers_"):
                raise ValueError(f"model.trainable='temporal' needs a net with freeze_image_layers_(), not "
                                 f"{type(net).__name__}")
            try:
                self._row_masked = set(net.freeze_image_layers_())
            except ValueError as error:
                raise ValueError(f"model.trainable='temporal': {error}") from error
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
        noise: torch.Tensor, frames_given: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """MSE between ``net``'s prediction and the ε / v target over the frames after the k conditioning frames.

        Args:
            net: the denoiser.
            x_start: float tensor (b c t h w), clean latents.
            labels: int64 tensor (b,) (null label allowed) or None.
            timesteps: int64 tensor (b,) in [0, num_train_timesteps).
            noise: float tensor (b c t h w) from the noise prior.
            frames_given: bool tensor (b,): False replaces that clip's k given frames by zeros (the null frame of
                ``cond_frame_dropout``); None: every clip's are given.

        Returns:
            Scalar float tensor.
        """
        k = self.hparams.num_cond_frames
        x_noisy = self.train_scheduler.add_noise(x_start, noise, timesteps)  # √ᾱ x_start + √(1−ᾱ) ε
        if k:
            given = x_start[:, :, :k]  # (b c k h w)
            if frames_given is not None:
                given = given * rearrange(frames_given.to(given), "b -> b 1 1 1 1")
            x_noisy = torch.cat([given, x_noisy[:, :, k:]], dim=2)  # clean conditioning frames
        prediction = net(x_noisy, timesteps, labels)  # (b c t h w)
        target = training_target(self.train_scheduler, x_start, noise, timesteps)  # (b c t h w)
        if self.hparams.snr_gamma is None:
            return F.mse_loss(prediction[:, :, k:].float(), target[:, :, k:].float())
        per_clip = (prediction[:, :, k:].float() - target[:, :, k:].float()).square().mean(dim=(1, 2, 3, 4))  # (b,)
        return (min_snr_weights(self.train_scheduler, timesteps, self.hparams.snr_gamma) * per_clip).mean()

    @property
    def label_sizes(self) -> dict[str, int]:
        """Class count of each conditioning set (``{"label": n}`` for a one-set model; n = 0: unconditional)."""
        if self.hparams.conditioning:
            return {name: int(self.hparams.num_classes[name]) for name in self.hparams.conditioning}
        return {"label": int(self.hparams.num_classes)}

    @property
    def conditional(self) -> bool:
        """Whether the model takes labels at all."""
        return bool(self.hparams.conditioning) or int(self.hparams.num_classes) > 0

    def labels_of(self, batch: Mapping[str, torch.Tensor]) -> label_sets.Labels | None:
        """The conditioning labels of a batch: ``label`` (one set), ``{set: label_<set>}`` or None.

        Raises:
            ValueError: a conditioning set the batch does not carry (the message names the cache to rewrite).
        """
        if not self.hparams.conditioning:
            return batch["label"].long() if self.hparams.num_classes > 0 else None
        missing = [name for name in self.hparams.conditioning if f"label_{name}" not in batch]
        if missing:
            raise ValueError(f"model.conditioning={list(self.hparams.conditioning)}: the batch has no {missing} labels; "
                             "write the latent cache with them (scripts/cache_latents.py --label-sets ...)")
        return {name: batch[f"label_{name}"].long() for name in self.hparams.conditioning}

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x_start = self.latents(batch)
        b = x_start.shape[0]
        labels = self.labels_of(batch)
        if labels is not None:
            # CPU draws from the global generator, whose state the checkpoint saves.
            labels = label_sets.drop(labels, self.net.null_label, self.hparams.label_dropout)
        timesteps = torch.randint(0, self.train_scheduler.config.num_train_timesteps, (b,)).to(self.device)
        noise = sample_noise(x_start.shape, self.hparams.noise_prior, self.hparams.noise_alpha).to(x_start)
        frames_given = None
        if self.hparams.cond_frame_dropout:  # drawn on the CPU's global generator too
            frames_given = (torch.rand(b) >= self.hparams.cond_frame_dropout).to(self.device)
        hook = contextlib.nullcontext() if self.repa is None else block_output(self.net.blocks[self.repa.depth - 1])
        with hook as hidden:  # REPA: the tokens after its block
            loss = self.diffusion_loss(self.net, x_start, labels, timesteps, noise, frames_given)
        self.log("train/loss", loss, prog_bar=True)
        if self.repa is None:
            return loss
        k = self.hparams.num_cond_frames  # the generated frames, as the diffusion loss
        with torch.no_grad():
            frames = self.autoencoder.decode(x_start[:, :, k:])  # (b c t-k h w) in [-1, 1]
        align = self.repa(hidden[0][:, k:], frames)
        self.log("train/repa", align, prog_bar=True)
        return loss + self.repa.weight * align

    def _eval_step(self, batch: dict[str, torch.Tensor], batch_idx: int, stage: str) -> None:
        x_start = self.latents(batch)
        labels = self.labels_of(batch)
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
            labels = self.labels_of(batch) if self.conditional else batch["label"].long()
            self._val_reference = (x_start[:n], labels[:n] if torch.is_tensor(labels)
                                   else {name: value[:n] for name, value in labels.items()})

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

    def setup(self, stage: str) -> None:
        # model.init_from: an image stage's (or a video stage's) weights, before Lightning restores a resumed run's
        # checkpoint (setup runs first), so a resumed run continues from its own weights. Loaded once per process.
        if stage == "fit" and self.hparams.init_from and not getattr(self, "_initialised_from", False):
            weights = image_weights(self.hparams.init_from, self.net, self.hparams.new_label_init)
            self.net.load_state_dict(weights, strict=True)
            self.ema.load_state_dict(weights, strict=True)
            self._initialised_from = True
            log.info("initialised net and ema from the EMA weights of %s", self.hparams.init_from)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)  # ExactResume: the RNG state, for an exact resume
        # The net's parameter-free switches (VideoDiT.recipe), so model.init_from can refuse another recipe.
        recipe = getattr(self.net, "recipe", None)
        if recipe is not None:
            checkpoint["net_recipe"] = dict(recipe)

    def on_train_start(self) -> None:
        self._ema_step = self.trainer.global_step

    def parameter_groups(self) -> list[dict]:
        """The optimizer's parameter groups: every trainable parameter of ``net``; with ``trainable="temporal"``
        the row-masked adaLN linears get a group of their own without weight decay, so their frozen rows stay
        exactly as they are (a decoupled decay would shrink them with a zero gradient)."""
        named = [(name, p) for name, p in self.net.named_parameters() if p.requires_grad]
        groups = [{"params": [p for name, p in named if name not in self._row_masked]}]
        if self.repa is not None:  # REPA's projector trains with the net
            groups[0]["params"] += list(self.repa.parameters())
        if self._row_masked:
            groups.append({"params": [p for name, p in named if name in self._row_masked], "weight_decay": 0.0})
        return groups

    def configure_optimizers(self):
        params = self.parameter_groups()
        return lightning_optimizers(self.optimizer_factory, self.scheduler_factory, params,
                                    self.trainer.estimated_stepping_batches)

    # ------------------------------------------------------------------------------------------------------------
    # Sampling
    # ------------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        labels: label_sets.Labels | None,
        num_samples: int | None = None,
        cond_latents: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
        frame_guidance_scale: float = 1.0,
        **sampling: Any,
    ) -> torch.Tensor:
        """Sample latent clips with the EMA net (:meth:`generate` without the decoder).

        Args:
            labels: int64 tensor (b,) of class indices, ``{set: int64 (b,)}`` for a multi-set model (a set's null
                label leaves it free), or None (unconditional; give ``num_samples``).
            num_samples: b when ``labels`` is None.
            cond_latents: float tensor (b c k h w), the clean first k = ``num_cond_frames`` latent frames, or None.
            generator: seeds the sampler (see :func:`models.diffusion.denoising.sample_latents`).
            progress: show a progress bar over the steps.
            frame_guidance_scale: guidance over ``cond_latents`` (1: none); needs a model trained with
                ``cond_frame_dropout`` (see :func:`models.diffusion.denoising.guided_prediction`).
            **sampling: overrides of ``hparams.sampling`` (``sampler``, ``num_inference_steps``,
                ``guidance_scale``, ``eta``).

        Returns:
            float32 tensor (b c t h w) of latents, on the model's device; the first k frames are ``cond_latents``.

        Raises:
            ValueError: frame conditioning is configured but ``cond_latents`` is missing, or vice versa; or the
                ``frame_guidance_scale`` is not 1 for a model trained without ``cond_frame_dropout``; or a bad
                sampling option (:func:`models.diffusion.denoising.sample_latents`).
        """
        k = self.hparams.num_cond_frames
        if (cond_latents is None) != (k == 0):
            raise ValueError(f"model.num_cond_frames={k}: cond_latents must be given exactly when k > 0")
        if cond_latents is not None and cond_latents.shape[2] != k:
            raise ValueError(f"cond_latents has {cond_latents.shape[2]} frames, model.num_cond_frames={k}")
        b = label_sets.batch_size_of(labels) if labels is not None else int(num_samples)
        options = {**self.hparams.sampling, **{key: value for key, value in sampling.items() if value is not None}}
        if frame_guidance_scale != 1.0 and not (k and self.hparams.get("cond_frame_dropout")):
            raise ValueError(f"frame_guidance_scale={frame_guidance_scale} guides the given frames, but this model "
                             f"(model.num_cond_frames={k}) was trained without model.cond_frame_dropout, so it never "
                             "saw their null (zero) frame")
        return sample_latents(
            self.ema, self.hparams.noise_scheduler, (b, *self.latent_shape), labels=labels,
            noise_prior=self.hparams.noise_prior, alpha=self.hparams.noise_alpha, cond_latents=cond_latents,
            frame_guidance_scale=frame_guidance_scale, generator=generator, progress=progress, **options,
        )

    @torch.no_grad()
    def generate(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """:meth:`sample` (same arguments and errors), decoded by the autoencoder.

        Returns:
            uint8 tensor (b c t h w) in [0, 255] on the CPU.
        """
        return to_uint8(self.autoencoder.decode(self.sample(*args, **kwargs)))

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
        if k == 0:  # every class (combination) in turn; with frame conditioning the validation clips' own labels
            grid = label_sets.balanced_grid({name: max(size, 1) for name, size in self.label_sizes.items()}, n)
            labels = ({name: torch.tensor(value, device=self.device) for name, value in grid.items()}
                      if self.hparams.conditioning else torch.tensor(grid["label"], device=self.device))
        labels = labels if self.conditional else None
        generator = torch.Generator().manual_seed(self.hparams.val_seed)
        videos = self.generate(labels, num_samples=len(x_start) if k else n,
                               cond_latents=x_start[:, :, :k] if k else None, generator=generator)
        first = labels if labels is None or torch.is_tensor(labels) else labels[self.hparams.conditioning[0]]
        folder = log_videos(self.trainer.loggers, videos, first.tolist() if first is not None else [-1] * len(videos),
                            root_dir=self.trainer.default_root_dir, epoch=self.current_epoch,
                            step=self.global_step, fps=self.hparams.fps)
        log.info("epoch %d samples: %s", self.current_epoch, folder)


def image_weights(path: str | Path, net: nn.Module, new_label_init: str = "zero") -> dict[str, torch.Tensor]:
    """The EMA weights of an image-stage checkpoint, mapped onto ``net`` (see ``model.init_from``); or, from a
    video-stage checkpoint of the same net (one with temporal attentions), its EMA weights as they are: a warm
    restart with a fresh optimizer and learning-rate schedule (SGDR, Loshchilov & Hutter 2017, arXiv 1608.03983),
    which a resumed run (``ckpt_path``) is not, since it keeps the old schedule's length. On that path the
    checkpoint's ``net_recipe`` (``VideoDiT.recipe``: the switches that change what the weights compute without
    changing their names or shapes, such as ``temporal_rope``, ``first_frame_attention``, ``temporal_window``,
    ``temporal_label_sets`` and the order of the label sets) must equal ``net``'s; a checkpoint saved before the
    recipe was recorded is checked by parameter names and shapes only (a warning says so). ``new_label_init`` has
    no effect there.

    Read with ``torch.load(weights_only=True)``: a checkpoint is data, never code.

    Raises:
        FileNotFoundError: the checkpoint does not exist.
        ValueError: it holds no EMA weights, they do not map onto ``net``, or a video-stage checkpoint's recipe
            differs from ``net``'s (the keys or switches are named in the message).
    """
    from models.diffusion.dit import image_to_video_state_dict

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model.init_from={path}: no such checkpoint (train the image stage first)")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    state = checkpoint.get("state_dict", {})
    ema = {key[len("ema."):]: value for key, value in state.items() if key.startswith("ema.")}
    if not ema:
        raise ValueError(f"model.init_from={path}: no 'ema.*' weights; is it a stage-2 checkpoint of train.py?")
    if any(".temporal_attn." in key for key in ema):  # a video-stage run: continue from its EMA weights as they are
        own = net.state_dict()
        misfits = sorted(key for key in set(own) | set(ema)
                         if key not in own or key not in ema or own[key].shape != ema[key].shape)
        if misfits:
            raise ValueError(f"model.init_from={path}: a video-stage checkpoint whose weights do not fit this net "
                             f"(missing, extra or another shape): {misfits[:5]}")
        saved, recipe = checkpoint.get("net_recipe"), getattr(net, "recipe", None)
        if saved is None or recipe is None:
            log.warning("model.init_from=%s: no recorded net recipe; only parameter names and shapes were checked",
                        path)
        else:
            # A switch added to the recipe after the checkpoint was saved is unknown there, not different.
            differ = sorted(key for key in set(saved) & set(recipe) if saved[key] != recipe[key])
            if set(recipe) - set(saved):
                log.warning("model.init_from=%s: the checkpoint's recipe predates %s; not compared", path,
                            sorted(set(recipe) - set(saved)))
            if differ:
                raise ValueError(f"model.init_from={path}: a video-stage checkpoint of another recipe; "
                                 + ", ".join(f"model.net {key}: {saved[key]!r} there, {recipe[key]!r} here"
                                             for key in differ))
        return {key: value.clone() for key, value in ema.items()}
    try:
        return image_to_video_state_dict(ema, net, new_label_init)
    except ValueError as error:
        raise ValueError(f"model.init_from={path}: {error}") from error
