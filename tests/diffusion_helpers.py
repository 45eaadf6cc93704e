"""Shared by the diffusion tests: a tiny frame-mixing denoiser, the beta schedules in closed form, and one call of
the sampler on it."""

from __future__ import annotations

import math

import torch
from torch import nn

from models.diffusion.denoising import sample_latents

SHAPE = (2, 3, 5, 4, 4)  # (b c t h w)
SCHEDULES = {"linear": {"beta_schedule": "linear"}, "cosine": {"beta_schedule": "squaredcos_cap_v2"}}


def closed_form_alphas_cumprod(schedule: str, num_steps: int = 1000) -> torch.Tensor:
    """ᾱ per timestep in float64: DDPM's linear betas 1e-4..0.02 (Ho et al. 2020), or the cosine schedule
    (Nichol & Dhariwal 2021, eq. 17, betas capped at 0.999)."""
    if schedule == "linear":
        betas = torch.linspace(1e-4, 0.02, num_steps, dtype=torch.float64)
    else:
        f = lambda step: math.cos((step / num_steps + 0.008) / 1.008 * math.pi / 2) ** 2
        betas = torch.tensor([min(1 - f(i + 1) / f(i), 0.999) for i in range(num_steps)], dtype=torch.float64)
    return torch.cumprod(1 - betas, dim=0)


class TinyDenoiser(nn.Module):
    """A small denoiser that mixes frames (Conv3d), and depends on timesteps and labels."""

    def __init__(self, channels: int = 3, num_classes: int = 4) -> None:
        super().__init__()
        self.null_label = num_classes
        self.conv = nn.Conv3d(channels, channels, 3, padding=1)
        self.label = nn.Embedding(num_classes + 1, channels)
        self.inputs: list[torch.Tensor] = []

    def forward(self, x, timesteps, labels=None):
        self.inputs.append(x.clone())
        if labels is None:
            labels = torch.full((x.shape[0],), self.null_label, dtype=torch.long)
        scale = torch.cos(timesteps.float() / 700)[:, None, None, None, None]
        return self.conv(x) * scale + self.label(labels)[:, :, None, None, None]


def run_sampler(seed: int, **kwargs) -> torch.Tensor:
    """``sample_latents`` on a fresh TinyDenoiser (or ``net=``), 5 steps of SHAPE, labels 0 and 3; kwargs override."""
    torch.manual_seed(0)
    net = kwargs.pop("net", None) or TinyDenoiser().eval()
    options = dict(scheduler_config={"beta_schedule": "linear"}, shape=SHAPE, labels=torch.tensor([0, 3]),
                   num_inference_steps=5, generator=torch.Generator().manual_seed(seed))
    options.update(kwargs)
    return sample_latents(net, **options)
