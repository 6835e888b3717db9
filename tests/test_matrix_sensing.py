"""Matrix sensing: operators, rules and predictions against independent references."""

from __future__ import annotations

import numpy as np
import pytest

from solvable.sims.engine import flow
from solvable.sims import matrix_sensing as ms
from solvable.sims.matrix_sensing.measure import crossing_times
from solvable.theory import matrix_sensing as th


def test_operators_are_near_isometric():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((8, 6))
    for operator, m in (("gaussian", 3000), ("completion", 40)):
        draws = [ms.Problem.random(8, 6, 2, m=m, operator=operator, seed=s).measure(M) for s in range(200)]
        mean = np.mean([np.sum(d**2) for d in draws])
        # E||A(M)||^2 = ||M||_F^2; 200 draws: standard error ~ 1/sqrt(200 m') of the mean, well under 5 %
        assert abs(mean / np.sum(M**2) - 1) < 0.05, operator


def test_completion_operator_equals_its_dense_form():
    """The mask operator (no dense A) gives the loss and gradient of the equivalent dense operator."""
    p = ms.Problem.random(6, 5, 2, m=12, operator="completion", seed=3)
    scale = 1 / np.sqrt(p.m / 30)
    rows, cols = np.nonzero(p.mask)
    A = np.zeros((p.m, 6, 5))
    A[np.arange(p.m), rows, cols] = scale
    dense = ms.Problem(M_star=p.M_star, operator="gaussian", A=A, y=p.y)
    state = tuple(np.random.default_rng(0).standard_normal(x.shape) for x in ms.model(p, [0.3, 1.0], k=3).state0)
    l1, g1 = ms.model(p, [0.3, 1.0], k=3).loss_grad(state)
    l2, g2 = ms.model(dense, [0.3, 1.0], k=3).loss_grad(state)
    np.testing.assert_allclose(l1, l2, rtol=1e-12)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_sgd_weights_reproduce_the_full_loss():
    p = ms.Problem.random(5, 5, 2, m=20, symmetric=True, operator="symmetric", seed=0)
    m = ms.model(p, [0.5, 0.7], k=3)
    uniform = np.full((2, p.m), 1 / p.m)
    full, gf = m.loss_grad(m.state0)
    weighted, gw = m.loss_grad(m.state0, uniform)
    np.testing.assert_allclose(full, weighted, rtol=1e-12)
    np.testing.assert_allclose(gf[0], gw[0], rtol=1e-12)


def test_l1_subgradient_matches_finite_differences_away_from_kinks():
    p = ms.Problem.random(5, 5, 2, m=15, symmetric=True, operator="symmetric", seed=2)
    m = ms.model(p, [0.5], k=2, loss="l1")
    X = np.random.default_rng(4).standard_normal((1, 5, 2))
    _, (g,) = m.loss_grad((X,))
    d = np.random.default_rng(5).standard_normal(X.shape)
    h = 1e-7
    fd = (m.loss_grad((X + h * d,))[0] - m.loss_grad((X - h * d,))[0]) / (2 * h)
    np.testing.assert_allclose(np.sum(g * d), fd, rtol=1e-6)


def test_scaled_direction_is_the_preconditioned_gradient():
    rng = np.random.default_rng(0)
    X, G = rng.standard_normal((2, 6, 3)), rng.standard_normal((2, 6, 3))
    (d,) = flow.ScaledGD(lr=0.1, damping=0.3).precondition((X,), (G,))
    for b in range(2):
        ref = G[b] @ np.linalg.inv(X[b].T @ X[b] + 0.3 * np.eye(3))
        np.testing.assert_allclose(d[b], ref, rtol=1e-12)
    F, H = rng.standard_normal((1, 5, 2)), rng.standard_normal((1, 4, 2))
    dF, dH = flow.ScaledGD(lr=0.1, damping=0.0).precondition((F, H), (np.ones_like(F), np.ones_like(H)))
    np.testing.assert_allclose(dF[0], np.ones((5, 2)) @ np.linalg.inv(H[0].T @ H[0]), rtol=1e-10)
    np.testing.assert_allclose(dH[0], np.ones((4, 2)) @ np.linalg.inv(F[0].T @ F[0]), rtol=1e-10)


