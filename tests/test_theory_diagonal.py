"""Predictions for diagonal networks against independent references (scipy), plus properties."""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import optimize

from solvable.theory import diagonal as th
from solvable.theory.convex import SolverError


def problem(seed, n=8, d=20):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = np.zeros(d)
    w[:2] = [1.0, -0.5]
    return X, X @ w


def test_q_closed_form_values():
    # q(0) = 0; q(2) = 2 - sqrt(8) + 2 asinh(1)
    assert th.q(0.0) == 0.0
    assert th.q(2.0) == pytest.approx(2 - np.sqrt(8) + 2 * np.arcsinh(1.0), rel=1e-15)
    # small z: q ~ z^2/4 without cancellation
    assert th.q(1e-8) == pytest.approx(1e-16 / 4, rel=1e-10)


@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3), st.floats(0.0, 1.0))
def test_q_is_convex(a, b, lam):
    lhs = th.q(lam * a + (1 - lam) * b)
    rhs = lam * th.q(a) + (1 - lam) * th.q(b)
    assert lhs <= rhs + 1e-9 * (1 + abs(rhs))


@given(st.floats(-1e4, 1e4).filter(lambda z: z != 0))
def test_q_is_minimised_at_zero_and_even(z):
    # q(z) ~ z^2/4 underflows to 0 below |z| ~ 1e-154: strictly positive only where representable
    assert th.q(z) > 0 if abs(z) > 1e-150 else th.q(z) >= 0
    assert th.q(z) == pytest.approx(th.q(-z), rel=1e-14)


@given(st.floats(1e-3, 1e2), st.integers(0, 3))
def test_q_alpha_limits(alpha, seed):
    w = np.random.default_rng(seed).standard_normal(5)
    # kernel regime: Q_alpha(w) -> ||w||^2 / (4 alpha^2) when |w| << alpha^2
    if alpha > 10:
        assert th.q_alpha(w, alpha) == pytest.approx(np.sum(w**2) / (4 * alpha**2), rel=1e-2)
    assert th.q_alpha(w, alpha) >= 0


def test_q_alpha_rich_limit():
    """Q_alpha(w) / log(1/alpha^2) -> ||w||_1 as alpha -> 0 (Woodworth et al. 2020, Thm 2)."""
    w = np.array([1.0, -0.5, 0.25])
    gaps = [abs(th.q_alpha(w, a) / np.log(1 / a**2) - 1.75) for a in (1e-4, 1e-8, 1e-16, 1e-64)]
    assert all(b < a for a, b in zip(gaps, gaps[1:])) and gaps[-1] < 0.02


def _dual_by_scipy(X, y, alpha):
    """Independent reference: the same dual, minimised by scipy's trust-region Newton.

    Written as sum 4 alpha^2 sinh(z/2)^2 (the constant 2 alpha^2 per coordinate dropped): in the form
    sum 2 alpha^2 cosh(z) the objective is ~1000 at alpha = 5 while the steps' gains are below its rounding, and
    trust-exact stops ("a bad approximation caused failure to predict improvement") at a residual of 9e-6,
    the stall theory.newton guards against."""
    a2 = alpha**2

    def f(nu):
        z = X.T @ nu
        return np.sum(4 * a2 * np.sinh(z / 2) ** 2) - y @ nu

    def g(nu):
        return X @ (2 * a2 * np.sinh(X.T @ nu)) - y

    def h(nu):
        z = X.T @ nu
        return (X * (2 * a2 * np.cosh(z))) @ X.T

    res = optimize.minimize(f, np.zeros(X.shape[0]), jac=g, hess=h, method="trust-exact", options={"gtol": 1e-13})
    w = 2 * a2 * np.sinh(X.T @ res.x)
    return w, np.linalg.norm(X @ w - y)


