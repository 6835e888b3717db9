"""Reduced coordinates: the Rosenbrock-W method, the stiff integrator, and each family's exact reduction
against its full simulation."""

from __future__ import annotations


import numpy as np
import pytest

from solvable.sims import diagonal

from solvable.sims.engine import flow
from solvable.sims.engine.rosenbrock import ROS34PW2, EigenSolver, RosenbrockTableau, rosenbrock_step


# --- the method ------------------------------------------------------------------------------------------------

def _potential_flow(A: np.ndarray):
    """y' = -grad Phi(y), Phi = sum log cosh(A y) + |y|^2/2: a nonlinear flow with a symmetric Jacobian."""
    def f(y):
        return -(np.tanh(y @ A.T) @ A) - y

    def jac(y):
        sech2 = 1.0 / np.cosh(y @ A.T) ** 2  # (B, m)
        return -(A.T[None] * sech2[:, None, :]) @ A - np.eye(A.shape[1])[None]
    return f, jac


def _global_error(h: float, jac_kind: str) -> float:
    rng = np.random.default_rng(0)
    A = rng.standard_normal((6, 4))
    f, jac = _potential_flow(A)
    y = np.array([[0.3, -0.2, 0.5, 0.1]])
    ref = y.copy()
    # reference: many small steps of the same method with the exact Jacobian (order 3: error ~ (1e-3)^3)
    for _ in range(2000):
        solver = EigenSolver.of(jac(ref))
        hc = np.full((1, 1), 1.0 / 2000)
        solver.set_step(hc * ROS34PW2.diagonal)
        ref, _ = rosenbrock_step(ROS34PW2, f, solver, ref, hc, f(ref))
    n = int(round(1.0 / h))
    for k in range(n):
        J = {"exact": jac(y), "zero": np.zeros((1, 4, 4)), "stale": jac(np.zeros_like(y)) * 1.5}[jac_kind]
        solver = EigenSolver.of(J)
        hc = np.full((1, 1), h)
        solver.set_step(hc * ROS34PW2.diagonal)
        y, _ = rosenbrock_step(ROS34PW2, f, solver, y, hc, f(y))
    return float(np.abs(y - ref).max())


@pytest.mark.parametrize("jac_kind", ["exact", "zero", "stale"])
def test_ros34pw2_is_third_order_with_any_jacobian(jac_kind):
    """A W-method keeps its order whatever the matrix in I - h gamma J (Rang & Angermann 2005): with the exact
    Jacobian, with J = 0 (it is then an explicit Runge-Kutta method) and with a stale, scaled one."""
    errs = [_global_error(h, jac_kind) for h in (0.04, 0.02, 0.01)]
    slopes = np.diff(np.log(errs)) / np.log(0.5)
    assert np.all(slopes > 2.7), (jac_kind, errs, slopes)


def test_tableau_checks_raise():
    with pytest.raises(ValueError, match="order-1 condition"):
        RosenbrockTableau(alpha=ROS34PW2.alpha, gamma=ROS34PW2.gamma, b=(0.3,) + ROS34PW2.b[1:],
                          b_hat=ROS34PW2.b_hat, order=3, error_order=2, name="bad")
    with pytest.raises(ValueError, match="constant diagonal"):
        g = [list(r) for r in ROS34PW2.gamma]
        g[1][1] = 0.5
        RosenbrockTableau(alpha=ROS34PW2.alpha, gamma=tuple(map(tuple, g)), b=ROS34PW2.b, b_hat=ROS34PW2.b_hat,
                          order=3, error_order=2)


def test_eigen_solver_solves_the_stage_system():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((3, 5, 5))
    J = -(M @ M.transpose(0, 2, 1))
    v = rng.standard_normal((3, 5))
    hg = np.array([[0.1], [2.0], [50.0]])
    solver = EigenSolver.of(J)
    solver.set_step(hg)
    want = np.stack([np.linalg.solve(np.eye(5) / hg[b, 0] - J[b], v[b]) for b in range(3)])
    np.testing.assert_allclose(solver.solve(v), want, rtol=1e-10, atol=1e-12)


