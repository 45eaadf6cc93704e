"""PYoCo noise priors: Monte Carlo moments against the closed forms, determinism, validation."""

from __future__ import annotations

import math

import pytest
import torch
from einops import rearrange

from models.diffusion.noise import NOISE_PRIORS, default_alpha, frame_correlation, sample_noise

SHAPE = (64, 4, 6, 32, 32)  # (b c t h w): 262,144 independent draws per frame
N = SHAPE[0] * SHAPE[1] * SHAPE[3] * SHAPE[4]
TOL = 5 / math.sqrt(N)  # 5 standard errors of a mean or a correlation (≤ 1/√N each) of N draws


def draw(prior: str, alpha: float | None = None, seed: int = 0) -> torch.Tensor:
    return sample_noise(SHAPE, prior, alpha, generator=torch.Generator().manual_seed(seed))


def test_closed_forms():
    assert [default_alpha(p) for p in NOISE_PRIORS] == [0.0, 1.0, 2.0, math.inf]
    assert frame_correlation("iid", lag=1) == 0.0
    assert frame_correlation("mixed") == pytest.approx(0.5)  # α = 1: α²/(1+α²)
    assert frame_correlation("mixed", 3.0, lag=5) == pytest.approx(0.9)
    assert frame_correlation("progressive", lag=2) == pytest.approx(0.8)  # α = 2: (2/√5)² = 4/5
    assert frame_correlation("progressive", 2.0, lag=-2) == frame_correlation("progressive", 2.0, lag=2)
    assert all(frame_correlation(p, lag=0) == 1.0 for p in NOISE_PRIORS)
    assert frame_correlation("shared", lag=7) == 1.0 == frame_correlation("shared", 0.5, lag=1)  # α is unused


@pytest.mark.parametrize(("prior", "alpha"), [
    ("iid", None), ("mixed", None), ("mixed", 0.5), ("progressive", None), ("progressive", 0.7),
    ("shared", None),
])
def test_unit_variance_and_frame_correlation(prior, alpha):
    noise = draw(prior, alpha)
    assert noise.shape == SHAPE and noise.dtype == torch.float32
    frames = rearrange(noise.double(), "b c t h w -> t (b c h w)")  # (t N)
    assert frames.mean(dim=1).abs().max() < TOL
    torch.testing.assert_close(frames.var(dim=1), torch.ones(SHAPE[2], dtype=torch.float64), atol=2 * TOL, rtol=0)
    empirical = torch.corrcoef(frames)  # (t t)
    lags = (torch.arange(SHAPE[2])[:, None] - torch.arange(SHAPE[2])[None]).abs()  # (t t)
    expected = torch.tensor([[frame_correlation(prior, alpha, lag) for lag in row] for row in lags.tolist()],
                            dtype=torch.float64)
    torch.testing.assert_close(empirical, expected, atol=TOL, rtol=0)  # every lag 0..5


@pytest.mark.parametrize("prior", NOISE_PRIORS)
def test_clips_and_channels_are_independent(prior):
    noise = draw(prior).double()
    clips = torch.corrcoef(torch.stack([noise[0::2].flatten(), noise[1::2].flatten()]))[0, 1]
    channels = torch.corrcoef(torch.stack([noise[:, 0].flatten(), noise[:, 1].flatten()]))[0, 1]
    assert abs(clips) < TOL and abs(channels) < 2 * TOL


@pytest.mark.parametrize("prior", NOISE_PRIORS)
def test_same_seed_same_noise(prior):
    assert torch.equal(draw(prior, seed=3), draw(prior, seed=3))
    assert not torch.equal(draw(prior, seed=3), draw(prior, seed=4))
    half = sample_noise((1, 1, 3, 2, 2), prior, dtype=torch.float16)
    assert half.dtype == torch.float16


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"prior": "pink"}, "prior='pink'"),
    ({"prior": "mixed", "alpha": 0.0}, "alpha=0.0"),
    ({"prior": "progressive", "alpha": -1.0}, "alpha=-1.0"),
    ({"prior": "mixed", "alpha": float("nan")}, "alpha=nan"),
    ({"prior": "mixed", "alpha": float("inf")}, "alpha=inf"),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sample_noise((1, 1, 2, 2, 2), **kwargs)
    with pytest.raises(ValueError, match=message):
        frame_correlation(kwargs["prior"], kwargs.get("alpha"), lag=1)


def test_bad_shape_and_prior_raise():
    with pytest.raises(ValueError, match="5D"):
        sample_noise((2, 4, 8, 8), "mixed")
    with pytest.raises(ValueError, match="prior='pink'"):
        default_alpha("pink")


def test_shared_prior_repeats_one_frame():
    noise = draw("shared")
    assert torch.equal(noise, noise[:, :, :1].expand_as(noise))
    noise[:, :, 0] = 0  # a real tensor, not an expanded view: writing one frame leaves the others
    assert noise[:, :, 1].abs().sum() > 0