def test_scaledgd_and_subgradient_equal_plain_loops():
    p = ms.Problem.random(6, 6, 2, m=60, symmetric=True, operator="symmetric", seed=1)
    traj = ms.simulate(p, 0.1, "scaledgd", k=3, lr=0.2, damping=0.05, steps=30, loss_scale=0.25, t_eval=[0, 30])
    X = ms.initial_state(p, 0.1, k=3)[0][0]
    A = p.A.reshape(p.m, -1)
    for _ in range(30):
        G = (A.T @ (A @ (X @ X.T).ravel() - p.y)).reshape(6, 6) * 0.5  # 2 s A*(r), s = 1/4
        X = X - 0.2 * ((G + G.T) @ X) @ np.linalg.inv(X.T @ X + 0.05 * np.eye(3))
    np.testing.assert_allclose(traj.final["X"][0], X, rtol=1e-10, atol=1e-13)
    sub = ms.simulate(p, 0.1, "subgradient", k=3, loss="l1", lr=0.1, decay=0.9, steps=20, t_eval=[0, 20])
    X = ms.initial_state(p, 0.1, k=3)[0][0]
    for t in range(20):
        G = (A.T @ np.sign(A @ (X @ X.T).ravel() - p.y)).reshape(6, 6) / np.sqrt(p.m)
        X = X - 0.1 * 0.9**t * (G + G.T) @ X
    np.testing.assert_allclose(sub.final["X"][0], X, rtol=1e-10, atol=1e-13)
    assert sub.meta["algorithm"] == "subgradient" and sub.meta["decay"] == 0.9
    assert traj.meta["algorithm"] == "scaledgd" and traj.meta["damping"] == 0.05


@pytest.mark.parametrize("kwargs, match", [
    (dict(algorithm="gd", lr=0.1, steps=5, damping=0.1), "damping applies to algorithm 'scaledgd'"),
    (dict(algorithm="gd", lr=0.1, steps=5, decay=0.9), "decay applies to algorithm 'subgradient'"),
    (dict(algorithm="flow", loss="l1"), "non-smooth"),
    (dict(algorithm="scaledgd", lr=0.1, steps=5), "damping"),
    (dict(algorithm="scaledgd", lr=0.1, steps=5, damping=0.1, factorisation="deep"), "not factorisation='deep'"),
    (dict(algorithm="gd", lr=0.1, steps=5, beta=0.1), "beta"),
    (dict(algorithm="gd", lr=0.1, steps=5, loss="l3"), "loss"),
    (dict(algorithm="gd", lr=0.1, steps=5, init="spectral"), "init"),
])
def test_simulate_refuses_what_does_not_apply(kwargs, match):
    p = ms.Problem.random(5, 5, 2, m=20, symmetric=True, operator="symmetric", seed=0)
    with pytest.raises(ValueError, match=match):
        ms.simulate(p, 0.1, k=2, **kwargs)


def test_problem_random_refuses_bad_arguments():
    with pytest.raises(ValueError, match="symmetric=True needs n1 == n2"):
        ms.Problem.random(4, 5, 2, m=10, symmetric=True)
    with pytest.raises(ValueError, match="m must be None"):
        ms.Problem.random(4, 4, 2, m=10, operator="population")
    with pytest.raises(ValueError, match="m .the number of measurements. is required"):
        ms.Problem.random(4, 4, 2)
    with pytest.raises(ValueError, match="kappa"):
        ms.Problem.random(4, 4, 2, m=10, kappa=0.5)
    with pytest.raises(ValueError, match="factorisation='symmetric'"):
        ms.simulate(ms.Problem.random(4, 4, 2, m=10), 0.1, k=2, factorisation="symmetric")


def test_initial_draw_is_independent_of_the_problem_draw():
    """Same seed, same shapes: the start must not lie in M*'s column space."""
    p = ms.Problem.random(20, 20, 3, symmetric=True, operator="population", seed=0)
    X = ms.initial_state(p, 1.0, k=3, seed=0)[0][0]
    U = np.linalg.eigh(p.M_star)[1][:, -3:]
    outside = np.linalg.norm(X - U @ (U.T @ X)) / np.linalg.norm(X)
    assert outside > 0.5  # a random 3-frame in R^20 has ~ sqrt(17/20) of its mass outside


def test_mode_energy_and_learning_time_against_an_ode_solver():
    from scipy.integrate import solve_ivp

    for sigma, s0, s in ((1.0, 1e-6, 0.5), (0.25, 1e-4, 0.25)):
        t = np.linspace(0, 10 / sigma, 50)
        sol = solve_ivp(lambda _, e: -8 * s * (e - sigma) * e, (0, t[-1]), [s0], t_eval=t, rtol=1e-12, atol=1e-16)
        np.testing.assert_allclose(th.mode_energy(sigma, s0, t, s), sol.y[0], rtol=1e-8)
        t_half = th.learning_time(sigma, s0, 0.5, s)
        np.testing.assert_allclose(th.mode_energy(sigma, s0, t_half, s), sigma / 2, rtol=1e-12)


