"""Video latent diffusion: training targets against closed forms, the sampler against diffusers' DDPM step, frame
conditioning, CFG, EMA, sample files read back, and stage 2 end to end through train.py."""

from __future__ import annotations

import copy
import json

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from omegaconf import OmegaConf
from torch import nn
from PIL import Image

from data.annotations import read_list_file
from data.decoding import read_clip
from data.video_writer import DECODE_TOLERANCE
from models.diffusion.denoising import guided_prediction, sample_latents, training_target
from models.diffusion.diffusion_module import VideoDiffusion, ema_decay_at, update_ema
from models.diffusion.noise import NOISE_PRIORS, frame_correlation, sample_noise
from models.diffusion.video_io import gif_bytes, log_videos, to_uint8, write_clips
from tests.conftest import compose_config

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


class Identity(nn.Module):
    null_label = 0

    def forward(self, x, timesteps, labels=None):
        return x


def make_module(net: nn.Module | None = None, **kwargs) -> VideoDiffusion:
    config = dict(noise_scheduler={"beta_schedule": "linear", "prediction_type": "epsilon"}, num_classes=4,
                  num_frames=SHAPE[2], latent_channels=SHAPE[1], latent_size=SHAPE[3], optimizer=None,
                  scheduler=None, num_log_samples=0)
    config.update(kwargs)
    torch.manual_seed(0)
    return VideoDiffusion(net=net or TinyDenoiser(), **config)


# --------------------------------------------------------------------------------------------------------------------
# Training targets
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prior", NOISE_PRIORS)
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("num_cond_frames", [0, 2])
def test_noised_input_is_the_closed_form_and_conditioning_frames_stay_clean(prior, schedule, num_cond_frames):
    net = TinyDenoiser()
    module = make_module(net, noise_scheduler=SCHEDULES[schedule], noise_prior=prior, num_cond_frames=num_cond_frames)
    generator = torch.Generator().manual_seed(1)
    x_start = torch.randn(SHAPE, generator=generator)
    noise = sample_noise(SHAPE, prior, generator=generator)
    timesteps = torch.tensor([3, 871])
    loss = module.diffusion_loss(net, x_start, torch.tensor([1, 2]), timesteps, noise)

    abar = closed_form_alphas_cumprod(schedule)[timesteps].float()[:, None, None, None, None]
    expected = abar.sqrt() * x_start + (1 - abar).sqrt() * noise  # √ᾱ x + √(1−ᾱ) ε
    seen = net.inputs[-1]
    k = num_cond_frames
    torch.testing.assert_close(seen[:, :, k:], expected[:, :, k:], rtol=1e-5, atol=1e-5)
    assert torch.equal(seen[:, :, :k], x_start[:, :, :k])
    prediction = net(seen, timesteps, torch.tensor([1, 2]))
    torch.testing.assert_close(loss, ((prediction - noise)[:, :, k:] ** 2).mean())  # ε target, k frames left out


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_v_prediction_target_is_the_closed_form(schedule):
    scheduler = DDPMScheduler(prediction_type="v_prediction", **SCHEDULES[schedule])
    generator = torch.Generator().manual_seed(2)
    x_start, noise = torch.randn(SHAPE, generator=generator), torch.randn(SHAPE, generator=generator)
    timesteps = torch.tensor([0, 517])
    abar = closed_form_alphas_cumprod(schedule)[timesteps].float()[:, None, None, None, None]
    expected = abar.sqrt() * noise - (1 - abar).sqrt() * x_start  # v = √ᾱ ε − √(1−ᾱ) x
    torch.testing.assert_close(training_target(scheduler, x_start, noise, timesteps), expected, rtol=1e-5, atol=1e-5)
    eps_scheduler = DDPMScheduler(prediction_type="epsilon", **SCHEDULES[schedule])
    assert torch.equal(training_target(eps_scheduler, x_start, noise, timesteps), noise)


def test_label_dropout_and_bad_values():
    module = make_module(label_dropout=0.5)
    with pytest.raises(ValueError, match="model.noise_scheduler.prediction_type='sample'"):
        make_module(noise_scheduler={"prediction_type": "sample"})
    with pytest.raises(ValueError, match="model.num_cond_frames=5"):
        make_module(num_cond_frames=5)
    with pytest.raises(ValueError, match="model.noise_prior='pink'"):
        make_module(noise_prior="pink")
    batch = {"latents": torch.zeros(64, *SHAPE[1:]), "label": torch.zeros(64, dtype=torch.long)}
    seen = []
    module.diffusion_loss = lambda net, x, labels, timesteps, noise, *given: seen.append(labels) or x.sum()
    module.log = lambda *args, **kwargs: None
    torch.manual_seed(0)
    module.training_step(batch, 0)
    dropped = (seen[0] == module.net.null_label).float().mean()
    assert 0.3 < dropped < 0.7 and set(seen[0].tolist()) == {0, module.net.null_label}