def test_flow_validates_refresh_and_tableau():
    with pytest.raises(ValueError, match="refresh"):
        flow.Flow(refresh=0)
    with pytest.raises(TypeError, match="tableau"):
        flow.Flow(tableau="ros34pw2")


# --- diagonal networks ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def problem():
    return diagonal.Problem.random(20, 40, 3, seed=0)


def test_diagonal_jacobian_matches_finite_differences(problem):
    alpha = np.array([0.05, 0.7])
    m = diagonal.model(problem, alpha, coordinates="reduced")
    rng = np.random.default_rng(2)
    mu = 0.05 * rng.standard_normal((2, problem.n))
    J = m.jacobian((mu,), aux=m.aux)
    eps = 1e-6
    fd = np.empty_like(J)
    for k in range(problem.n):
        e = np.zeros(problem.n)
        e[k] = eps
        fp = -m.loss_grad((mu + e,), aux=m.aux)[1][0]
        fm = -m.loss_grad((mu - e,), aux=m.aux)[1][0]
        fd[:, :, k] = (fp - fm) / (2 * eps)
    np.testing.assert_allclose(J, fd, rtol=1e-6, atol=1e-9 * np.abs(J).max())
    np.testing.assert_allclose(J, J.transpose(0, 2, 1), atol=1e-14 * np.abs(J).max())


@pytest.mark.parametrize("shape", [0.0, 0.6])
def test_diagonal_reduced_equals_full(problem, shape):
    """Same flow, two coordinates: the recorded predictor and the final parameters agree to the integrators' rtol."""
    alpha = np.array([0.1, 0.6, 3.0])
    rtol = 1e-10
    kw = dict(t_max=1e4, t_eval=flow.log_times(1e4, 40), rtol=rtol, shape=shape, record_w=True)
    red = diagonal.simulate(problem, alpha, **kw)
    full = diagonal.simulate(problem, alpha, coordinates="full", **kw)
    assert red.meta["coordinates"] == "reduced" and full.meta["coordinates"] == "full"
    assert red.meta["method"] == "ros34pw2" and full.meta["method"] == "dopri5"
    assert set(red.status) == set(full.status) == {"converged"}
    # relative errors rtol per step on the factors, accumulated linearly: |dw| <= 2 steps rtol (u^2 + v^2)
    steps = np.maximum(red.stop_step, full.stop_step)[:, None, None]
    scale = 2 * alpha[:, None, None] ** 2 / np.sqrt(1 - shape**2) + np.abs(full.observables["w"])
    assert np.all(np.abs(red.observables["w"] - full.observables["w"]) <= 2 * steps * rtol * scale)
    w_bound = 2 * steps[:, 0] * rtol * (scale[:, -1] + np.abs(full.final["w"]))
    assert np.all(np.abs(red.final["w"] - full.final["w"]) <= w_bound)
    for k in set(full.final) - {"w"}:  # the factors, to a relative error rtol per step
        np.testing.assert_allclose(red.final[k], full.final[k], rtol=2 * rtol * steps.max())


def test_diagonal_per_coordinate_alpha(problem):
    rng = np.random.default_rng(3)
    a = np.exp(rng.uniform(np.log(1e-2), np.log(1.0), (2, problem.d)))
    red = diagonal.simulate(problem, a, t_max=1e4, rtol=1e-10)
    full = diagonal.simulate(problem, a, t_max=1e4, rtol=1e-10, coordinates="full")
    np.testing.assert_allclose(red.final["w"], full.final["w"], atol=1e-6)
    np.testing.assert_allclose(red.final["u"], full.final["u"], rtol=1e-5)


def test_diagonal_reduced_has_no_cancellation_floor(problem):
    """At large alpha, w = u^2 - v^2 loses digits (u, v ~ alpha, w ~ 1); -2 alpha^2 sinh(4 X^T mu) does not, so
    the reduced flow drives the loss far below the full path's floor."""
    alpha = 30.0
    red = diagonal.simulate(problem, alpha, t_max=50.0, rtol=1e-10, loss_tol=0.0)
    # the full path stalls on its floor with ever smaller steps: stop it after a budget of steps
    full = diagonal.simulate(problem, alpha, t_max=50.0, rtol=1e-10, loss_tol=0.0, coordinates="full",
                             max_steps=3000)
    assert red.status[0] == "out_of_time" and full.status[0] == "max_steps"

    def loss(w):
        r = problem.X @ w - problem.y
        return float(r @ r / (2 * problem.n))
    ref = float(np.mean(problem.y**2) / 2)
    assert loss(red.final["w"][0]) < 1e-24 * ref
    assert loss(full.final["w"][0]) > 1e3 * loss(red.final["w"][0])


