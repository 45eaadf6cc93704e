"""Confidence intervals over clips, for verdicts that must clear a threshold rather than a point estimate.

Both intervals are percentile bootstraps computed by ``scipy.stats.bootstrap`` (Efron & Tibshirani 1993, ch. 13):
clips are resampled with replacement, the statistic is recomputed on each resample, and the interval is the
(α/2, 1 − α/2) quantiles of those recomputations. Every call takes a seed, so a rerun prints the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval: ``low <= value <= high`` (for the mean of 2+ clips)."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.3f} [{self.low:.3f}, {self.high:.3f}]"


def _values(per_clip: Sequence[float], name: str) -> np.ndarray:
    values = np.asarray(per_clip, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"{name}: a confidence interval needs the values of 2 or more clips, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"{name}: per-clip values must be finite")
    return values


def mean_ci(per_clip: Sequence[float], level: float = 0.95, seed: int = 0,
            n_resamples: int = DEFAULT_RESAMPLES) -> Interval:
    """The mean over clips with its percentile-bootstrap confidence interval.

    Args:
        per_clip: one value per clip (e.g. 0/1 correctness, or a per-clip metric).
        level: confidence level in (0, 1).
        seed: seed of the resampling.
        n_resamples: bootstrap resamples.

    Returns:
        :class:`Interval` with ``n`` = number of clips. When every clip has the same value the interval is that value.

    Raises:
        ValueError: fewer than 2 clips or a non-finite value.
    """
    values = _values(per_clip, "mean_ci")
    if np.ptp(values) == 0:
        return Interval(float(values[0]), float(values[0]), float(values[0]), len(values))
    result = stats.bootstrap((values,), np.mean, confidence_level=level, n_resamples=n_resamples,
                             method="percentile", rng=np.random.default_rng(seed))
    ci = result.confidence_interval
    return Interval(float(values.mean()), float(ci.low), float(ci.high), len(values))


def difference_ci(a: Sequence[float], b: Sequence[float], level: float = 0.95, seed: int = 0,
                  n_resamples: int = DEFAULT_RESAMPLES, paired: bool = False) -> Interval:
    """``mean(a) − mean(b)`` with its percentile-bootstrap interval.

    Args:
        a, b: per-clip values of two sets.
        level, seed, n_resamples: as :func:`mean_ci`.
        paired: the sets score the *same* clips in the same order (e.g. one checkpoint on clips forward and shuffled):
            clip indices are resampled jointly, which removes the between-clip variance from the difference. Otherwise
            each set is resampled on its own (independent samples, e.g. two generators' clips).

    Raises:
        ValueError: either set has fewer than 2 clips or a non-finite value, or ``paired`` sets differ in length.
    """
    a, b = _values(a, "difference_ci a"), _values(b, "difference_ci b")
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired sets must score the same clips, got {len(a)} and {len(b)} values")
        result = mean_ci(a - b, level, seed, n_resamples)
        return Interval(result.value, result.low, result.high, len(a))
    if np.ptp(a) == 0 and np.ptp(b) == 0:
        d = float(a[0] - b[0])
        return Interval(d, d, d, len(a) + len(b))
    result = stats.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis),
                             confidence_level=level, n_resamples=n_resamples, method="percentile",
                             paired=False, vectorized=True, rng=np.random.default_rng(seed))
    ci = result.confidence_interval
    return Interval(float(a.mean() - b.mean()), float(ci.low), float(ci.high), len(a) + len(b))


__all__ = ["Interval", "difference_ci", "mean_ci"]