def test_cond_frame_dropout_trains_some_clips_with_zero_given_frames(monkeypatch):
    net = TinyDenoiser()
    module = make_module(net, num_cond_frames=2, cond_frame_dropout=0.2)
    generator = torch.Generator().manual_seed(3)
    x_start, noise = torch.randn(SHAPE, generator=generator), torch.randn(SHAPE, generator=generator)
    timesteps, labels = torch.tensor([5, 700]), torch.tensor([1, 2])
    loss = module.diffusion_loss(net, x_start, labels, timesteps, noise, torch.tensor([True, False]))
    seen = net.inputs[-1]
    assert torch.equal(seen[0, :, :2], x_start[0, :, :2]) and torch.equal(seen[1, :, :2], torch.zeros_like(seen[1, :, :2]))
    reference = make_module(TinyDenoiser(), num_cond_frames=2).diffusion_loss(net, x_start, labels, timesteps, noise)
    assert torch.equal(net.inputs[-1][0], seen[0]) and not torch.equal(loss, reference)  # only clip 1 differs
    torch.testing.assert_close(loss, ((net(seen, timesteps, labels) - noise)[:, :, 2:] ** 2).mean())  # k frames out
    # training_step draws the dropout per clip from the global generator
    batch = {"latents": torch.zeros(64, *SHAPE[1:]), "label": torch.zeros(64, dtype=torch.long)}
    given, draws = [], []
    module.diffusion_loss = lambda net, x, labels, timesteps, noise, frames: given.append(frames) or x.sum()
    module.log = lambda *args, **kwargs: None
    plain = make_module(num_cond_frames=2)
    plain.diffusion_loss, plain.log = module.diffusion_loss, module.log
    rand = torch.rand
    monkeypatch.setattr(torch, "rand", lambda *a, **kw: draws.append(a) or rand(*a, **kw))
    torch.manual_seed(0)
    module.training_step(batch, 0)
    assert given[0].dtype == torch.bool and 0.7 < given[0].float().mean() < 0.9  # True: given, 1 - p of the clips
    with_dropout = len(draws)
    plain.training_step(batch, 0)
    assert given[1] is None and len(draws) == 2 * with_dropout - 1  # no dropout, one draw fewer: older runs'
    # random streams are unchanged
    with pytest.raises(ValueError, match="model.cond_frame_dropout=0.2"):
        make_module(cond_frame_dropout=0.2)  # no frames are given
    with pytest.raises(ValueError, match="model.cond_frame_dropout=1"):
        make_module(num_cond_frames=2, cond_frame_dropout=1)


def test_frame_guidance_needs_a_model_trained_with_cond_frame_dropout():
    cond = torch.randn(1, 3, 2, 4, 4)
    module = make_module(num_cond_frames=2, num_classes=0).eval()
    with pytest.raises(ValueError, match="without model.cond_frame_dropout"):
        module.sample(None, num_samples=1, cond_latents=cond, num_inference_steps=2, frame_guidance_scale=2.0)
    module.hparams.cond_frame_dropout = 0.1
    guided = module.sample(None, num_samples=1, cond_latents=cond, num_inference_steps=2, frame_guidance_scale=2.0,
                           generator=torch.Generator().manual_seed(0))
    plain = module.sample(None, num_samples=1, cond_latents=cond, num_inference_steps=2,
                          generator=torch.Generator().manual_seed(0))
    assert torch.equal(guided[:, :, :2], cond) and not torch.allclose(guided, plain)
    with pytest.raises(ValueError, match="no frames are given"):
        run_sampler(0, frame_guidance_scale=2.0)
    # no labels: plain guidance on the frames, against predictions taken one by one
    net, x, timesteps = TinyDenoiser().eval(), torch.randn(SHAPE), torch.tensor([10, 900])
    x_null = torch.cat([torch.zeros_like(x[:, :, :2]), x[:, :, 2:]], dim=2)
    with torch.no_grad():
        e, e_null = net(x, timesteps, None), net(x_null, timesteps, None)
        torch.testing.assert_close(guided_prediction(net, x, timesteps, None, 1.0, 2.5, 2), e_null + 2.5 * (e - e_null))


def test_ema_update_is_the_closed_form():
    net, ema = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.clone() for p in ema.parameters()]
    update_ema(ema, net, decay=0.9)
    for old, new, param in zip(before, ema.parameters(), net.parameters()):
        torch.testing.assert_close(new, 0.9 * old + 0.1 * param)


def test_ema_decay_warmup_matches_diffusers_ema_model():
    from diffusers.training_utils import EMAModel

    reference = EMAModel(nn.Linear(2, 2).parameters(), decay=0.999)
    for update in (1, 2, 3, 50, 5000):
        assert ema_decay_at(update, 0.999) == pytest.approx(reference.get_decay(update))
    assert ema_decay_at(1, 0.999, warmup=False) == 0.999