def test_reduced_refuses_what_it_does_not_reduce(problem):
    with pytest.raises(ValueError, match="gradient flow only"):
        diagonal.simulate(problem, 0.1, "gd", lr=0.01, steps=10, coordinates="reduced")
    with pytest.raises(ValueError, match="Rosenbrock-W"):
        diagonal.simulate(problem, 0.1, flow.Flow(tableau=flow.DOPRI5), coordinates="reduced", t_max=1.0)
    with pytest.raises(ValueError, match="needs the model's Jacobian"):
        diagonal.simulate(problem, 0.1, flow.Flow(tableau=ROS34PW2), coordinates="full", t_max=1.0)
    with pytest.raises(ValueError, match="coordinates must be one of"):
        diagonal.simulate(problem, 0.1, coordinates="dual")
    # the discrete algorithms default to full coordinates
    assert diagonal.simulate(problem, 0.1, "gd", lr=0.01, steps=10).meta["coordinates"] == "full"


def test_reduced_reports_divergence_and_max_steps(problem):
    traj = diagonal.simulate(problem, [1e-3, 1.0], t_max=1e4, max_steps=30)
    assert set(traj.status) == {"max_steps"}
    assert np.all(traj.stop_step == 30)


# --- deep linear networks ------------------------------------------------------------------------------------

def test_deep_linear_modes_equal_the_layers_and_saxe():
    from solvable.sims import deep_linear
    from solvable.theory import deep_linear as th

    t = np.linspace(0, 15, 31)[1:]
    for hidden in ((), (6,), (6, 6)):
        problem = deep_linear.Problem.random(5, 4, hidden, seed=1)
        kw = dict(t_max=15.0, t_eval=t, rtol=1e-10)
        red = deep_linear.simulate(problem, [1e-3, 0.2], **kw)
        full = deep_linear.simulate(problem, [1e-3, 0.2], coordinates="full", **kw)
        assert red.meta["coordinates"] == "reduced" and full.meta["coordinates"] == "full"
        np.testing.assert_allclose(red.observables["modes"], full.observables["modes"], atol=1e-7)
        np.testing.assert_allclose(red.observables["loss"], full.observables["loss"], rtol=1e-6, atol=1e-13)
        for k in full.final:
            np.testing.assert_allclose(red.final[k], full.final[k], atol=1e-7)
        if len(hidden) == 1:  # depth 2: Saxe et al.'s closed form
            s = problem.svd()[1]
            pred = np.stack([th.saxe_mode(t, sk, 1e-3) for sk in s], axis=1)
            np.testing.assert_allclose(red.observables["modes"][0], pred, atol=1e-8)


def test_deep_linear_reduction_refusals():
    from solvable.sims import deep_linear

    problem = deep_linear.Problem.random(4, 3, (4,), seed=0)
    assert deep_linear.simulate(problem, 0.1, init="random", t_max=1.0).meta["coordinates"] == "full"
    assert deep_linear.simulate(problem, 0.1, "gd", lr=0.1, steps=5).meta["coordinates"] == "full"
    with pytest.raises(ValueError, match="init='aligned' or 'balanced'"):
        deep_linear.simulate(problem, 0.1, init="random", coordinates="reduced", t_max=1.0)
    with pytest.raises(ValueError, match="record_sharpness"):
        deep_linear.simulate(problem, 0.1, coordinates="reduced", record_sharpness=True, t_max=1.0)
    with pytest.raises(ValueError, match="gradient flow only"):
        deep_linear.simulate(problem, 0.1, "gd", lr=0.1, steps=5, coordinates="reduced")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 3))
    data = deep_linear.Problem.from_data(X, X @ rng.standard_normal((3, 2)), (3,))
    with pytest.raises(ValueError, match="has data"):
        deep_linear.simulate(data, 0.1, coordinates="reduced", t_max=1.0)
    assert deep_linear.simulate(data, 0.1, t_max=1.0).meta["coordinates"] == "full"


