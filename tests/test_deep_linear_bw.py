"""The Bures-Wasserstein generator (Bréchet et al. 2023): loss, hand-written gradient, predictions."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest
import scipy.linalg
import scipy.optimize

from solvable.sims.deep_linear import bw as sim
from solvable.theory.deep_linear import bw as th


def _layers(problem, rng, scale=0.7):
    return tuple(rng.standard_normal((1, b, a)) * scale for a, b in zip(problem.widths[:-1], problem.widths[1:]))


@pytest.mark.parametrize("tau", [0.0, 0.2])
def test_gradient_matches_finite_differences_at_rank_below_d(tau):
    """Width 2 < d = 5: at tau = 0 the loss is the nuclear-norm form, smooth on the rank-2 matrices the
    factors reach; the gradient 2(I - T)W through the factor chain against central differences."""
    problem = sim.Problem.random(5, hidden=(2, 3), latent=4, seed=1)
    rng = np.random.default_rng(0)
    layers = _layers(problem, rng)
    root = problem.root()
    _, grads = sim.loss_grad(root, layers, tau)
    for j in range(problem.depth):
        direction = rng.standard_normal(layers[j].shape)
        h = 1e-5
        up = list(layers)
        down = list(layers)
        up[j], down[j] = layers[j] + h * direction, layers[j] - h * direction
        fd = (sim.loss_grad(root, tuple(up), tau)[0] - sim.loss_grad(root, tuple(down), tau)[0])[0] / (2 * h)
        assert abs(fd - np.sum(grads[j] * direction)) < 1e-7 * max(1.0, abs(fd))


def test_loss_is_the_bures_wasserstein_distance():
    """Against scipy's Schur square roots (theory.bw_distance_sq), full rank and perturbed."""
    problem = sim.Problem.random(4, hidden=(4,), latent=4, seed=2)
    rng = np.random.default_rng(1)
    layers = _layers(problem, rng)
    w = layers[1][0] @ layers[0][0]
    for tau in (0.0, 0.3):
        got = sim.loss_grad(problem.root(), layers, tau)[0][0]
        want = th.bw_distance_sq(problem.covariance, w @ w.T + tau * np.eye(4))
        assert abs(got - want) < 1e-11 * max(1.0, want)
    # the distance of a covariance to itself, and between commuting ones: sum (sqrt a - sqrt b)^2
    assert abs(th.bw_distance_sq(problem.covariance, problem.covariance)) < 1e-12
    assert th.bw_distance_sq(np.diag([4.0, 1.0]), np.diag([1.0, 9.0])) == pytest.approx(1.0 + 4.0, abs=1e-12)


@pytest.mark.parametrize("tau", [0.0, 0.15])
def test_minimiser_beats_a_generic_optimiser(tau):
    """No rank-k covariance found by L-BFGS from 6 random starts (numerical gradients) lies below the
    predicted minimum, and the best reaches it: an independent check of the derivation, non-commuting
    points included. The loss: scipy's sqrtm form for tau > 0; at tau = 0, where WW^T is singular and
    sqrtm loses half the digits, its variational form tr S0 + ||W||^2 - 2 ||S0^{1/2} W||_* (SVD)."""
    d, k = 4, 2
    s0 = sim.Problem.random(d, seed=3).covariance
    star = th.bw_minimiser(s0, k, tau)
    root = np.real(scipy.linalg.sqrtm(s0))

    def f(x):
        w = x.reshape(d, k)
        if tau == 0:
            return np.trace(s0) + np.sum(w * w) - 2 * np.linalg.svd(root @ w, compute_uv=False).sum()
        return th.bw_distance_sq(s0, w @ w.T + tau * np.eye(d))

    rng = np.random.default_rng(4)
    best = min(scipy.optimize.minimize(f, rng.standard_normal(d * k), method="L-BFGS-B",
                                       options={"ftol": 1e-14, "gtol": 1e-10}).fun for _ in range(6))
    assert best >= star.loss - 1e-7
    assert best <= star.loss + 1e-6
    lam = np.linalg.eigvalsh(s0)[::-1]
    assert star.loss == pytest.approx(np.sum((np.sqrt(lam[k:]) - np.sqrt(tau)) ** 2), abs=1e-12)