@pytest.mark.parametrize("alpha", [0.05, 0.3, 1.0, 5.0])
def test_implicit_bias_matches_scipy_reference(alpha):
    X, y = problem(0)
    sol = th.implicit_bias(X, y, alpha)
    ref, ref_residual = _dual_by_scipy(X, y, alpha)
    # scipy stops at a gradient (= residual) of at most ~1e-8 here; the difference is bounded by that
    # residual over the smallest curvature, so compare at 1e-6 relative
    assert np.linalg.norm(sol.x - ref) <= 1e-6 * np.linalg.norm(ref)
    assert np.linalg.norm(X @ sol.x - y) <= max(ref_residual, 1e-14)
    assert sol.kkt_residual < 1e-10


@given(st.integers(0, 10_000), st.floats(1e-4, 1e2))
def test_implicit_bias_interpolates_with_small_kkt(seed, alpha):
    X, y = problem(seed, n=5, d=12)
    sol = th.implicit_bias(X, y, alpha)
    assert np.linalg.norm(X @ sol.x - y) <= 1e-9 * np.linalg.norm(y)
    assert sol.kkt_residual < 1e-8
    # minimality: feasible perturbations along the null space do not decrease Q_alpha
    null = np.linalg.svd(X)[2][X.shape[0]:]
    for v in null[:3]:
        for t in (1e-3, -1e-3):
            assert th.q_alpha(sol.x + t * v, alpha) >= sol.value - 1e-12 * (1 + sol.value)


def test_min_l1_matches_scipy_linprog():
    X, y = problem(1)
    d = X.shape[1]
    # basis pursuit as an LP in (w+, w-) >= 0: independent of cvxpy
    res = optimize.linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=y, bounds=(0, None), method="highs")
    ref = res.x[:d] - res.x[d:]
    sol = th.min_l1_interpolator(X, y)
    assert sol.value == pytest.approx(np.abs(ref).sum(), rel=1e-8)
    np.testing.assert_allclose(sol.x, ref, atol=1e-7)
    assert sol.kkt_residual < 1e-7


def test_min_l2_is_the_pseudo_inverse():
    X, y = problem(2)
    sol = th.min_l2_interpolator(X, y)
    np.testing.assert_allclose(sol.x, np.linalg.pinv(X) @ y, rtol=1e-10)
    assert sol.kkt_residual < 1e-12


def test_limits_of_the_potential_minimiser():
    X, y = problem(3)
    l1 = th.min_l1_interpolator(X, y).x
    l2 = th.min_l2_interpolator(X, y).x
    assert np.linalg.norm(th.implicit_bias(X, y, 1e-6).x - l1) < 1e-3 * np.linalg.norm(l1)
    assert np.linalg.norm(th.implicit_bias(X, y, 1e2).x - l2) < 1e-6 * np.linalg.norm(l2)


def test_infeasible_programs_raise_with_status():
    X = np.ones((3, 2))
    y = np.array([1.0, 2.0, 3.0])  # not in the range of X
    with pytest.raises(SolverError) as info:
        th.min_l2_interpolator(X, y)
    assert info.value.status == "infeasible"
    with pytest.raises(SolverError):
        th.min_l1_interpolator(X, y)
    with pytest.raises(SolverError):
        th.implicit_bias(X, y, 1.0)


@pytest.mark.parametrize("args, match", [
    ((np.ones(3), np.ones(3), 1.0), "X must be 2-D"),
    ((np.ones((3, 2)), np.ones(2), 1.0), "y must have length"),
    ((np.ones((3, 2)), np.ones(3), -1.0), "alpha must lie in"),
    ((np.ones((3, 2)), np.ones(3), [1.0, 2.0, 3.0]), "per-coordinate alpha"),
    ((np.full((3, 2), np.nan), np.ones(3), 1.0), "X must be finite"),
])
def test_bad_input_names_the_argument(args, match):
    with pytest.raises(ValueError, match=match):
        th.implicit_bias(*args)