def test_deep_linear_end_to_end_ode_from_a_balanced_start():
    """Arora et al.'s end-to-end ODE against the full flow of every layer, from balanced random frames; its
    right-hand side against the sum of fractional powers of W W^T and W^T W, each by its own eigendecomposition
    (scipy's fractional_matrix_power is off by 1e-6 on the singular W^T W, so not the reference)."""
    from solvable.sims import deep_linear
    from solvable.sims.deep_linear.reduced import end_to_end_model

    t = np.linspace(0, 12, 25)[1:]
    for hidden in ((), (4,), (5, 4), (4, 4, 4)):
        problem = deep_linear.Problem.random(4, 3, hidden, singular_values=[2.0, 1.0, 0.5], seed=2)
        layers = deep_linear.initial_state(problem, [0.05, 0.3], "balanced", seed=5)
        for lower, upper in zip(layers[:-1], layers[1:]):  # balanced, and not aligned with the target
            np.testing.assert_allclose(np.swapaxes(upper, 1, 2) @ upper, lower @ np.swapaxes(lower, 1, 2), atol=1e-15)
        kw = dict(init="balanced", seed=5, t_max=12.0, t_eval=t, rtol=1e-10)
        red = deep_linear.simulate(problem, [0.05, 0.3], **kw)
        full = deep_linear.simulate(problem, [0.05, 0.3], coordinates="full", **kw)
        assert red.meta["coordinates"] == "reduced" and "layer_1" not in red.final
        np.testing.assert_allclose(red.observables["modes"], full.observables["modes"], atol=1e-7)
        np.testing.assert_allclose(red.final["product"], full.final["product"], atol=1e-7)
        u, s, v = problem.svd()
        off = np.abs(u.T @ layers_product(layers)[1] @ v - np.diag(np.diag(u.T @ layers_product(layers)[1] @ v)))
        assert off.max() > 1e-3  # the start really is not aligned
    problem = deep_linear.Problem.random(4, 3, (5, 4), singular_values=[2.0, 1.0, 0.5], seed=2)
    m = end_to_end_model(problem, np.array([0.4]), seed=1, backend="numpy", dtype="float64", device=None, meta={})
    W = m.state0[0] + 0.2 * np.random.default_rng(3).standard_normal(m.state0[0].shape)
    grad = W[0] - problem.target
    n = problem.depth
    want = sum(_psd_power(W[0] @ W[0].T, (j - 1) / n) @ grad @ _psd_power(W[0].T @ W[0], (n - j) / n)
               for j in range(1, n + 1))
    np.testing.assert_allclose(m.loss_grad((W,))[1][0][0], want, atol=1e-12)


def _psd_power(a, p):
    """a^p for a PSD matrix, with 0^0 = 1 on its null space (the identity at p = 0)."""
    lam, q = np.linalg.eigh(a)
    null = lam < 1e-12 * lam.max()
    return (q * np.where(null, 1.0 if p == 0 else 0.0, np.maximum(lam, 0.0) ** p)) @ q.T


def layers_product(layers):
    out = layers[0]
    for w in layers[1:]:
        out = w @ out
    return out


# --- matrix sensing ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("factorisation", ["symmetric", "asymmetric", "deep"])
def test_matrix_sensing_modes_equal_the_factors(factorisation):
    from solvable.sims import matrix_sensing as ms

    sym = factorisation == "symmetric"
    problem = ms.Problem.random(6, 6 if sym else 5, rank=2, symmetric=sym, operator="population", kappa=2.0, seed=3)
    t = np.linspace(0, 60, 13)[1:]
    for k in (1, 2, 4):
        kw = dict(k=k, factorisation=factorisation, init="aligned", t_max=60.0, t_eval=t, rtol=1e-10, loss_tol=0.0,
                  record_M=True)
        red = ms.simulate(problem, [1e-3, 0.2], **kw)
        full = ms.simulate(problem, [1e-3, 0.2], coordinates="full", **kw)
        assert red.meta["coordinates"] == "reduced"
        for name in full.observables:
            np.testing.assert_allclose(red.observables[name], full.observables[name], atol=1e-8, rtol=1e-7)
        for name in full.final:
            np.testing.assert_allclose(red.final[name], full.final[name], atol=1e-8)


