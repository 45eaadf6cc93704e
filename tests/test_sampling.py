"""The samplers (DDPM, DDIM, DPM-Solver++(2M)) against diffusers' steps, the exact denoiser of Gaussian data and the
closed-form probability-flow ODE; classifier-free guidance, frame conditioning and bad arguments."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from models.diffusion.denoising import guided_prediction, sample_latents
from models.diffusion.noise import NOISE_PRIORS, frame_correlation, sample_noise
from tests.diffusion_helpers import SCHEDULES, SHAPE, TinyDenoiser, closed_form_alphas_cumprod, run_sampler


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