def test_aligned_flow_follows_the_logistic_modes():
    sigma = np.array([1.0, 0.3])
    p = ms.Problem.random(6, 6, 2, symmetric=True, operator="population", singular_values=sigma, seed=0)
    t = np.linspace(0, 40, 401)
    traj = ms.simulate(p, 1e-3, k=2, init="aligned", t_max=40.0, t_eval=t, rtol=1e-11, loss_tol=0.0)
    np.testing.assert_allclose(traj.observables["sv"][0][:, :2], th.mode_energy(sigma, 1e-6, t[:, None]),
                               rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(crossing_times(t, traj.observables["sv"][0], sigma), th.learning_time(sigma, 1e-6),
                               rtol=1e-7)


def test_greedy_stages_in_the_population_case_match_the_computed_procedure():
    """The closed-form GLRL stages (truncated eigendecompositions) equal GLRL run on the identity operator."""
    p = ms.Problem.random(5, 5, 3, symmetric=True, operator="population", singular_values=[1.0, 0.6, 0.3], seed=0)
    closed = th.greedy_low_rank(p.M_star, max_rank=3)
    A = np.eye(25).reshape(25, 5, 5)
    computed = th.greedy_low_rank(A=A, y=p.M_star.ravel(), max_rank=3)
    assert computed.converged.all()
    np.testing.assert_allclose(computed.M, closed.M, atol=1e-6)


def test_min_nuclear_norm_is_certified_and_recovers_with_enough_measurements():
    p = ms.Problem.random(8, 7, 1, m=50, seed=0)
    sol = th.min_nuclear_norm(p.A, p.y)
    assert sol.kkt_residual < 1e-6
    np.testing.assert_allclose(sol.x, p.M_star, atol=1e-5)
    comp = ms.Problem.random(10, 10, 1, m=70, operator="completion", seed=1)
    sol = th.min_nuclear_norm(mask=comp.mask, y=comp.M_star[comp.mask])
    np.testing.assert_allclose(sol.x, comp.M_star, atol=1e-5)
    with pytest.raises(ValueError, match="give A or mask"):
        th.min_nuclear_norm(p.A, p.y, mask=comp.mask)


def test_commuting_limit_against_cvxpy_entropy_program():
    import cvxpy as cp

    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 7))
    y = a @ rng.uniform(0.2, 1.0, 7)
    for alpha in (0.3, 1e-2):
        ours = th.commuting_limit(a, y, alpha)
        w = cp.Variable(7, nonneg=True)
        objective = cp.sum(-cp.entr(w)) - (2 * np.log(alpha) + 1) * cp.sum(w)
        value = cp.Problem(cp.Minimize(objective), [a @ w == y]).solve(solver="CLARABEL")
        # Clarabel's exponential cone is accurate to ~1e-5 here; the Newton dual is exact to round-off,
        # so it must be at least as good (up to the solver's primal residual) and close to it
        assert ours.value <= value + 1e-6
        assert np.linalg.norm(ours.x - w.value) < 1e-4 * np.linalg.norm(ours.x)
        np.testing.assert_allclose(a @ ours.x, y, rtol=1e-12)


def test_aligned_start_with_a_repeated_singular_value_does_not_stall():
    """kappa = 1: LAPACK's singular vectors of the repeated value hold round-off zeros, which pure relative
    error control never let move (found by `solvable check matrix_sensing.reduced_equals_full`)."""
    problem = ms.Problem.random(8, 8, rank=3, symmetric=True, operator="population", kappa=1.0, seed=0)
    kw = dict(k=1, factorisation="symmetric", init="aligned", t_max=100.0, t_eval=np.linspace(0, 100, 11)[1:],
              rtol=1e-10, loss_tol=0.0, record_M=True)
    full = ms.simulate(problem, [0.1, 1e-3], coordinates="full", **kw)
    red = ms.simulate(problem, [0.1, 1e-3], **kw)
    assert list(full.status) == ["out_of_time"] * 2 and int(full.stop_step.max()) < 2000
    assert full.meta["atol"] == 1e-17  # 1e-14 min(1, alpha)
    np.testing.assert_allclose(full.observables["M"], red.observables["M"], atol=1e-8)


def test_a_window_fit_of_two_spurious_modes_reads_between_their_rates():
    """matrix_sensing.overparam_slowdown's interval for (c): the error of two modes decaying at r1 < r2 (full seed 5's
    spurious eigenvalues 1.05-1.1 apart), fitted log-linearly over [1e-12, 1e-5], reads a rate between r1 and r2, and
    further above r1 than the 1 % faster-component budget 0.01 / ln(1e7) that the asymptote alone allowed."""
    from solvable.sims.matrix_sensing.measure import linear_rate

    r1, r2 = 7.1e-4, 7.1e-4 * 1.07
    t = np.arange(0, 60_000, 10.0)
    err = np.sqrt(0.5 * np.exp(-2 * r1 * t) + 0.5 * np.exp(-2 * r2 * t)) * 1e-3
    rate, count = linear_rate(t, err, 1e-12, 1e-5)
    assert count >= 5 and r1 < rate < r2
    assert rate / r1 - 1 > 0.01 / np.log(1e7)