def test_matrix_sensing_symmetric_mode_is_logistic():
    """x_i^2 = s/(1 + (s/x0^2 - 1) e^{-8 c s t}); a mode with s = 0 decays as x0^2/(1 + 8 c x0^2 t)."""
    from solvable.sims import matrix_sensing as ms

    problem = ms.Problem.random(5, 5, rank=2, symmetric=True, operator="population", kappa=2.0, seed=0)
    t = np.linspace(0, 30, 16)[1:]
    a, c = 1e-2, 0.5
    red = ms.simulate(problem, a, k=3, init="aligned", t_max=30.0, t_eval=t, rtol=1e-11, loss_tol=0.0)
    s = np.linalg.svd(problem.M_star)[1][:3]
    x0sq = a**2
    pred = np.stack([si / (1 + (si / x0sq - 1) * np.exp(-8 * c * si * t)) if si > 1e-12 else
                     x0sq / (1 + 8 * c * x0sq * t) for si in s], axis=1)
    np.testing.assert_allclose(np.sort(red.observables["sv"][0, :, :3], axis=1)[:, ::-1],
                               np.sort(pred, axis=1)[:, ::-1], rtol=1e-7, atol=1e-12)


def test_matrix_sensing_reduction_refusals():
    from solvable.sims import matrix_sensing as ms

    gauss = ms.Problem.random(5, 5, rank=1, m=60, symmetric=True, operator="symmetric", seed=0)
    pop = ms.Problem.random(5, 5, rank=1, symmetric=True, operator="population", seed=0)
    assert ms.simulate(gauss, 0.01, k=2, init="aligned", t_max=1.0).meta["coordinates"] == "full"
    assert ms.simulate(pop, 0.01, k=2, t_max=1.0).meta["coordinates"] == "full"  # random init
    with pytest.raises(ValueError, match="population operator only"):
        ms.simulate(gauss, 0.01, k=2, init="aligned", coordinates="reduced", t_max=1.0)
    with pytest.raises(ValueError, match="init='aligned'"):
        ms.simulate(pop, 0.01, k=2, coordinates="reduced", t_max=1.0)
    with pytest.raises(ValueError, match="gradient flow only"):
        ms.simulate(pop, 0.01, "gd", k=2, init="aligned", lr=0.1, steps=3, coordinates="reduced")


def test_scalar_network_one_dimensional_flow_equals_the_factors():
    """From unbalanced starts, with signs and ties, w_m' = -(f - y) prod_{j != m} w_j reproduces every factor."""
    from solvable.sims import deep_linear

    problem = deep_linear.Problem.scalar(4, 1.0)
    starts = np.array([[0.3, 0.4, 0.5, 2.5], [0.1, 0.2, 1.0, 1.5], [-0.3, 0.3, 0.5, 1.0], [0.5, -0.2, 1.2, 0.9]])
    layers = [starts[:, j].reshape(-1, 1, 1) for j in range(4)]
    kw = dict(t_max=50.0, t_eval=np.linspace(0, 50, 26)[1:], rtol=1e-10, loss_tol=1e-28, record_layers=True)
    red = deep_linear.simulate(problem, layers=layers, **kw)
    full = deep_linear.simulate(problem, layers=layers, coordinates="full", **kw)
    assert red.meta["coordinates"] == "reduced" and full.meta["coordinates"] == "full"
    for name in full.observables:
        np.testing.assert_allclose(red.observables[name], full.observables[name], atol=1e-8)
    for name in full.final:
        np.testing.assert_allclose(red.final[name], full.final[name], atol=1e-8)
    with pytest.raises(ValueError, match="record_sharpness"):
        deep_linear.simulate(problem, layers=layers, coordinates="reduced", record_sharpness=True, t_max=1.0)


