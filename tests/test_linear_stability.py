"""The mean-square linear stability of SGD (theory.linear_stability) against enumeration and its own bounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from solvable.sims import quadratic
from solvable.theory import linear_stability as ls


def _hessians(n=6, d=4, seed=0):
    g = np.random.default_rng(seed).standard_normal((n, d))
    return np.einsum("ni,nj->nij", g, g)


@pytest.mark.parametrize("batch", [1, 2, 4, 6])
def test_operator_is_the_average_over_every_batch(batch):
    """Without replacement every batch of size B is equally likely: T(M) is their exact average."""
    h = _hessians()
    n, d = h.shape[:2]
    rng = np.random.default_rng(1)
    m = rng.standard_normal((d, d))
    m = m @ m.T
    lr = 0.1
    want = np.zeros((d, d))
    subsets = list(itertools.combinations(range(n), batch))
    for s in subsets:
        step = np.eye(d) - lr * h[list(s)].mean(axis=0)
        want += step @ m @ step / len(subsets)
    got = (ls.second_moment_operator(h, lr, batch) @ m.ravel()).reshape(d, d)
    np.testing.assert_allclose(got, want, atol=1e-13)


def test_with_replacement_is_the_average_over_ordered_draws():
    h = _hessians(n=4, d=3)
    m = np.eye(3)
    lr, batch = 0.2, 2
    want = np.zeros((3, 3))
    for s in itertools.product(range(4), repeat=batch):
        step = np.eye(3) - lr * h[list(s)].mean(axis=0)
        want += step @ m @ step / 4**batch
    got = (ls.second_moment_operator(h, lr, batch, replacement=True) @ m.ravel()).reshape(3, 3)
    np.testing.assert_allclose(got, want, atol=1e-13)


@pytest.mark.parametrize("batch", [1, 3, 6])
def test_threshold_is_where_the_radius_crosses_one(batch):
    h = _hessians()
    eta = ls.stability_threshold(h, batch)
    assert ls.mean_square_radius(h, 0.999 * eta, batch) < 1 < ls.mean_square_radius(h, 1.001 * eta, batch)
    edge = 2 / np.linalg.eigvalsh(h.mean(axis=0))[-1]
    assert eta <= edge * (1 + 1e-12)
    if batch == 6:  # the full batch is GD: Cohen et al.'s 2 / lambda_max
        assert eta == pytest.approx(edge, rel=1e-10)


def test_smaller_batches_and_less_coherence_lower_the_boundary():
    n = 12
    for group in (1, 4):
        etas = [ls.stability_threshold(quadratic.Problem.coherent(n, group).hessians, b) for b in (1, 2, 4, 12)]
        assert etas == sorted(etas) and etas[-1] == pytest.approx(1.0)
    # every sample the same: SGD is GD at every batch size
    assert ls.stability_threshold(quadratic.Problem.coherent(n, n).hessians, 1) == pytest.approx(1.0)
    one = [ls.stability_threshold(quadratic.Problem.coherent(n, g).hessians, 1) for g in (1, 3, 6, 12)]
    assert one == sorted(one)


def test_the_null_space_of_the_hessian_is_ignored():
    """Flat directions (a manifold of minima) are neutral, not unstable: the radius is on the range of H."""
    h = np.zeros((3, 4, 4))
    h[:, :2, :2] = _hessians(n=3, d=2)
    assert ls.mean_square_radius(h, 0.01, 1) < 1


def test_second_moment_matches_simulated_sgd_exactly_in_expectation():
    """The quadratic simulator's SGD averaged over its schedule equals T^t(M0): with every batch of a small
    problem enumerated through many seeds, the sample mean agrees within Monte Carlo error."""
    p = quadratic.Problem.coherent(6, 2)
    theta0 = np.ones((4000, p.d)) / np.sqrt(p.d)
    lr, batch, steps = 0.3, 2, 6
    traj = quadratic.simulate(p, algorithm="sgd", theta0=theta0, lr=lr, steps=steps, batch_size=batch, seed=3)
    sq = traj.observables["norm_sq"][:, -1]
    pred = np.trace(ls.second_moment(p.hessians, lr, batch, np.outer(theta0[0], theta0[0]), steps)[-1])
    assert abs(sq.mean() - pred) < 4 * sq.std() / np.sqrt(sq.size)


def test_bad_input():
    with pytest.raises(ValueError, match="batch_size"):
        ls.stability_threshold(_hessians(), 7)
    with pytest.raises(ValueError, match="hessians"):
        ls.mean_square_radius(np.ones((3, 2)), 0.1, 1)
    with pytest.raises(ValueError, match="group"):
        quadratic.Problem.coherent(5, 6)
