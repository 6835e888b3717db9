"""Features pulled toward given ones (theory.ufm.perturbation) against independent references: the standard UFM's
closed form, L-BFGS on objectives written out here, finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from solvable.theory import ufm as th
from solvable.theory.ufm import perturbation as tp


def _anchored_objective(n, lw, lh, H0, bias):
    """The anchored one-layer MSE objective and its gradient, written here (not the simulator's)."""
    Y = th.labels(n)
    K, N = Y.shape
    d = H0.shape[0]
    sizes = [K * d, d * N] + ([K] if bias else [])

    def split(x):
        W = x[:K * d].reshape(K, d)
        H = x[K * d:K * d + d * N].reshape(d, N)
        b = x[K * d + d * N:] if bias else np.zeros(K)
        return W, H, b

    def fg(x):
        W, H, b = split(x)
        R = W @ H + b[:, None] - Y
        f = (R * R).sum() / (2 * N) + lw / 2 * (W * W).sum() + lh / 2 * ((H - H0) ** 2).sum()
        g = [(R @ H.T / N + lw * W).ravel(), (W.T @ R / N + lh * (H - H0)).ravel()]
        if bias:
            g.append(R.sum(axis=1) / N)
        return f, np.concatenate(g)

    return fg, split, sum(sizes)


def _minimise(fg, size, seed, scale=0.3):
    x0 = np.random.default_rng(seed).standard_normal(size) * scale
    res = optimize.minimize(fg, x0, jac=True, method="L-BFGS-B", options={"maxiter": 200000, "gtol": 1e-13,
                                                                          "ftol": 1e-16, "maxcor": 50})
    return res


def test_a_zero_is_the_standard_ufm():
    """At a = 0: s^2 is Dang et al.'s squared row norm sqrt(n lH / lW) - N lH, and c = K sqrt(n lW lH) = 1 - st."""
    K, n, lw, lh = 4, 6, 3e-3, 8e-3
    sol = tp.near_collapse(K, n, lw, lh, 0.0)
    geo = th.mse_geometry((n,) * K, lw, lh)
    assert sol.s ** 2 == pytest.approx(geo.w_norms_sq[0], rel=1e-10)
    assert sol.t ** 2 * n == pytest.approx(geo.h_norms_sq[0] * n, rel=1e-10)
    assert sol.shrink == pytest.approx(K * math.sqrt(n * lw * lh), rel=1e-10)
    assert sol.shrink == pytest.approx(1 - sol.s * sol.t, rel=1e-10)
    assert sol.nc1_ratio is None


@pytest.mark.parametrize("a, lw, lh", [(1.0, 1e-2, 1e-2), (0.3, 1e-3, 1e-1), (3.0, 1e-1, 1e-3)])
def test_the_aligned_point_is_the_global_minimiser_of_the_collapsed_problem(a, lw, lh):
    """L-BFGS from random starts on the collapsed problem over every W (K x d) and every class mean (d x K)."""
    K, n, d = 3, 5, 5
    N = K * n
    Q = np.linalg.qr(np.random.default_rng(1).standard_normal((d, K)))[0]

    def fg(x):
        W, M = x[:K * d].reshape(K, d), x[K * d:].reshape(d, K)
        R = W @ M - np.eye(K)
        f = n * (R * R).sum() / (2 * N) + lw / 2 * (W * W).sum() + lh * n / 2 * ((M - a * Q) ** 2).sum()
        g = np.concatenate([(n * R @ M.T / N + lw * W).ravel(), (n * W.T @ R / N + lh * n * (M - a * Q)).ravel()])
        return f, g

    sol = tp.near_collapse(K, n, lw, lh, a)
    best = min((_minimise(fg, 2 * K * d, seed, scale=1.0) for seed in range(6)), key=lambda r: r.fun)
    assert best.fun == pytest.approx(sol.value, rel=1e-9)
    W, M = best.x[:K * d].reshape(K, d), best.x[K * d:].reshape(d, K)
    np.testing.assert_allclose(np.linalg.svd(W, compute_uv=False), sol.s, rtol=1e-5)
    np.testing.assert_allclose(M, sol.t * Q, atol=1e-5)


def test_elasticities_are_the_derivatives_of_the_ratio():
    K, n, lw, lh, a = 3, 8, 1e-2, 2e-2, 0.7
    h = 1e-5
    ratio = lambda lw_, lh_: math.log(tp.near_collapse(K, n, lw_, lh_, a).nc1_ratio)  # noqa: E731
    eW = (ratio(lw * math.exp(h), lh) - ratio(lw * math.exp(-h), lh)) / (2 * h)
    eH = (ratio(lw, lh * math.exp(h)) - ratio(lw, lh * math.exp(-h))) / (2 * h)
    got = tp.near_collapse_elasticities(K, n, lw, lh, a)
    assert got == pytest.approx((eW, eH), rel=1e-6)
    assert abs(got[1]) > abs(got[0])


def test_within_class_response_is_exact_at_a_minimiser_far_from_collapse():
    """Imbalanced classes, a bias, an anchor far from collapse: HP = lH (W^T W/N + lH)^-1 H0 P at L-BFGS's end."""
    n, lw, lh, d = (6, 4, 2), 2e-2, 5e-2, 4
    H0 = np.random.default_rng(3).standard_normal((d, sum(n)))
    fg, split, size = _anchored_objective(n, lw, lh, H0, bias=True)
    res = _minimise(fg, size, 0)
    W, H, _ = split(res.x)
    grad = np.linalg.norm(fg(res.x)[1])
    E = tp.within_class(H0, n)
    err = np.linalg.norm(tp.within_class(H, n) - tp.anchored_response(W, E, lh, sum(n)))
    assert err <= 2 * grad / lh + 1e-12  # the identity's residual is S grad_H P / lH
    assert np.linalg.norm(tp.within_class(H, n)) < np.linalg.norm(E)


def test_near_collapse_prediction_converges_at_second_order():
    """Anchor a Q (x) 1 + eps E1: the minimiser's within-class part approaches (cQQ^T + I - QQ^T) eps E1 with a
    relative error O(eps^2), and its NC1 ratio approaches (c a / t)^2."""
    K, n, d, lw, lh, a = 3, 4, 5, 1e-2, 2e-2, 1.0
    N = K * n
    rng = np.random.default_rng(5)
    Q = np.linalg.qr(rng.standard_normal((d, K)))[0]
    E1 = tp.within_class(rng.standard_normal((d, N)), (n,) * K)
    sol = tp.near_collapse(K, n, lw, lh, a)
    S = sol.shrink * Q @ Q.T + np.eye(d) - Q @ Q.T
    errors = []
    for eps in (0.08, 0.04):
        H0 = np.repeat(a * Q, n, axis=1) + eps * E1
        fg, split, size = _anchored_objective((n,) * K, lw, lh, H0, bias=False)
        start = np.concatenate([(sol.s * Q.T).ravel(), H0.ravel()])
        res = optimize.minimize(fg, start, jac=True, method="L-BFGS-B",
                                options={"maxiter": 100000, "gtol": 1e-14, "ftol": 1e-17})
        W, H, _ = split(res.x)
        errors.append(np.linalg.norm(tp.within_class(H, (n,) * K) - S @ (eps * E1)) / np.linalg.norm(eps * E1))
    order = math.log2(errors[0] / errors[1])
    assert errors[1] < 0.02
    assert 1.5 < order < 2.5


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="a \\(the length"):
        tp.near_collapse(3, 4, 1e-2, 1e-2, -1.0)
    with pytest.raises(ValueError, match="K must be"):
        tp.near_collapse(1, 4, 1e-2, 1e-2, 1.0)
    with pytest.raises(ValueError, match="lambda_H"):
        tp.near_collapse(3, 4, 1e-2, 0.0, 1.0)
    with pytest.raises(ValueError, match="a must be > 0"):
        tp.near_collapse_elasticities(3, 4, 1e-2, 1e-2, 0.0)
    with pytest.raises(ValueError, match="share d"):
        tp.anchored_response(np.ones((3, 4)), np.ones((5, 6)), 1e-2, 6)
    with pytest.raises(ValueError, match="shape"):
        tp.within_class(np.ones((3, 5)), (2, 2))