def test_matrix_sensing_full_aligned_deep_start_runs_with_default_tolerances():
    """The aligned deep start holds exact zeros; pure relative control rejected every step there (max_steps at t = 0)."""
    from solvable.sims import matrix_sensing as ms

    problem = ms.Problem.random(6, 5, rank=2, operator="population", seed=0)
    traj = ms.simulate(problem, 0.1, k=2, factorisation="deep", init="aligned", coordinates="full", t_max=20.0,
                       loss_tol=0.0)
    assert traj.status[0] == "out_of_time" and traj.stop_time[0] == 20.0


# --- unconstrained feature model -----------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [dict(n=(6, 3, 2), d=5, loss="mse", lambda_b=0.0), dict(n=(5, 4, 2), d=4, loss="ce"),
                                dict(n=(4, 3, 3), d=6, relu=True, lambda_b=1e-3), dict(n=(5, 2, 2), d=4, depth=3)])
def test_ufm_collapsed_start_stays_collapsed_one_feature_per_class(kw):
    from solvable.sims import ufm

    problem = ufm.Problem(**kw)
    t = np.linspace(0, 150, 7)[1:]
    red = ufm.simulate(problem, [0.1, 0.5], init="collapsed", t_max=150.0, t_eval=t, rtol=1e-10)
    full = ufm.simulate(problem, [0.1, 0.5], init="collapsed", coordinates="full", t_max=150.0, t_eval=t, rtol=1e-10)
    assert red.meta["coordinates"] == "reduced" and full.meta["coordinates"] == "full"
    assert red.final["class_vectors"].shape == (2, problem.d, problem.K)
    np.testing.assert_allclose(red.observables["loss"], full.observables["loss"], rtol=1e-8)
    np.testing.assert_allclose(red.final["H"], full.final["H"], atol=1e-8)
    np.testing.assert_allclose(red.final["W"], full.final["W"], atol=1e-8)
    np.testing.assert_allclose(red.observables["nc2"], full.observables["nc2"], atol=1e-7)
    # the full flow really keeps every class collapsed (the identity the reduction rests on)
    bounds = np.concatenate([[0], np.cumsum(problem.n)])
    H = full.final["H"]
    spread = max(np.abs(H[:, :, a:b] - H[:, :, a:a + 1]).max() for a, b in zip(bounds[:-1], bounds[1:]))
    assert spread < 1e-9


def test_ufm_reduced_objective_and_field_against_the_full_ones():
    """The reduced loss equals the full objective at the expanded features, and the reduced field is the full
    per-sample gradient (a class's columns), for imbalanced classes with a bias."""
    from solvable.sims import ufm
    from solvable.sims.ufm.reduced import expand

    problem = ufm.Problem(n=(7, 3, 1), d=4, loss="ce", lambda_b=0.01, lambda_W=3e-3, lambda_H=7e-3)
    m = ufm.model(problem, [0.3], init="collapsed", coordinates="reduced")
    state = m.state0
    value, grads = m.loss_grad(state)
    full_state = state[:1] + (expand(problem, state[1]),) + state[2:]
    f_value, f_grads = ufm.loss_grad(problem, problem.labels(), full_state)
    np.testing.assert_allclose(value, f_value, rtol=1e-13)
    np.testing.assert_allclose(grads[0], f_grads[0], atol=1e-15)
    np.testing.assert_allclose(grads[2], f_grads[2], atol=1e-15)
    starts = np.concatenate([[0], np.cumsum(problem.n)[:-1]])
    np.testing.assert_allclose(grads[1], f_grads[1][:, :, starts], atol=1e-15)


def test_ufm_reduction_refusals():
    from solvable.sims import ufm

    problem = ufm.Problem(n=(3, 2), d=3)
    assert ufm.simulate(problem, 0.1, t_max=1.0).meta["coordinates"] == "full"  # the random start
    assert ufm.simulate(problem, 0.1, "gd", init="collapsed", lr=0.1, steps=3).meta["coordinates"] == "full"
    with pytest.raises(ValueError, match="init='collapsed'"):
        ufm.simulate(problem, 0.1, coordinates="reduced", t_max=1.0)
    with pytest.raises(ValueError, match="gradient flow only"):
        ufm.simulate(problem, 0.1, "sgd", init="collapsed", coordinates="reduced", lr=0.1, steps=3, batch_size=2)
    anchored = ufm.Problem(n=(3, 2), d=3, anchor=np.ones((3, 5)))
    with pytest.raises(ValueError, match="anchor"):
        ufm.simulate(anchored, 0.1, init="collapsed", coordinates="reduced", t_max=1.0)
    with pytest.raises(ValueError, match="init must be one of"):
        ufm.simulate(problem, 0.1, init="spectral", t_max=1.0)
    with pytest.raises(ValueError, match="d >= K"):
        ufm.simulate(ufm.Problem(n=(3, 2, 2), d=2), 0.1, init="aligned", t_max=1.0)
    with pytest.raises(ValueError, match="depth 1"):
        ufm.simulate(ufm.Problem(n=(3, 2), d=3, depth=2), 0.1, init="aligned", t_max=1.0)


