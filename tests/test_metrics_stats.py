"""Bootstrap intervals against the normal-approximation closed form, determinism and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.metrics.stats import difference_ci, mean_ci


def test_mean_ci_of_accuracies_matches_the_wald_interval():
    """For n = 1000 Bernoulli(0.7) clips the percentile bootstrap is close to p ± 1.96·sqrt(p(1−p)/n)."""
    values = (np.random.default_rng(0).random(1000) < 0.7).astype(float)
    p = values.mean()
    half = 1.96 * math.sqrt(p * (1 - p) / len(values))
    ci = mean_ci(values)
    assert ci.value == pytest.approx(p) and ci.n == 1000
    assert ci.low == pytest.approx(p - half, abs=0.006) and ci.high == pytest.approx(p + half, abs=0.006)
    assert mean_ci(values) == ci and mean_ci(values, seed=1) != ci  # seeded


def test_difference_ci_adds_the_variances_of_independent_sets():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 1.0, 800), rng.normal(0.5, 2.0, 500)
    half = 1.96 * math.sqrt(1.0 / 800 + 4.0 / 500)
    ci = difference_ci(a, b)
    assert ci.value == pytest.approx(a.mean() - b.mean())
    assert ci.high - ci.low == pytest.approx(2 * half, rel=0.1)
    assert ci.low < ci.value < ci.high


def test_paired_difference_resamples_clips_jointly():
    """The same clips scored twice: the paired interval is that of the per-clip differences, far tighter than the
    independent one when the clip effect dominates."""
    rng = np.random.default_rng(2)
    clip_effect = rng.normal(0, 1, 500)
    a, b = clip_effect + 0.1 + rng.normal(0, 0.05, 500), clip_effect + rng.normal(0, 0.05, 500)
    paired, independent = difference_ci(a, b, paired=True), difference_ci(a, b)
    assert paired == mean_ci(a - b) and 0.09 < paired.low < paired.high < 0.125
    assert independent.low < 0 < independent.high  # the clip effect swamps 0.1 without pairing
    with pytest.raises(ValueError, match="same clips"):
        difference_ci(a, b[:-1], paired=True)


def test_constant_sets_and_bad_input():
    assert mean_ci([1.0, 1.0, 1.0]).low == 1.0 == mean_ci([1.0, 1.0]).high
    assert difference_ci([1.0, 1.0], [0.0, 0.0]).value == 1.0
    with pytest.raises(ValueError, match="2 or more"):
        mean_ci([0.5])
    with pytest.raises(ValueError, match="finite"):
        mean_ci([0.5, float("nan")])


def test_evaluation_results_carry_the_interval_of_every_per_clip_metric():
    from models.metrics.report import EvaluationResult, markdown_table

    result = EvaluationResult()
    values = [1.0] * 70 + [0.0] * 30
    result.add("acc", 0.7, "higher", "a per-clip accuracy", per_clip=values)
    result.add("fvd", 12.0, "lower", "a set-level metric")
    assert result.ci95["acc"] == [mean_ci(values).low, mean_ci(values).high] and "fvd" not in result.ci95
    assert f"| `acc` | 0.7000 | [{mean_ci(values).low:.4f}, {mean_ci(values).high:.4f}] |" in markdown_table(result)