@pytest.mark.parametrize("seed", [0, 1])
def test_kernel_correction_matches_the_convex_program(seed):
    """w_alpha - w_2 = c / alpha^4 + O(alpha^-8): the relative gap falls like alpha^-4."""
    X, y = problem(seed, n=10, d=30)
    c = th.kernel_correction(X, y)
    w2 = th.min_l2_interpolator(X, y).x
    gaps = []
    for alpha in (2.0, 4.0, 8.0):
        w = th.implicit_bias(X, y, alpha).x
        gaps.append(np.linalg.norm(w - w2 - c / alpha**4) / np.linalg.norm(c / alpha**4))
    assert gaps[-1] < 1e-4
    slope = np.polyfit(np.log([2.0, 4.0, 8.0]), np.log(gaps), 1)[0]
    assert abs(slope + 4) < 0.3
    assert np.abs(X @ c).max() < 1e-12  # the correction lies in the null space


def test_azulay_parameterisation_and_potential():
    """Azulay et al. 2021: u0 v0 = alpha; q_k' = arcsinh(2x/k)/2 (finite differences); q_k is half this library's
    potential at alpha'^2 = k/4; the conversion to the library's (alpha, shape) reproduces (u0, v0)."""
    from solvable.sims import diagonal as sim

    a, s = 0.03, np.array([-0.7, 0.0, 0.4, 0.95])
    u0, v0 = th.azulay_init(a, s)
    np.testing.assert_allclose(u0 * v0, a, rtol=1e-14)
    k = th.azulay_k(a, s)
    np.testing.assert_allclose(k, 4 * a * (1 + s**2) / (1 - s**2), rtol=1e-14)
    x, h = np.linspace(-2, 2, 9), 1e-6
    for kk in k:
        fd = (th.azulay_q(x + h, kk) - th.azulay_q(x - h, kk)) / (2 * h)
        np.testing.assert_allclose(fd, 0.5 * np.arcsinh(2 * x / kk), atol=1e-8)
        np.testing.assert_allclose(th.azulay_q(x, kk), 0.5 * (kk / 4) * th.q(x / (kk / 4)), atol=1e-14)
    al, sl = th.azulay_to_library(a, s)
    problem = sim.Problem.random(4, 6, 1, seed=0)
    for b in range(len(s)):
        z = np.asarray(sim.shaped_initial_state(problem, al[b], float(sl[b]))[0])[0] if sl[b] else None
        if z is not None:
            np.testing.assert_allclose([z[0], z[6]], [u0[b], v0[b]], rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        th.azulay_init(a, 1.0)


def test_effective_alpha_from_the_iterates_of_gd():
    """GD's u v is multiplied by 1 - 4 lr^2 g^2 at every step: the product over the recorded iterates is the
    measured alpha_inf to round-off, and Even et al.'s leading order lies within its bound."""
    from solvable.sims import diagonal as sim

    problem = sim.Problem.random(6, 12, 2, seed=1)
    steps, lr, alpha = 3000, 0.1, 0.2
    traj = sim.simulate(problem, alpha, "gd", lr=lr, steps=steps, record_w=True, t_eval=np.arange(steps + 1))
    k = int(traj.stop_step[0])
    pred = th.effective_alpha_from_run(problem.X, problem.y, traj.observables["w"][0][:k], lr)
    measured = np.log(th.effective_alpha(traj.final["u"][0], traj.final["v"][0]) / alpha)
    np.testing.assert_allclose(measured, pred["log_ratio"], atol=1e-12)
    assert np.all(np.abs(pred["leading"] - pred["log_ratio"]) <= pred["leading_bound"])
    assert np.max(np.abs(pred["leading"] - pred["log_ratio"])) > 0  # the bound is not vacuous here
    with pytest.raises(ValueError, match="batch_size"):
        th.effective_alpha_from_run(problem.X, problem.y, traj.observables["w"][0][:k], lr, batch_size=2)
    with pytest.raises(ValueError, match="too large"):
        th.effective_alpha_from_run(problem.X, problem.y, traj.observables["w"][0][:k], 1e3)


def _two_point_steps(X, y, alpha, lr, steps, a, b, eps_of):
    """A plain NumPy loop of theta <- theta - lr (a grad L(theta) + b grad L(theta + eps grad L)) on u, v (written
    here, not the library's rules)."""
    n, d = X.shape
    u, v = np.full(d, alpha), np.full(d, alpha)
    ws = []

    def grads(u, v):
        g = X.T @ (X @ (u * u - v * v) - y) / n
        return 2 * u * g, -2 * v * g

    for _ in range(steps):
        ws.append(u * u - v * v)
        gu, gv = grads(u, v)
        e = eps_of(gu, gv)
        hu, hv = grads(u + e * gu, v + e * gv)
        u, v = u - lr * (a * gu + b * hu), v - lr * (a * gv + b * hv)
    return np.array(ws), u, v


@pytest.mark.parametrize("rule, kw", [("gr", dict(lam=0.1, eps=0.1)), ("gr", dict(lam=0.05, eps=1e-3)),
                                      ("sam", dict(rho=0.07)), ("sam_normalized", dict(rho=0.02))])
def test_two_point_effective_alpha_against_a_plain_loop(rule, kw):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((6, 12))
    y = X @ np.concatenate([[1.0, -0.5], np.zeros(10)])
    alpha, lr, steps = 0.2, 0.03, 3000
    if rule == "gr":
        a, b = 1 - kw["lam"] / kw["eps"], kw["lam"] / kw["eps"]
        eps_of = lambda gu, gv: kw["eps"]  # noqa: E731
    elif rule == "sam":
        a, b, eps_of = 0.0, 1.0, (lambda gu, gv: kw["rho"])
    else:
        a, b = 0.0, 1.0
        eps_of = lambda gu, gv: kw["rho"] / np.sqrt(np.sum(gu * gu) + np.sum(gv * gv))  # noqa: E731
    ws, u, v = _two_point_steps(X, y, alpha, lr, steps, a, b, eps_of)
    pred = th.effective_alpha_two_point(X, y, ws, lr, alpha, rule, **kw)
    np.testing.assert_allclose(pred["log_ratio"], np.log(np.sqrt(u * v) / alpha), atol=1e-10)
    rest = np.abs(pred["log_ratio"] - pred["first_order"] - pred["second_order"])
    assert np.all(rest <= pred["remainder_bound"] * (1 + 1e-9) + 1e-14)


def test_two_point_at_zero_radius_is_gd():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((5, 9))
    y = rng.standard_normal(5)
    ws = rng.standard_normal((50, 9)) * 0.1
    gd = th.effective_alpha_from_run(X, y, ws, 0.02)
    sam = th.effective_alpha_two_point(X, y, ws, 0.02, 0.3, "sam", rho=0.0)
    np.testing.assert_allclose(sam["log_ratio"], gd["log_ratio"], rtol=1e-13, atol=1e-16)
    with pytest.raises(ValueError, match="rule must be"):
        th.effective_alpha_two_point(X, y, ws, 0.02, 0.3, "adam")
    with pytest.raises(ValueError, match="needs lam > 0"):
        th.effective_alpha_two_point(X, y, ws, 0.02, 0.3, "gr", lam=0.1)


def _all_batches(X, y, ws, lr, B):
    """Every batch of B distinct samples at every iterate: the exact expectations over SGD's draw, by enumeration."""
    n = X.shape[0]
    R = ws @ X.T - y
    logs = []
    for batch in combinations(range(n), B):
        idx = list(batch)
        g = R[:, idx] @ X[idx] / B  # (steps, d)
        logs.append(0.5 * np.log1p(-4 * lr**2 * g * g))
    logs = np.array(logs)  # (batches, steps, d)
    return logs.mean(axis=0).sum(axis=0), logs.var(axis=0).sum(axis=0)


@pytest.mark.parametrize("B", [1, 2, 3, 6])
def test_effective_alpha_sgd_matches_the_enumerated_draw(B):
    rng = np.random.default_rng(B)
    n, d, lr = 6, 5, 0.05
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    ws = 0.3 * rng.standard_normal((7, d))
    pred = th.effective_alpha_sgd(X, y, ws, lr, B)
    # the leading order is E over the draw of -(1/2) x, x = 4 lr^2 g_B^2, summed along the iterates: enumerate it
    R = ws @ X.T - y
    lead = np.mean([-2 * lr**2 * np.sum((R[:, list(b)] @ X[list(b)] / B) ** 2, axis=0)
                    for b in combinations(range(n), B)], axis=0)
    np.testing.assert_allclose(pred["leading"], lead, rtol=1e-12, atol=1e-15)
    assert pred["c_B"] == pytest.approx((n - B) / (B * (n - 1)))
    # the exact expectation of (1/2) ln(1 - x) and its variance lie within the returned bounds
    mean, var = _all_batches(X, y, ws, lr, B)
    assert np.all(np.abs(mean - pred["leading"]) <= pred["remainder_bound"] * (1 + 1e-9) + 1e-15)
    assert np.all(var <= pred["variance_bound"] * (1 + 1e-9) + 1e-15)
    assert np.all(pred["remainder_bound"] > 0) and np.all(pred["variance_bound"] >= 0)


def test_effective_alpha_sgd_is_gd_at_a_full_batch_and_the_sample_average_at_one():
    rng = np.random.default_rng(4)
    n, d, lr = 8, 6, 0.03
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    ws = 0.2 * rng.standard_normal((20, d))
    full = th.effective_alpha_sgd(X, y, ws, lr, n)
    np.testing.assert_allclose(full["leading"], th.effective_alpha_from_run(X, y, ws, lr)["leading"], rtol=1e-12)
    assert np.all(full["noise_part"] == 0) and np.all(full["variance_bound"] == 0)  # no draw, no martingale
    one = th.effective_alpha_sgd(X, y, ws, lr, 1)
    exact = th.effective_alpha_from_run(X, y, ws, lr, batch_size=1)
    assert np.all(np.abs(exact["log_ratio"] - one["leading"]) <= one["remainder_bound"])
    assert np.all(exact["variance"] <= one["variance_bound"])


def test_effective_alpha_sgd_loss_integral_with_rows_of_equal_norm():
    rng = np.random.default_rng(5)
    n, d, lr, B = 9, 12, 0.02, 3
    X = rng.standard_normal((n, d))
    X *= 2.0 / np.linalg.norm(X, axis=1, keepdims=True)  # R^2 = 4
    y = rng.standard_normal(n)
    ws = 0.2 * rng.standard_normal((30, d))
    p = th.effective_alpha_sgd(X, y, ws, lr, B)
    L = np.sum((ws @ X.T - y) ** 2, axis=1) / (2 * n)
    assert p["loss_integral"] == pytest.approx(lr * L.sum(), rel=1e-12)
    assert p["row_norm_sq"] == pytest.approx(4.0)
    trace = np.sum(p["gd_part"]) - 4 * lr * p["c_B"] * p["row_norm_sq"] * p["loss_integral"]
    assert trace == pytest.approx(np.sum(p["leading"]), rel=1e-12)


@pytest.mark.parametrize("kwargs, match", [({"batch_size": 0}, "batch_size"), ({"batch_size": 7}, "batch_size"),
                                           ({"batch_size": True}, "batch_size"), ({"lr": 0.0}, "lr"),
                                           ({"lr": 1e3}, "too large")])
def test_effective_alpha_sgd_refuses_bad_input(kwargs, match):
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 4)), rng.standard_normal(6)
    args = {"lr": 0.01, "batch_size": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        th.effective_alpha_sgd(X, y, np.zeros((3, 4)), args["lr"], args["batch_size"])
    with pytest.raises(ValueError, match="ws"):
        th.effective_alpha_sgd(X, y, np.zeros((3, 5)), 0.01, 2)