def test_ema_updates_equal_diffusers_ema_model_steps():
    from diffusers.training_utils import EMAModel

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    ours = copy.deepcopy(net)
    reference = EMAModel(net.parameters(), decay=0.99)  # its own warm-up schedule, like ema_decay_at
    for update in range(1, 8):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))  # a training step
        update_ema(ours, net, ema_decay_at(update, 0.99))
        reference.step(net.parameters())
    for ema_param, shadow in zip(ours.parameters(), reference.shadow_params):
        torch.testing.assert_close(ema_param, shadow, rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------------------------------------
# Sampler
# --------------------------------------------------------------------------------------------------------------------
def run_sampler(seed: int, **kwargs) -> torch.Tensor:
    torch.manual_seed(0)
    net = kwargs.pop("net", None) or TinyDenoiser().eval()
    options = dict(scheduler_config={"beta_schedule": "linear"}, shape=SHAPE, labels=torch.tensor([0, 3]),
                   num_inference_steps=5, generator=torch.Generator().manual_seed(seed))
    options.update(kwargs)
    return sample_latents(net, **options)


@pytest.mark.parametrize("prior", NOISE_PRIORS)
@pytest.mark.parametrize("sampler, eta", [("ddim", 0.0), ("ddim", 0.5), ("ddpm", None), ("dpmpp_2m", None)])
def test_sampler_is_deterministic_given_the_generator(prior, sampler, eta):
    first = run_sampler(0, noise_prior=prior, sampler=sampler, eta=eta)
    assert torch.equal(first, run_sampler(0, noise_prior=prior, sampler=sampler, eta=eta))
    assert not torch.allclose(first, run_sampler(1, noise_prior=prior, sampler=sampler, eta=eta))
    assert torch.isfinite(first).all()


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("steps", [2, 7, 100])
def test_ddpm_sampler_equals_diffusers_ddpm_steps_with_the_same_iid_noise(prediction_type, schedule, steps):
    config = {"prediction_type": prediction_type, "clip_sample": False, **SCHEDULES[schedule]}
    torch.manual_seed(0)
    net = TinyDenoiser().eval()
    shape = SHAPE
    labels = torch.arange(shape[0])
    ours = sample_latents(net, config, shape, labels, sampler="ddpm", num_inference_steps=steps,
                          generator=torch.Generator().manual_seed(5))
    # reference: the same generator draws the initial latent and, inside DDPMScheduler.step, each step's noise
    scheduler = DDPMScheduler(**config)
    scheduler.set_timesteps(steps)
    generator = torch.Generator().manual_seed(5)
    latents = torch.randn(shape, generator=generator)
    with torch.no_grad():
        for timestep in scheduler.timesteps:
            output = net(latents, timestep.expand(shape[0]), labels)
            latents = scheduler.step(output, timestep, latents, generator=generator).prev_sample
    # A random net is no denoiser: near ᾱ = 0 its x̂₀ = (x − √(1−ᾱ)ε̂)/√ᾱ grows large, and the two algebraically
    # equal updates round differently in float32; hence a relative tolerance.
    torch.testing.assert_close(ours, latents, rtol=1e-3, atol=1e-3 * max(1.0, latents.abs().max().item()))


def test_correlated_noise_is_injected_at_every_ddim_step():
    torch.manual_seed(0)
    net = TinyDenoiser().eval()
    config = {"beta_schedule": "linear", "clip_sample": False}
    ours = sample_latents(net, config, SHAPE, torch.tensor([0, 1]), noise_prior="progressive", sampler="ddim",
                          eta=0.7, num_inference_steps=4, generator=torch.Generator().manual_seed(3))
    scheduler = DDIMScheduler(**config)
    scheduler.set_timesteps(4)
    generator = torch.Generator().manual_seed(3)
    latents = sample_noise(SHAPE, "progressive", generator=generator)
    with torch.no_grad():
        for timestep in scheduler.timesteps:
            output = net(latents, timestep.expand(2), torch.tensor([0, 1]))
            noise = sample_noise(SHAPE, "progressive", generator=generator)
            latents = scheduler.step(output, timestep, latents, eta=0.7, variance_noise=noise).prev_sample
    torch.testing.assert_close(ours, latents)


class GaussianOracle(nn.Module):
    """The exact denoiser for data x₀ ~ N(mean, std²) i.i.d. and noise whose frames correlate as ``prior`` says.

    With x_noisy = √ᾱ x₀ + √(1−ᾱ) ε, frame covariance C of ε and Σ = ᾱ std² I + (1−ᾱ) C (per pixel, over frames):
    E[ε | x_noisy] = √(1−ᾱ) C Σ⁻¹ (x_noisy − √ᾱ mean).
    """

    null_label = 0

    def __init__(self, config: dict, prior: str, mean: float, std: float, num_frames: int) -> None:
        super().__init__()
        self.register_buffer("abar", DDPMScheduler(**config).alphas_cumprod.double())
        lags = range(num_frames)
        self.cov = torch.tensor([[frame_correlation(prior, None, i - j) for j in lags] for i in lags],
                                dtype=torch.float64)  # (t t)
        self.mean, self.std = mean, std

    def forward(self, x, timesteps, labels=None):
        abar = self.abar[timesteps][:, None, None]  # (b 1 1)
        sigma = abar * self.std**2 * torch.eye(len(self.cov), dtype=torch.float64) + (1 - abar) * self.cov
        gain = (1 - abar).sqrt() * self.cov @ torch.linalg.inv(sigma)  # (b t t)
        centred = x.double() - abar.sqrt()[..., None, None] * self.mean
        return torch.einsum("bij,bcjhw->bcihw", gain, centred).float()


def moments(z: torch.Tensor) -> tuple[float, float, float]:
    """Mean, std and the largest |correlation| between two different frames of samples (b c t h w)."""
    frames = z.transpose(0, 2).reshape(z.shape[2], -1)  # (t N)
    corr = torch.corrcoef(frames)
    return z.mean().item(), z.std().item(), corr[~torch.eye(len(corr), dtype=torch.bool)].abs().max().item()


@pytest.mark.parametrize("prior", ("iid", "mixed", "progressive"))  # shared is degenerate: frame differences unnoised
def test_samplers_with_the_exact_denoiser_draw_the_data_distribution(prior):
    """End to end: with the exact denoiser of Gaussian data, both samplers return N(0.5, 0.3²) with independent frames
    (up to the discretisation error of 400 steps: measured std 0.294-0.300, |corr| <= 0.035), for every prior."""
    config = {"beta_schedule": "linear", "clip_sample": False}
    oracle = GaussianOracle(config, prior, mean=0.5, std=0.3, num_frames=4)
    for sampler, eta in (("ddpm", None), ("ddim", 0.0), ("dpmpp_2m", None)):
        z = sample_latents(oracle, config, (64, 1, 4, 8, 8), None, noise_prior=prior, sampler=sampler, eta=eta,
                           num_inference_steps=400, generator=torch.Generator().manual_seed(0))
        mean, std, max_corr = moments(z)
        assert abs(mean - 0.5) < 0.01 and 0.285 < std < 0.31 and max_corr < 0.06, (sampler, mean, std, max_corr)
    if prior != "iid":  # PYoCo: correlated noise at sampling time only makes frames stick together
        iid_oracle = GaussianOracle(config, "iid", mean=0.5, std=0.3, num_frames=4)
        z = sample_latents(iid_oracle, config, (64, 1, 4, 8, 8), None, noise_prior=prior, sampler="ddpm",
                           num_inference_steps=400, generator=torch.Generator().manual_seed(0))
        assert moments(z)[2] > 0.2


def ode_error(sampler: str, schedule: str, steps: int) -> float:
    """Largest |x₀ − closed form| of a deterministic sampler with the exact denoiser of x₀ ~ N(0.5, 0.3²).

    Every marginal of the noised data is Gaussian, so the probability-flow ODE (Song et al. 2021, arXiv 2011.13456)
    is affine and keeps the standardised value: the start x_T at the sampler's first timestep (ᾱ_T) ends at
    0.5 + 0.3·(x_T − √ᾱ_T·0.5) / √(ᾱ_T·0.3² + 1 − ᾱ_T).
    """
    config = {"clip_sample": False, **SCHEDULES[schedule]}
    oracle = GaussianOracle(config, "iid", mean=0.5, std=0.3, num_frames=2)
    shape = (16, 1, 2, 4, 4)
    z = sample_latents(oracle, config, shape, None, sampler=sampler, num_inference_steps=steps,
                       generator=torch.Generator().manual_seed(0))
    start = torch.randn(shape, generator=torch.Generator().manual_seed(0)).double()  # the sampler's x_T
    first = (steps - 1) * (1000 // steps) if sampler == "ddim" else 999  # DDIM: "leading" spacing; DPM: "linspace"
    abar = closed_form_alphas_cumprod(schedule)[first]
    exact = 0.5 + 0.3 * (start - abar.sqrt() * 0.5) / (abar * 0.09 + 1 - abar).sqrt()
    return (z.double() - exact).abs().max().item()


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_ode_samplers_converge_to_the_closed_form_flow_at_their_order(schedule):
    """DDIM (eta = 0) is a first-order solver of the probability-flow ODE, DPM-Solver++(2M) a second-order one (Lu et
    al. 2022, arXiv 2211.01095): doubling the steps from 25 to 50 halves DDIM's error and quarters DPM-Solver++'s
    or better (measured: DDIM 1.9x on both schedules; DPM-Solver++ 4.8x linear, 12x cosine), and at 50 steps
    DPM-Solver++ is the closer (measured 0.024 / 0.0016 against 0.10 / 0.054)."""
    ddim = [ode_error("ddim", schedule, steps) for steps in (25, 50)]
    dpm = [ode_error("dpmpp_2m", schedule, steps) for steps in (25, 50)]
    assert 1.5 < ddim[0] / ddim[1] < 2.6, ddim
    assert dpm[0] / dpm[1] > 3.5, dpm
    assert dpm[1] < 0.03 and dpm[1] < ddim[1] / 2, (dpm, ddim)


def test_guidance_scale_one_is_the_conditional_path_and_s_combines_both():
    torch.manual_seed(0)
    net = TinyDenoiser().eval()
    x, timesteps, labels = torch.randn(SHAPE), torch.tensor([10, 900]), torch.tensor([2, 1])
    with torch.no_grad():
        cond, uncond = net(x, timesteps, labels), net(x, timesteps, None)
        assert torch.equal(guided_prediction(net, x, timesteps, labels, 1.0), cond)
        torch.testing.assert_close(guided_prediction(net, x, timesteps, labels, 3.0), uncond + 3.0 * (cond - uncond))
        torch.testing.assert_close(guided_prediction(net, x, timesteps, labels, 0.0), uncond)
    guided = run_sampler(0, guidance_scale=1.0)
    assert torch.equal(guided, run_sampler(0))
    assert not torch.allclose(guided, run_sampler(0, guidance_scale=4.0))


@pytest.mark.parametrize("sampler, eta", [("ddim", 0.0), ("ddpm", None), ("dpmpp_2m", None)])
def test_frame_conditioning_keeps_the_first_frames_at_every_step(sampler, eta):
    torch.manual_seed(0)
    net = TinyDenoiser().eval()
    cond = torch.randn(SHAPE[0], SHAPE[1], 2, *SHAPE[3:])
    out = run_sampler(0, net=net, sampler=sampler, eta=eta, cond_latents=cond, noise_prior="mixed")
    assert torch.equal(out[:, :, :2], cond)
    assert len(net.inputs) == 5 and all(torch.equal(seen[:, :, :2], cond) for seen in net.inputs)
    unconditioned = run_sampler(0, sampler=sampler, eta=eta, noise_prior="mixed")
    assert not torch.allclose(out[:, :, 2:], unconditioned[:, :, 2:])  # the given frames steer the rest
    with pytest.raises(ValueError, match="cond_latents"):
        run_sampler(0, cond_latents=torch.zeros(2, 3, 5, 4, 4))


def test_sampler_rejects_bad_arguments():
    with pytest.raises(ValueError, match="sampler='euler'"):
        run_sampler(0, sampler="euler")
    with pytest.raises(ValueError, match="eta=0.5"):
        run_sampler(0, sampler="ddpm", eta=0.5)
    with pytest.raises(ValueError, match="eta=0.3 is not used by sampler='dpmpp_2m'"):
        run_sampler(0, sampler="dpmpp_2m", eta=0.3)
    with pytest.raises(ValueError, match="num_inference_steps=0"):
        run_sampler(0, num_inference_steps=0)


# --------------------------------------------------------------------------------------------------------------------
# Sample files and logging
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, tolerance", [(1, DECODE_TOLERANCE), (3, 3)])
def test_written_clips_read_back_with_their_frames_size_values_and_labels(tmp_path, channels, tolerance):
    generator = torch.Generator().manual_seed(0)
    video = torch.rand(3, channels, 6, 16, 32, generator=generator) * 2 - 1  # (b c t h w) in [-1, 1]
    video = torch.nn.functional.avg_pool3d(video, (1, 3, 3), 1, (0, 1, 1))  # smooth content, like decoded samples
    clips = to_uint8(video)
    lines = write_clips(tmp_path, clips, [5, 0, 7])
    (tmp_path / "samples.txt").write_text("\n".join(lines) + "\n")
    samples = read_list_file(tmp_path / "samples.txt", tmp_path)
    assert [s.label for s in samples] == [5, 0, 7]
    for sample, clip in zip(samples, clips):
        decoded = read_clip(sample.path, range(6))  # (3 t h w) uint8
        assert decoded.shape == (3, 6, 16, 32)
        expected = clip.expand(3, -1, -1, -1).int()
        assert (decoded.int() - expected).abs().max() <= tolerance


def test_gif_grid_and_tensorboard_and_csv_logging(tmp_path):
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    videos = to_uint8(torch.rand(3, 1, 4, 8, 8) * 2 - 1)
    gif = Image.open(__import__("io").BytesIO(gif_bytes(videos, nrow=2)))
    assert gif.n_frames == 4 and gif.size == (2 * 10 + 2, 2 * 10 + 2)  # 2x2 grid of 8-px clips, 2-px borders
    tensorboard = TensorBoardLogger(tmp_path / "tb", name=None, version=0)
    folder = log_videos([CSVLogger(tmp_path), tensorboard], videos, [1, 2, 3], tmp_path, epoch=4, step=17)
    tensorboard.experiment.flush()
    assert folder == tmp_path / "samples" / "epoch_004"
    assert [s.label for s in read_list_file(folder / "samples.txt", folder)] == [1, 2, 3]
    assert (folder / "grid.gif").is_file()
    events = EventAccumulator(str(tmp_path / "tb" / "version_0"), size_guidance={"images": 0})
    events.Reload()
    image = events.Images("val/samples")[0]
    assert image.step == 17 and Image.open(__import__("io").BytesIO(image.encoded_image_string)).n_frames == 4


# --------------------------------------------------------------------------------------------------------------------
# Stage 2 end to end
# --------------------------------------------------------------------------------------------------------------------
@pytest.fixture
def dit_config(tiny_mmnist, tiny_autoencoder, tmp_path):
    def make(*overrides: str, output_dir: Path | None = None):
        return compose_config("train", [
            "experiment=mmnist_dit", "data=mmnist_generation", f"data.root={tiny_mmnist}", "data.generate=null",
            "data.num_workers=0",
            "data.batch_size=4", f"model.autoencoder_path={tiny_autoencoder}", "model.net.embed_dim=32",
            "model.net.num_heads=4",
            "model.net.depth=2", "trainer.check_val_every_n_epoch=1", "model.num_log_samples=2", "model.log_every_n_epochs=1",
            "model.sampling.num_inference_steps=2",
            f"paths.output_dir={output_dir or tmp_path / 'run'}", "~callbacks.progress_bar",
            "+trainer.enable_model_summary=false", *overrides,
        ])

    return make


def test_fast_dev_run_of_stage_2_through_train(dit_config, tmp_path):
    from train import train

    metrics = train(dit_config("debug=fast_dev_run", "model.noise_prior=progressive", "model.num_cond_frames=2",
                               "model.noise_scheduler.prediction_type=v_prediction"))
    assert {"train/loss", "val/loss", "val/loss_raw"} <= metrics.keys()
    assert all(np.isfinite(metrics[key]) for key in ("train/loss", "val/loss"))
    samples = read_list_file(tmp_path / "run" / "samples" / "epoch_000" / "samples.txt", tmp_path / "run" / "samples"
                             / "epoch_000")  # frame-conditioned samples of the first validation clips
    assert len(samples) == 2 and read_clip(samples[0].path, range(8)).shape == (3, 8, 64, 64)


def test_cached_latents_give_the_same_loss_as_encoding_on_the_fly(tiny_autoencoder):
    module = make_module(TinyDenoiser(channels=4), num_frames=8, latent_channels=4, latent_size=16,
                         autoencoder_path=str(tiny_autoencoder))
    video = torch.rand(2, 3, 8, 64, 64) * 2 - 1
    latents = module.autoencoder.encode(video)
    assert torch.equal(module.latents({"video": video}), latents)
    generator = torch.Generator().manual_seed(0)
    noise, timesteps = torch.randn(latents.shape, generator=generator), torch.tensor([5, 500])
    labels = torch.tensor([1, 3])
    assert module.diffusion_loss(module.net, module.latents({"latents": latents}), labels, timesteps, noise) == \
        module.diffusion_loss(module.net, module.latents({"video": video}), labels, timesteps, noise)
    with pytest.raises(ValueError, match="latent_channels"):
        module.latents({"latents": latents[:, :3]})
    assert not any(key.startswith("_autoencoder") or "vae" in key for key in module.state_dict())


def test_sample_script_writes_the_ema_model_samples(dit_config, tmp_path):
    from hydra.utils import instantiate

    from scripts import sample_videos

    cfg = dit_config()
    run = tmp_path / "dit_run"
    (run / "checkpoints").mkdir(parents=True)
    OmegaConf.save(cfg, run / "config.yaml", resolve=True)
    module = instantiate(cfg.model)
    with torch.no_grad():  # an EMA net that differs from the online net, so using the wrong one shows
        for param in module.ema.parameters():
            param.add_(0.05 * torch.randn_like(param))
    torch.save({"state_dict": module.state_dict()}, run / "checkpoints" / "best.ckpt")

    out = tmp_path / "samples"
    list_file = sample_videos.generate_to_folder(run / "checkpoints" / "best.ckpt", out, num_samples=3,
                                                 labels=[2, 5], steps=2, seed=7, batch_size=2, progress=False)
    samples = read_list_file(list_file, out)
    assert [s.label for s in samples] == [2, 5, 2]
    gif = Image.open(out / "grid.gif")  # one row per label (2, then 5), 8 tiles of 64 px each, 2-px borders
    assert gif.size == (8 * 66 + 2, 2 * 66 + 2)
    grey = sample_videos.generate_to_folder(run / "checkpoints" / "best.ckpt", tmp_path / "grey", num_samples=1,
                                            labels=[2], steps=2, seed=7, grey=True, progress=False)
    module.eval()
    generator = torch.Generator().manual_seed(7)
    expected = torch.cat([module.generate(torch.tensor([2, 5]), generator=generator, num_inference_steps=2),
                          module.generate(torch.tensor([2]), generator=generator, num_inference_steps=2)])
    for sample, clip in zip(samples, expected):
        decoded = read_clip(sample.path, range(8))
        assert decoded.shape == (3, 8, 64, 64)
        assert (decoded.int() - clip.int()).abs().max() <= 3
    decoded = read_clip(read_list_file(grey, grey.parent)[0].path, range(8))  # (3 t h w), R = G = B
    mean = expected[0].float().mean(dim=0).round()  # (t h w)
    # + 1: the grey clip was sampled alone and ``expected`` in a batch of two, whose float sums differ in the last
    # bits, so their uint8 values may differ by 1 before the grey file's own decoding error (seen with one thread)
    assert torch.equal(decoded[0], decoded[2]) and (decoded[0].float() - mean).abs().max() <= DECODE_TOLERANCE + 1


@pytest.mark.slow
def test_resume_continues_net_and_ema_exactly(dit_config, tmp_path):
    from models.checkpointing import load_state_dict
    from train import train

    # Step-bounded like mmnist_dit (max_epochs=-1): the interrupted run's last.ckpt is written at a training epoch's
    # end, after which Lightning's epoch counter is one ahead; ExactResume keeps the shuffle order of the next epoch.
    common = ("debug=tiny", "trainer.max_epochs=-1", "trainer.max_steps=8", "model.num_log_samples=0",
              "model.noise_prior=mixed")
    full = train(dit_config(*common, output_dir=tmp_path / "full"))
    train(dit_config(*common, "+callbacks.stop._target_=tests.test_train.StopAfterFirstEpoch",
                     output_dir=tmp_path / "first"))
    last = tmp_path / "first" / "checkpoints" / "last.ckpt"
    resumed = train(dit_config(*common, f"ckpt_path={last}", output_dir=tmp_path / "resumed"))
    reference = load_state_dict(tmp_path / "full" / "checkpoints" / "last.ckpt")
    state = load_state_dict(last)
    assert any(key.startswith("ema.") for key in state)
    for name, tensor in state.items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0, msg=lambda m: f"{name}: {m}")
    assert not torch.equal(state["ema.final_layer.linear.weight"], state["net.final_layer.linear.weight"])
    assert resumed["val/loss"] == pytest.approx(full["val/loss"])


def test_eval_py_samples_a_generation_checkpoint_and_scores_it_with_the_metric_library(dit_config, tmp_path,
                                                                                       monkeypatch):
    from hydra.utils import instantiate

    import models.diffusion.generate as generate
    from eval import evaluate
    from models.metrics.evaluate import evaluate_videos
    from tests.conftest import compose_config

    cfg = dit_config()
    run = tmp_path / "dit_run"
    (run / "checkpoints").mkdir(parents=True)
    OmegaConf.save(cfg, run / "config.yaml", resolve=True)
    torch.save({"state_dict": instantiate(cfg.model).state_dict()}, run / "checkpoints" / "best.ckpt")

    calls = []  # what eval.py asks the sampler for
    original = generate.generate_to_folder
    monkeypatch.setattr(generate, "generate_to_folder", lambda *a, **k: calls.append(k) or original(*a, **k))
    eval_cfg = compose_config("eval", [f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", "num_samples=3", "steps=2",
                                       "sampler=dpmpp_2m", f"paths.output_dir={tmp_path / 'eval'}"])
    metrics = evaluate(eval_cfg)
    assert calls[0]["sampler"] == "dpmpp_2m" and calls[0]["steps"] == 2
    samples = read_list_file(metrics["samples"], Path(metrics["samples"]).parent)
    assert len(samples) == 3 and [s.label for s in samples] == [0, 1, 2]
    direct = evaluate_videos(metrics["samples"], groups=["temporal"], progress=False).metrics
    for key in ("temporal_flickering", "warp_error_dis", "motion_smoothness_flowinterp"):
        assert metrics[f"gen/{key}"] == pytest.approx(direct[key], rel=1e-9)
    assert (tmp_path / "eval" / "generation_metrics.md").is_file()


# --------------------------------------------------------------------------------------------------------------------
# Min-SNR weighting, tubelets, time reversal, the motion learning curve
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_min_snr_weights_are_the_closed_form(prediction_type):
    from models.diffusion.diffusion_module import min_snr_weights

    scheduler = DDPMScheduler(prediction_type=prediction_type, **SCHEDULES["linear"])
    timesteps = torch.tensor([0, 40, 300, 999])
    abar = closed_form_alphas_cumprod("linear")[timesteps]
    snr = abar / (1 - abar)
    expected = snr.clamp(max=5.0) / (snr + 1 if prediction_type == "v_prediction" else snr)
    torch.testing.assert_close(min_snr_weights(scheduler, timesteps, 5.0), expected.float(), rtol=1e-5, atol=1e-7)


def test_min_snr_loss_weights_each_clip():
    from models.diffusion.diffusion_module import min_snr_weights

    net = TinyDenoiser()
    module = make_module(net, snr_gamma=5.0)
    plain = make_module(net)
    generator = torch.Generator().manual_seed(3)
    x_start, noise = torch.randn(SHAPE, generator=generator), torch.randn(SHAPE, generator=generator)
    timesteps, labels = torch.tensor([2, 600]), torch.tensor([0, 1])
    per_clip = torch.stack([plain.diffusion_loss(net, x_start[i:i + 1], labels[i:i + 1], timesteps[i:i + 1],
                                                 noise[i:i + 1]) for i in range(2)])
    weights = min_snr_weights(module.train_scheduler, timesteps, 5.0)
    torch.testing.assert_close(module.diffusion_loss(net, x_start, labels, timesteps, noise),
                               (weights * per_clip).mean())
    with pytest.raises(ValueError, match="model.snr_gamma=0"):
        make_module(snr_gamma=0)


def test_frame_conditioning_must_cover_whole_tubelets():
    from models.diffusion.dit import VideoDiT

    net = VideoDiT(input_size=SHAPE[3], num_frames=4, in_channels=SHAPE[1], patch_size=2, tubelet_size=2,
                   embed_dim=16, depth=1, num_heads=2, num_classes=4)
    make_module(net, num_frames=4, num_cond_frames=2)
    with pytest.raises(ValueError, match="num_cond_frames=1 is not divisible by model.net.tubelet_size=2"):
        make_module(net, num_frames=4, num_cond_frames=1)


def write_latent_cache(folder: Path, num_clips: int = 40, classes: list[str] | None = None) -> Path:
    from data.latents import CACHE_FORMAT_VERSION

    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    record = {"latents": torch.randn(num_clips, 4, 8, 16, 16, generator=generator),
              "labels": torch.arange(num_clips) % 8, "paths": [f"{i}.mp4" for i in range(num_clips)],
              "meta": {"format_version": CACHE_FORMAT_VERSION, "downsample_factor": 4}}
    for split in ("train", "val", "test"):
        torch.save(record, folder / f"{split}.pt")
    if classes is not None:
        (folder / "classes.txt").write_text("\n".join(classes) + "\n")
    return folder


def test_time_reversal_plays_clips_backwards_with_the_opposite_label(tmp_path):
    from data.latents import LatentDataModule

    compass = ["E", "NE", "N", "NW", "W", "SW", "S", "SE"]
    datamodule = LatentDataModule(str(write_latent_cache(tmp_path / "c", classes=compass)), time_reversal=True,
                                  seed=3)
    datamodule.setup("fit")
    train, raw = datamodule.datasets["train"], datamodule.datasets["val"]
    flipped = 0
    for index in range(40):
        item = train[(index, 1)]
        if torch.equal(item["latents"], raw.latents[index]):
            assert item["label"] == raw.labels[index]
        else:
            flipped += 1
            assert torch.equal(item["latents"], raw.latents[index].flip(1))  # (c t h w): frames in reverse order
            assert item["label"] == (raw.labels[index] + 4) % 8  # E <-> W, NE <-> SW, ...
        assert torch.equal(train[(index, 1)]["latents"], item["latents"])  # a pure function of (seed, epoch, index)
    assert 10 <= flipped <= 30
    assert all(torch.equal(raw[i]["latents"], raw.latents[i]) for i in range(5))  # evaluation never reverses
    with pytest.raises(ValueError, match="time_reversal=true needs the class names"):
        LatentDataModule(str(write_latent_cache(tmp_path / "nonames")), time_reversal=True).setup("fit")
    with pytest.raises(ValueError, match="'N' has no opposite"):
        LatentDataModule(str(write_latent_cache(tmp_path / "odd", classes=["E", "N", "W"])),
                         time_reversal=True).setup("fit")


def test_motion_curve_logs_flow_direction_accuracy_of_samples(dit_config, tmp_path, tiny_autoencoder):
    from models.callbacks.motion_curve import CURVE_FILE
    from train import train

    run = tmp_path / "curve_run"
    train(dit_config("debug=tiny", "trainer.max_epochs=1", "trainer.limit_train_batches=4", "test=false",
                     "model.num_log_samples=0", "callbacks.motion_curve.every_n_steps=2",  # mmnist_dit has the callback
                     "callbacks.motion_curve.num_samples=8", "callbacks.motion_curve.num_inference_steps=2",
                     output_dir=run))
    rows = (run / CURVE_FILE).read_text().splitlines()
    assert rows[0] == "step,flow_direction_accuracy,speed_px_per_frame"
    assert [int(row.split(",")[0]) for row in rows[1:]] == [2, 4]
    assert all(0.0 <= float(row.split(",")[1]) <= 1.0 for row in rows[1:])
    logged = (next(run.glob("csv/version_*/metrics.csv"))).read_text().splitlines()[0]
    assert "curve/flow_direction_accuracy" in logged


def test_rows_by_label_puts_each_label_on_its_own_row_and_pads_with_black():
    from models.diffusion.video_io import rows_by_label

    clips = [torch.full((1, 2, 4, 4), value, dtype=torch.uint8) for value in (10, 20, 30, 40, 50)]
    tiles = rows_by_label(clips, [3, 1, 3, 3, 1], per_row=2)  # label 3 has one clip too many; label 1 fits
    assert [int(tile.max()) for tile in tiles] == [20, 50, 10, 30]
    tiles = rows_by_label(clips[:3], [0, 1, 1], per_row=3)
    assert [int(tile.max()) for tile in tiles] == [10, 0, 0, 20, 30, 0]
    with pytest.raises(ValueError, match="same non-zero number"):
        rows_by_label(clips, [0, 1])


def test_score_samples_samples_and_scores_the_final_weights(dit_config, tmp_path):
    from models.diffusion.generate import generate_to_folder
    from train import train

    run = tmp_path / "scored"
    train(dit_config("debug=tiny", "trainer.max_epochs=1", "trainer.limit_train_batches=2", "test=false",
                     "model.num_log_samples=0", "callbacks.motion_curve.every_n_steps=1000",
                     "callbacks.score_samples.num_samples=4", "callbacks.score_samples.steps=2", output_dir=run))
    report = json.loads((run / "samples_metrics.json").read_text())
    assert report["protocol"]["num_clips"] == 4 and "temporal_flickering" in report["metrics"]
    assert "classifier_accuracy" in report["skipped"]  # no classifier given
    # The samples are those of the run's final weights: drawn again from last.ckpt, they are the same clips.
    again = generate_to_folder(run / "checkpoints" / "last.ckpt", tmp_path / "again", 4, steps=2, grey=True,
                               progress=False)
    first = read_list_file(run / "samples" / "samples.txt", run / "samples")
    second = read_list_file(again, again.parent)
    for a, b in zip(first, second):
        assert torch.equal(read_clip(a.path, range(8)), read_clip(b.path, range(8)))