def test_ufm_aligned_start_is_two_numbers_per_class():
    """MSE, no bias, imbalanced: the (s_k, t_k) modes are the full flow at every recorded time, and they end at
    Dang et al.'s minimiser (||w_k||^2 = sqrt(n_k lH / lW) - N lH); cross-entropy from the same start falls back to
    the collapsed reduction, which still matches the full flow."""
    from solvable.sims import ufm
    from solvable.theory import ufm as th

    n, lam = (6, 4, 2), 5e-3
    problem = ufm.Problem(n=n, d=5, loss="mse", lambda_W=lam, lambda_H=lam)
    t = np.linspace(0, 300.0, 16)[1:]
    red = ufm.simulate(problem, [0.1, 1.0], init="aligned", t_max=300.0, t_eval=t, rtol=1e-11)
    full = ufm.simulate(problem, [0.1, 1.0], init="aligned", coordinates="full", t_max=300.0, t_eval=t, rtol=1e-11)
    assert red.meta["reduction"] == "aligned modes" and full.meta["coordinates"] == "full"
    np.testing.assert_allclose(red.observables["loss"], full.observables["loss"], rtol=1e-7)
    np.testing.assert_allclose(red.final["H"], full.final["H"], atol=1e-7)
    np.testing.assert_allclose(red.final["W"], full.final["W"], atol=1e-7)
    done = ufm.simulate(problem, [1.0], init="aligned", t_max=1e5, rtol=1e-11)
    np.testing.assert_allclose(done.final["s"][0] ** 2, th.mse_geometry(n, lam, lam).w_norms_sq, rtol=1e-6)
    ce = ufm.Problem(n=n, d=5, loss="ce")
    red_ce = ufm.simulate(ce, [0.5], init="aligned", t_max=20.0, t_eval=[5.0, 20.0], rtol=1e-11)
    full_ce = ufm.simulate(ce, [0.5], init="aligned", coordinates="full", t_max=20.0, t_eval=[5.0, 20.0], rtol=1e-11)
    assert red_ce.meta["reduction"] == "collapsed classes"
    np.testing.assert_allclose(red_ce.final["H"], full_ce.final["H"], atol=1e-8)



def test_reduced_diagonal_limit_is_as_accurate_as_rtol_at_every_alpha():
    """The reduced path's stopping threshold has no cancellation floor (sims.diagonal.default_loss_tol): at rtol 1e-8
    its limits sit within 1e-6 of the theory's argmin Q_alpha at large alpha too, where the full coordinates' threshold
    leaves about 5e-5 (the stopping band of the 2 alpha^2 cancellation term)."""
    from solvable.theory.diagonal import implicit_bias

    problem = diagonal.Problem.random(20, 60, 3, seed=1)
    alphas = np.array([0.01, 0.3, 3.0])
    w = diagonal.simulate(problem, alphas, t_max=1e6, rtol=1e-8).final["w"]
    ref = np.array([implicit_bias(problem.X, problem.y, a).x for a in alphas])
    err = np.linalg.norm(w - ref, axis=1) / np.linalg.norm(ref, axis=1)
    assert np.all(err < 2e-6), err
    full = diagonal.simulate(problem, alphas[-1:], t_max=1e6, rtol=1e-8, coordinates="full").final["w"]
    assert np.linalg.norm(full[0] - ref[-1]) / np.linalg.norm(ref[-1]) > 5 * err[-1]  # the floor the reduction removes
