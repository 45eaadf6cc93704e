"""Correlated video noise priors of PYoCo (Ge et al., ICCV 2023, "Preserve Your Own Correlation"), §3.

Every prior gives each element unit variance and zero mean, and correlates only *frames* (axis t) of the same clip,
channel and pixel; clips, channels and pixels stay independent. With ``ρ = α/√(1+α²)``:

* ``iid``: independent frames (the α = 0 limit of both priors below).
* ``mixed``: ``ε_i = ε_shared + ε_ind,i`` with ``ε_shared ~ N(0, α²/(1+α²))`` shared by all frames and
  ``ε_ind,i ~ N(0, 1/(1+α²))``; every pair of distinct frames correlates at ``α²/(1+α²)`` (default α = 1: 0.5).
* ``progressive``: ``ε_0 ~ N(0, 1)``, ``ε_i = ρ·ε_{i−1} + ε_ind,i`` with ``ε_ind,i ~ N(0, 1/(1+α²))`` (an AR(1)
  process); frames i, j correlate at ``ρ^|i−j|`` (default α = 2: 0.894 at lag 1).
* ``shared``: every frame gets the same noise, correlation 1 at every lag: the α → ∞ limit of both priors, and the
  practitioner's "fix the seed and generate each frame" (not a PYoCo prior; α is unused). It is degenerate: the
  differences between frames are never noised, so a sampler cannot add randomness to them.

Use the same prior in training (``DDPMScheduler.add_noise``) and sampling (``DDIMScheduler.step(variance_noise=)``
and the initial latent); correlated noise at sampling time alone causes texture sticking (PYoCo §3).
"""

from __future__ import annotations

import math

import torch

NOISE_PRIORS = ("iid", "mixed", "progressive", "shared")
_DEFAULT_ALPHA = {"iid": 0.0, "mixed": 1.0, "progressive": 2.0, "shared": math.inf}


def _check(prior: str, alpha: float | None) -> float:
    """Validate ``prior`` and ``alpha``; return α (the prior's default when ``alpha`` is None; unused for iid, shared)."""
    if prior not in NOISE_PRIORS:
        raise ValueError(f"prior={prior!r} is not one of {NOISE_PRIORS}")
    if alpha is None:
        return _DEFAULT_ALPHA[prior]
    if not alpha > 0 or math.isinf(alpha):
        raise ValueError(f"alpha={alpha} must be a finite number > 0")
    return float(alpha)


def default_alpha(prior: str) -> float:
    """PYoCo's default α: 1.0 for ``mixed``, 2.0 for ``progressive``; 0.0 for ``iid`` and ∞ for ``shared`` (unused).

    Raises:
        ValueError: ``prior`` is not one of ``NOISE_PRIORS``.
    """
    return _check(prior, None)


def frame_correlation(prior: str, alpha: float | None = None, lag: int = 1) -> float:
    """Closed-form correlation between two frames ``lag`` apart, for any channel and pixel.

    Args:
        prior: one of ``NOISE_PRIORS``.
        alpha: α > 0, or None for the prior's default; ignored for ``iid`` and ``shared``.
        lag: frame distance |i − j| (frames); its sign is ignored.

    Returns:
        Correlation in [0, 1]: 1 at lag 0; otherwise 0 (iid), α²/(1+α²) (mixed), (α/√(1+α²))^|lag| (progressive) or
        1 (shared).

    Raises:
        ValueError: unknown ``prior`` or ``alpha`` ≤ 0.
    """
    alpha = _check(prior, alpha)
    lag = abs(int(lag))
    if lag == 0 or prior == "shared":
        return 1.0
    if prior == "iid":
        return 0.0
    if prior == "mixed":
        return alpha**2 / (1 + alpha**2)
    return (alpha / math.sqrt(1 + alpha**2)) ** lag


def sample_noise(
    shape: tuple[int, ...] | torch.Size,
    prior: str = "iid",
    alpha: float | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw standard-normal video noise whose frames are correlated as the prior says.

    Args:
        shape: (b c t h w); frames are axis 2.
        prior: one of ``NOISE_PRIORS``.
        alpha: α > 0, or None for :func:`default_alpha`; ignored for ``iid`` and ``shared``.
        generator: source of randomness (on ``device``); the same seed gives the same noise.
        device: where to draw the noise.
        dtype: output dtype; drawn in float32 and cast.

    Returns:
        Tensor ``shape`` of ``dtype``: zero mean, unit variance per element, correlation between frames given by
        :func:`frame_correlation`.

    Raises:
        ValueError: ``shape`` is not 5D, unknown ``prior``, or ``alpha`` ≤ 0.
    """
    if len(shape) != 5:
        raise ValueError(f"shape={tuple(shape)} must be 5D (b c t h w)")
    alpha = _check(prior, alpha)
    b, c, t, h, w = shape
    if prior == "shared":
        frame = torch.randn(b, c, 1, h, w, generator=generator, device=device)  # (b c 1 h w)
        return frame.expand(b, c, t, h, w).to(dtype, copy=True)  # (b c t h w), a real copy: callers may write to it
    noise = torch.randn(b, c, t, h, w, generator=generator, device=device)  # (b c t h w)
    if prior == "mixed":
        shared = torch.randn(b, c, 1, h, w, generator=generator, device=device)  # (b c 1 h w)
        noise = (alpha * shared + noise) / math.sqrt(1 + alpha**2)  # (b c t h w)
    elif prior == "progressive":
        rho = alpha / math.sqrt(1 + alpha**2)
        frames = [noise[:, :, 0]]  # each (b c h w); ε_0 ~ N(0, 1)
        for i in range(1, t):
            frames.append(rho * frames[-1] + noise[:, :, i] / math.sqrt(1 + alpha**2))
        noise = torch.stack(frames, dim=2)  # (b c t h w)
    return noise.to(dtype)
