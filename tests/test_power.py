"""A claim's power and size: resolution from its evidence's score, named alternatives, and the statistical tests the
claims share (proofs_checks.framework.power, proofs_checks.framework.stats)."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from solvable.proofs_checks.framework import power, registry
from solvable.proofs_checks.framework.registry import Evidence, resolution
from solvable.proofs_checks.framework.stats import (bonferroni_level, bonferroni_t, bonferroni_z, skew_corrected_t,
                                          weighted_chi2_quantile, weighted_chi2_sf)


def _evidence(**kw):
    base = dict(predicted=1.0, observed=1.0, error=0.0, tolerance=1.0, error_measure="m", tolerance_reason="r")
    return Evidence(**{**base, **kw})


def test_resolution_of_a_relative_error_is_its_budget():
    """observed = 1.002 x predicted, budget 1 % relative: a prediction scaled by f is rejected once
    |1.002 - f| / f > 0.01, i.e. f < 0.992 or f > 1.0121: the two-sided resolution is the larger, 1.21 %."""
    score = power.relative(1.002, 1.0, 0.01)
    assert score(1.0) == pytest.approx(0.2)
    assert resolution(score, 1.0) == pytest.approx(0.002 / 0.99 + 0.01 / 0.99, rel=1e-6)
    assert resolution(score, 1.0, "below") == pytest.approx(1 - 1.002 / 1.01, rel=1e-6)


def test_resolution_is_inf_when_no_change_up_to_90_percent_is_rejected():
    assert resolution(lambda f: 0.0, 1.0) == math.inf
    assert resolution(power.fixed(0.5), 1.0) == math.inf


def test_evidence_holds_its_score_to_its_error():
    ev = _evidence(error=0.2, score=power.relative(1.002, 1.0, 0.01))
    assert ev.resolution == pytest.approx(0.012 / 0.99, rel=1e-6)
    with pytest.raises(ValueError, match="score\\(1\\) must reproduce the error"):
        _evidence(error=0.3, score=power.relative(1.002, 1.0, 0.01))
    with pytest.raises(ValueError, match="sides must be one of"):
        _evidence(sides="left")
    with pytest.raises(ValueError, match="false_alarm must be a probability"):
        _evidence(false_alarm=1.5)


def test_alternatives_are_rejected_above_the_tolerance():
    ev = _evidence(alternatives={"wrong": 3.0, "close": 0.5})
    assert ev.rejected_alternatives == ["wrong"]


def test_a_claim_that_promises_less_than_the_default_must_say_why():
    with pytest.raises(ValueError, match="say why in resolves_reason"):
        registry.claim(id="m.x", source="s 1", statement="s", kind="simulation", resolves=(0.2, 0.1))
    with pytest.raises(ValueError, match="resolves must be"):
        registry.claim(id="m.x", source="s 1", statement="s", kind="simulation", resolves=(2.0, 0.1),
                       resolves_reason="because")


@pytest.mark.parametrize("k", [1, 2, 3, 9, 30])
def test_weighted_chi2_quantile_matches_chi2_for_equal_weights(k):
    # Lugannani-Rice is exact to within 0.6 % at one degree of freedom, better beyond (Kuonen 1999)
    assert weighted_chi2_quantile(0.999, np.full(k, 2.0)) == pytest.approx(2 * sps.chi2.ppf(0.999, k), rel=6e-3)
    assert weighted_chi2_sf(2 * sps.chi2.ppf(0.99, k), np.full(k, 2.0)) == pytest.approx(0.01, rel=0.05)


def test_weighted_chi2_quantile_matches_monte_carlo_where_satterthwaite_did_not():
    """The weights of an lsa.global_minimiser draw: the exact 0.999 quantile is 8 % above Satterthwaite's."""
    lam = np.array([5.06, 4.35, 3.85, 3.46, 1.85, 2.88, 2.52, 2.28, 2.25])
    q = weighted_chi2_quantile(0.999, lam)
    draws = (np.random.default_rng(0).standard_normal((2_000_000, lam.size)) ** 2) @ lam
    assert np.mean(draws > q) == pytest.approx(1e-3, rel=0.1)
    k = lam.sum() ** 2 / np.sum(lam**2)
    satterthwaite = lam.sum() * sps.chi2.ppf(0.999, k) / k
    assert np.mean(draws > satterthwaite) > 1.2e-3  # 30 % more false alarms than promised


def test_skew_corrected_t_is_calibrated_where_the_plain_t_is_not():
    """Right-skewed samples (lognormal, skewness 6) of size 400: the plain t falls below -3 far more often than the
    normal's 0.13 %; Hall's transformation brings the two-sided rate beyond 3 near 0.27 %."""
    rng = np.random.default_rng(1)
    mean = math.exp(0.5)
    plain, hall = [], []
    for _ in range(3000):
        x = rng.lognormal(0.0, 1.0, 400)
        plain.append(math.sqrt(x.size) * (x.mean() - mean) / x.std(ddof=1))
        hall.append(skew_corrected_t(x, mean))
    plain, hall = np.array(plain), np.array(hall)
    assert np.mean(plain < -3) > 0.005  # 0.87 %: nearly seven times the normal's one-sided 0.13 %
    assert np.mean(np.abs(hall) > 3) < 0.008


def test_bonferroni_constants():
    assert bonferroni_level(2, 1e-4) == 1 - 5e-5
    assert bonferroni_z(1, 1e-4) == pytest.approx(sps.norm.isf(5e-5))
    assert bonferroni_z(10, 1e-4, sides=1) == pytest.approx(sps.norm.isf(1e-5))
    assert bonferroni_t(6, 11, 1e-4) == pytest.approx(sps.t.isf(1e-4 / 12, 11))
