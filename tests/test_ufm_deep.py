"""Deep linear heads on balanced data: the values of theory.ufm against independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest

from solvable.theory import ufm as th


def test_one_layer_values_are_the_known_ones():
    n, lam = (8, 8, 8, 8), 5e-3
    assert th.deep_mse_value(n, lam, lam, 1) == pytest.approx(th.mse_optimal_value(n, lam, lam), rel=1e-12)
    value, rho = th.deep_ce_family(4, 8, lam, lam, 1)
    assert rho == pytest.approx(th.ce_balanced_scale(4, 8, lam, lam), rel=1e-6)  # a flat minimum: rho to ~sqrt(eps)
    a, beta = 4 / 3, 4 * math.sqrt(8) * lam
    assert value == pytest.approx(math.log1p(3 * math.exp(-a * rho)) + beta * rho, rel=1e-12)


def test_bias_value_against_a_convex_program():
    """M = 1 with an unregularised bias: min_Z ||(Y - Z)P||^2/(2N) + sqrt(lW lH)||Z||_* (cvxpy), P the centring."""
    cp = pytest.importorskip("cvxpy")
    n, lam = (4, 4, 4), 1e-2
    Y = th.labels(n)
    N = Y.shape[1]
    P = np.eye(N) - 1.0 / N
    Z = cp.Variable(Y.shape)
    prob = cp.Problem(cp.Minimize(cp.sum_squares((Y - Z) @ P) / (2 * N) + lam * cp.normNuc(Z)))
    prob.solve()
    assert th.deep_mse_value(n, lam, lam, 1, bias=True) == pytest.approx(prob.value, rel=1e-5)


def test_deep_value_is_the_best_balanced_factorisation_of_scaled_labels():
    """Bias-free, balanced: the minimiser is Z = z Y / sqrt(n); its balanced factorisation costs c z^(2/(M+1)) per
    class, so the value is K min_z [(sqrt n - z)^2/(2N) + c z^p]: checked on a fine grid."""
    K, n, lam, M = 4, 8, 5e-3, 3
    N, c, p = K * n, (M + 1) / 2 * (lam**M * lam) ** (1 / (M + 1)), 2 / (M + 1)
    z = np.linspace(0, 2 * math.sqrt(n), 400001)
    grid = K * np.min((math.sqrt(n) - z) ** 2 / (2 * N) + c * z**p)
    assert th.deep_mse_value((n,) * K, lam, lam, M) == pytest.approx(grid, rel=1e-9)


def test_pairing_beats_the_etf_from_three_layers_for_four_classes():
    for lam in (1e-4, 1e-3, 5e-3):
        assert th.deep_ce_family(4, 8, lam, lam, 2)[0] < th.deep_ce_family(4, 8, lam, lam, 2, rank=2)[0]
        assert th.deep_ce_family(4, 8, lam, lam, 3, rank=2)[0] < th.deep_ce_family(4, 8, lam, lam, 3)[0]
    with pytest.raises(ValueError, match="rank"):
        th.deep_ce_family(5, 8, 1e-3, 1e-3, 3, rank=2)
    with pytest.raises(ValueError, match="depth"):
        th.deep_mse_value((4, 4), 1e-3, 1e-3, 0)