def test_critical_points_enumerate_the_eigen_subsets():
    s0 = np.diag([3.0, 2.0, 1.0, 0.5])
    pts = th.bw_critical_points(s0, 2, tau=0.0)
    assert len(pts) == comb(4, 0) + comb(4, 1) + comb(4, 2)
    assert [p.loss for p in pts] == sorted(p.loss for p in pts)
    assert pts[0].support == (0, 1) and pts[0].loss == pytest.approx(1.5)
    assert th.bw_minimiser(s0, 2).support == pts[0].support
    # tau above an eigenvalue: that mode is never kept
    assert all(3 not in p.support for p in th.bw_critical_points(s0, 2, tau=0.6))
    np.testing.assert_allclose(th.bw_minimiser(s0, 2, tau=0.6).covariance, np.diag([2.4, 1.4, 0.0, 0.0]), atol=1e-14)


def test_gradient_vanishes_at_every_predicted_critical_point():
    problem = sim.Problem.random(4, hidden=(2,), latent=4, seed=5)
    lam, vec = problem.eigh()
    for tau in (0.0, 0.1):
        for cp in th.bw_critical_points(problem.covariance, 2, tau):
            J = list(cp.support)
            c = (lam[J] - tau) ** 0.25
            w2 = np.zeros((4, 2))
            w2[:, :len(J)] = vec[:, J] * c
            w1 = np.zeros((2, 4))
            w1[:len(J), :len(J)] = np.diag(c)
            loss, grads = sim.loss_grad(problem.root(), (w1[None], w2[None]), tau)
            assert loss[0] == pytest.approx(cp.loss, abs=1e-12)
            assert max(float(np.abs(g).max()) for g in grads) < 1e-12


def test_flow_and_gd_from_a_small_start_reach_the_top_k_truncation():
    problem = sim.Problem.random(4, hidden=(2,), latent=4, seed=6)
    star = th.bw_minimiser(problem.covariance, 2)
    flow = sim.simulate(problem, 1e-2, t_max=60.0, rtol=1e-10)
    gd = sim.simulate(problem, 1e-2, "gd", lr=0.05, steps=1500)
    for traj in (flow, gd):
        assert np.abs(traj.final["covariance"][0] - star.covariance).max() < 1e-8
        assert traj.observables["loss"][0, -1] == pytest.approx(star.loss, abs=1e-10)
    cov, lam_vec = flow.final["covariance"][0], problem.eigh()[1]
    np.testing.assert_allclose(flow.observables["spectrum"][0, -1], np.diag(lam_vec.T @ cov @ lam_vec), atol=1e-12)
    assert flow.meta["coordinates"] == "full" and flow.meta["tau"] == 0.0


def test_bad_input_is_refused_with_its_range():
    problem = sim.Problem.random(3, hidden=(2,), seed=0)
    with pytest.raises(ValueError, match="tau"):
        sim.simulate(problem, 0.1, tau=-1.0)
    with pytest.raises(ValueError, match="init"):
        sim.simulate(problem, 0.1, init="aligned")
    with pytest.raises(ValueError, match="coordinates='reduced' does not apply"):
        sim.simulate(problem, 0.1, coordinates="reduced")
    with pytest.raises(ValueError, match="k"):
        th.bw_minimiser(problem.covariance, 4)
    with pytest.raises(ValueError, match="tau"):
        th.bw_critical_points(problem.covariance, 1, tau=np.nan)
    with pytest.raises(ValueError, match="positive semi-definite"):
        th.bw_minimiser(-np.eye(2), 1)
    with pytest.raises(ValueError, match="layers"):
        sim.simulate(problem, layers=[np.ones((1, 2, 3))])
