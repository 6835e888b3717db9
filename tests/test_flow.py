"""The engine: the Dormand-Prince method's order, per-run control and events, and the discrete rules."""

import numpy as np
import pytest
from scipy import stats
from scipy.integrate._ivp.rk import RK45

from solvable.sims.engine import flow
from solvable.sims.engine.backend import asarray, namespace, to_numpy
from solvable.sims.engine.controller import PIController
from solvable.sims.engine.status import FINAL, Status
from solvable.sims.engine.tableau import DOPRI5


def quadratic(xp, a):
    """L = sum a x^2 / 2 per run: the flow is x(t) = x0 exp(-a t)."""

    def loss_grad(state, weights=None):
        (x,) = state
        return xp.sum(a * x * x, axis=1) / 2, (a * x,)

    return loss_grad


def test_tableau_matches_scipy():
    np.testing.assert_allclose(np.array(DOPRI5.dense), RK45.P, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(np.abs(DOPRI5.e), np.abs(RK45.E), rtol=1e-15)
    np.testing.assert_allclose(DOPRI5.a_matrix()[:, :5], RK45.A, rtol=1e-15)
    np.testing.assert_allclose(DOPRI5.b, RK45.B, rtol=1e-15)
    assert (DOPRI5.order, DOPRI5.error_order, DOPRI5.fsal) == (RK45.order, RK45.error_estimator_order, True)


@pytest.mark.parametrize("change, match", [
    (dict(a=((), (0.3,)) + DOPRI5.a[2:]), "row 1 of a sums to"),
    (dict(b=(0.1,) + DOPRI5.b[1:]), "weights b must sum to 1"),
    (dict(e=(0.0,) + DOPRI5.e[1:]), "error weights"),
    (dict(dense=((0.5, 0, 0, 0),) + DOPRI5.dense[1:]), "dense output at theta = 1"),
    (dict(error_order=5), "error_order"),
])
def test_tableau_checks_itself(change, match):
    import dataclasses

    with pytest.raises(ValueError, match=match):
        dataclasses.replace(DOPRI5, **change)


def test_status_members_carry_codes_and_messages():
    assert [s.code for s in Status] == list(range(6))
    assert Status.from_code(5) is Status.STEP_UNDERFLOW and "round-off" in Status.STEP_UNDERFLOW.message
    assert Status.CONVERGED == "converged" and str(Status.DIVERGED) == "diverged"
    assert Status.RUNNING not in FINAL
    with pytest.raises(ValueError, match="no status has code"):
        Status.from_code(9)


def test_pi_controller_factor_rules():
    ctl = PIController()
    err = np.array([0.5, 2.0, np.nan, 1e-30])
    accept = np.array([True, False, False, True])
    finite = np.isfinite(err)
    f = ctl.factor(err, np.ones(4), 5, accept, finite, np.array([False, False, False, True]))
    assert f[0] == pytest.approx(0.9 * 0.5 ** -0.2)  # accepted: grows by the classical rule
    assert f[1] == pytest.approx(0.9 * 2.0 ** -0.2)  # rejected: shrinks
    assert f[2] == 0.2  # non-finite trial: the smallest factor
    assert f[3] == 1.0  # accepted right after a rejection: no growth
    with pytest.raises(ValueError, match="safety"):
        PIController(safety=1.5)
    pi = PIController(beta2=0.08)  # Gustafsson's PI: a previous small error damps the growth
    g = pi.factor(np.array([0.5]), np.array([0.1]), 5, np.array([True]), np.array([True]), np.array([False]))
    assert g[0] == pytest.approx(0.9 * 0.5 ** -0.2 * 0.1 ** 0.08)


def test_pi_controller_factor_equals_its_formula():
    """The factor against the formula written out with NumPy's clip and minimum (the controller spells them
    as wheres, which torch.compile traces), over every branch and bounds on both sides of the safety factor."""
    rng = np.random.default_rng(0)
    err = np.concatenate([10.0 ** rng.uniform(-12, 3, 60), [0.0, np.nan, np.inf, 1.0]])
    prev = 10.0 ** rng.uniform(-3, 1, err.size)
    for ctl in (PIController(), PIController(factor_min=0.95, factor_max=1.5, beta2=0.05),
                PIController(safety=0.5, factor_min=0.6, factor_max=3.0)):
        for accept_p, rejected_p in ((0.5, 0.5), (1.0, 0.0), (0.0, 1.0)):
            finite = np.isfinite(err)
            accept = finite & (rng.random(err.size) < accept_p)
            rejected = rng.random(err.size) < rejected_p
            ok = finite & (err > 0)
            f = ctl.safety * np.where(ok, err, 1.0) ** -0.2 * np.where(prev > 0, prev, 1.0) ** ctl.beta2
            f = np.clip(np.where(ok, f, ctl.factor_max), ctl.factor_min, ctl.factor_max)
            f = np.where(accept & rejected, np.minimum(f, 1.0), f)
            want = np.where(accept, f, np.where(finite, np.minimum(f, 1.0), ctl.factor_min))
            np.testing.assert_array_equal(ctl.factor(err, prev, 5, accept, finite, rejected), want)


def test_pi_controller_still_meets_the_tolerance():
    xp = namespace("numpy")
    a = np.array([[1.0, 5.0]])
    t = np.linspace(0, 4, 9)
    res = flow.integrate_flow(quadratic(xp, a), (np.ones((1, 2)),), t_max=4.0, t_eval=t, observe=lambda s: {"x": s[0]},
                              method=flow.Flow(rtol=1e-9, atol=0.0, controller=PIController(beta1=0.14, beta2=0.08)))
    exact = np.exp(-a[:, None, :] * t[None, :, None])
    assert np.max(np.abs(res.observables["x"] - exact) / exact) < 200 * 1e-9


def test_a_custom_rule_needs_no_loop_change():
    """Heavy-ball momentum, written as a rule with its own state, runs in the unchanged loop."""
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class HeavyBall(flow.Rule):
        beta: float = 0.5

        def init(self, y0, objective, rng):
            state = super().init(y0, objective, rng)
            state.extra = y0 * 0.0
            return state

        def update(self, y, lr, objective, rule_state):
            loss, g = objective.loss_grad(y)
            rule_state.extra = self.beta * rule_state.extra - lr * g
            return y + rule_state.extra, flow.StepInfo(loss, np.sum(g * g, axis=1))

    xp = namespace("numpy")
    a = np.array([[1.0, 3.0]])
    res = flow.run_discrete(HeavyBall(lr=0.1), quadratic(xp, a), (np.ones((1, 2)),), steps=25)
    x, v = np.ones(2), np.zeros(2)
    for _ in range(25):
        v = 0.5 * v - 0.1 * a[0] * x
        x = x + v
    np.testing.assert_allclose(res.final[0][0], x, rtol=1e-14)


def _fit_order(hs, errs):
    return stats.linregress(np.log(hs), np.log(errs)).slope


def test_global_order_is_five():
    """Fixed steps on dy/dt = -lam y: the global error slope against h is the order, 5."""
    lam = np.array([[1.0, 2.0, 0.5]])
    y0 = np.ones((1, 3))
    hs = np.array([0.2, 0.1, 0.05, 0.025])
    errs = []
    for h in hs:
        y = y0.copy()
        for _ in range(int(round(1.0 / h))):
            y, _, _ = flow.dopri5_step(lambda z: -lam * z, y, h)
        errs.append(np.max(np.abs(y - np.exp(-lam))))
    assert abs(_fit_order(hs, errs) - DOPRI5.order) < 0.5


def test_local_error_estimate_and_dense_output_orders():
    """One step from y0: the embedded estimate is O(h^5) and the dense output's local error O(h^5)."""
    lam = np.array([[1.0, 3.0]])
    y0 = np.ones((1, 2))
    hs = np.array([0.4, 0.2, 0.1, 0.05])
    est, dense = [], []
    for h in hs:
        _, err, at = flow.dopri5_step(lambda z: -lam * z, y0, h)
        est.append(np.max(np.abs(err)))
        dense.append(np.max(np.abs(at(0.5) - np.exp(-lam * h / 2))))
    assert abs(_fit_order(hs, est) - (DOPRI5.error_order + 1)) < 0.5
    assert abs(_fit_order(hs, dense) - 5) < 0.6  # 4th-order interpolant: local error h^5


@pytest.mark.parametrize("rtol", [1e-6, 1e-9, 1e-12])
def test_adaptive_error_tracks_rtol(rtol):
    xp = namespace("numpy")
    a = np.array([[1.0, 5.0], [0.3, 2.0]])
    t = np.linspace(0, 4, 9)
    res = flow.integrate_flow(quadratic(xp, a), (np.ones((2, 2)),), t_max=4.0, t_eval=t,
                              observe=lambda s: {"x": s[0]}, method=flow.Flow(rtol=rtol, atol=0.0))
    exact = np.exp(-a[:, None, :] * t[None, :, None])
    rel = np.max(np.abs(res.observables["x"] - exact) / exact)
    assert rel < 200 * rtol
    assert list(res.status) == ["out_of_time", "out_of_time"]


def test_per_run_step_sizes_are_independent():
    """A batched run equals its runs done one by one (each has its own step sequence)."""
    xp = namespace("numpy")
    a = np.array([[1.0, 50.0], [0.1, 0.2]])
    kw = dict(t_max=3.0, t_eval=np.linspace(0, 3, 7), observe=lambda s: {"x": s[0]})
    both = flow.integrate_flow(quadratic(xp, a), (np.ones((2, 2)),), **kw)
    for b in range(2):
        one = flow.integrate_flow(quadratic(xp, a[b : b + 1]), (np.ones((1, 2)),), **kw)
        # same step sequence; the stage sums may round differently with the batch size (BLAS)
        np.testing.assert_allclose(both.observables["x"][b], one.observables["x"][0], rtol=1e-12, atol=1e-15)
        assert both.stop_step[b] == one.stop_step[0]
    assert both.stop_step[0] > 2 * both.stop_step[1]  # the stiff run took more steps


def test_converged_run_stops_and_repeats_its_final_value():
    xp = namespace("numpy")
    a = np.array([[10.0], [0.01]])
    res = flow.integrate_flow(quadratic(xp, a), (np.ones((2, 1)),), t_max=100.0,
                              observe=lambda s: {"x": s[0]}, stop=flow.StopRule(loss_tol=1e-20))
    assert list(res.status) == ["converged", "out_of_time"]
    assert res.stop_time[0] < 3.0
    x = res.observables["x"][0, :, 0]
    assert np.all(np.isfinite(x)) and x[-1] == pytest.approx(res.final[0][0, 0])


def test_finite_time_blowup_is_diverged():
    """dy/dt = y^2 from y = 1 blows up at t = 1: reported as diverged near t = 1."""

    def loss_grad(state, weights=None):
        (y,) = state
        return -np.sum(y**3, axis=1) / 3, (-(y**2),)

    res = flow.integrate_flow(loss_grad, (np.ones((1, 1)),), t_max=2.0, observe=lambda s: {"y": s[0]})
    assert res.status[0] == "diverged"
    assert res.stop_time[0] == pytest.approx(1.0, abs=1e-6)
    assert np.isnan(res.observables["y"][0, -1, 0])  # no value after the blow-up


def test_singular_field_is_step_underflow():
    """dy/dt = 1/sqrt(2 - y): y stays bounded but the field is singular at y = 2 (t* = 4 sqrt(2)/3)."""

    def loss_grad(state, weights=None):
        (y,) = state
        with np.errstate(invalid="ignore", divide="ignore"):
            return 2 * np.sqrt(2 - y[:, 0]), (-1 / np.sqrt(2 - y),)

    res = flow.integrate_flow(loss_grad, (np.zeros((1, 1)),), t_max=3.0)
    assert res.status[0] == "step_underflow"
    assert res.stop_time[0] == pytest.approx(4 * np.sqrt(2) / 3, rel=1e-3)


def test_max_steps_is_reported():
    xp = namespace("numpy")
    res = flow.integrate_flow(quadratic(xp, np.ones((1, 1))), (np.ones((1, 1)),), t_max=1e3,
                              method=flow.Flow(max_steps=5))
    assert res.status[0] == "max_steps" and res.stop_step[0] == 5


def test_gd_matches_a_plain_loop_and_diverges_per_run():
    xp = namespace("numpy")
    a = np.array([[1.0, 4.0], [1.0, 4.0]])
    lr = np.array([0.1, 0.6])  # 0.6 * 4 > 2: the second run is unstable
    res = flow.run_discrete(flow.GD(lr=lr), quadratic(xp, a), (np.ones((2, 2)),), steps=200,
                            observe=lambda s: {"x": s[0]})
    assert list(res.status) == ["out_of_time", "diverged"]
    x = np.ones(2)
    for _ in range(200):
        x = x - 0.1 * a[0] * x
    np.testing.assert_allclose(res.final[0][0], x, rtol=1e-14)
    k = res.stop_step[1]
    assert 0 < k < 200 and np.all(np.isfinite(res.final[0][1]))
    # the first iterate whose loss exceeds 1e10 x the initial loss (2.5), by a plain loop
    x, first = np.ones(2), None
    for j in range(1, 200):
        x = x - 0.6 * a[1] * x
        if np.sum(a[1] * x * x) / 2 > 1e10 * 2.5:
            first = j
            break
    assert k == first
    rec = res.times >= k
    assert np.all(np.isnan(res.observables["x"][1, rec])) and np.all(np.isfinite(res.observables["x"][1, ~rec]))


def test_sam_matches_its_formula():
    xp = namespace("numpy")
    a = np.array([[1.0, 3.0]])
    for normalized in (True, False):
        res = flow.run_discrete(flow.SAM(lr=0.1, rho=0.05, normalized=normalized), quadratic(xp, a),
                                (np.ones((1, 2)),), steps=30)
        x = np.ones(2)
        for _ in range(30):
            g = a[0] * x
            e = 0.05 * g / np.linalg.norm(g) if normalized else 0.05 * g
            x = x - 0.1 * a[0] * (x + e)
        np.testing.assert_allclose(res.final[0][0], x, rtol=1e-13)


def test_finite_difference_gr_at_eps_lambda_is_unnormalised_sam():
    """Karakida et al. 2023's finite-difference GR with eps = lambda steps along
    g + (lambda/eps)(grad L(theta + eps g) - g) = grad L(theta + lambda g): unnormalised SAM with rho = lambda
    (equal up to the round-off of the cancelling g), on a diagonal network where the gradient is not linear."""
    from solvable.sims import diagonal

    problem = diagonal.Problem.random(8, 16, 2, seed=3)
    lam = 0.05
    gr = diagonal.simulate(problem, 0.3, "gr", lr=0.05, lam=lam, gr_eps=lam, steps=3000, loss_tol=0.0)
    sam = diagonal.simulate(problem, 0.3, "sam", lr=0.05, rho=lam, sam_normalized=False, steps=3000, loss_tol=0.0)
    np.testing.assert_allclose(gr.final["w"], sam.final["w"], rtol=1e-9, atol=1e-12)
    other = diagonal.simulate(problem, 0.3, "gr", lr=0.05, lam=lam, gr_eps=1e-6, steps=3000, loss_tol=0.0)
    assert np.abs(other.final["w"] - sam.final["w"]).max() > 1e-6  # exact GR is not SAM: the test resolves it


def test_preconditioned_identity_is_gd_and_schedule_applies():
    xp = namespace("numpy")
    a = np.array([[1.0, 3.0]])
    gd = flow.run_discrete(flow.GD(lr=0.1, schedule=flow.geometric(0.9)), quadratic(xp, a), (np.ones((1, 2)),), steps=20)
    pre = flow.run_discrete(flow.PreconditionedGD(lr=0.1, precondition=lambda s, g: g, schedule=flow.geometric(0.9)),
                            quadratic(xp, a), (np.ones((1, 2)),), steps=20)
    np.testing.assert_array_equal(gd.final[0], pre.final[0])
    x = np.ones(2)
    for k in range(20):
        x = x - 0.1 * 0.9**k * a[0] * x
    np.testing.assert_allclose(gd.final[0][0], x, rtol=1e-14)


def _per_sample(xp):
    """Two samples, each pulling its own coordinate: L = mean_j (x_j - 1)^2 / 2."""

    def loss_grad(state, weights=None):
        (x,) = state
        r = x - 1.0
        w = weights if weights is not None else xp.full(r.shape, 0.5, dtype=r.dtype)
        return xp.sum(w * r * r, axis=1) / 2, (w * r,)

    return loss_grad


def test_sgd_schedule_is_seeded_and_backend_independent():
    finals = []
    for backend in ("numpy", "array_api_strict"):
        xp = namespace(backend)
        x0 = asarray(np.zeros((3, 2)), xp)
        res = flow.run_discrete(flow.SGD(lr=0.5, batch_size=1), _per_sample(xp), (x0,), steps=7, n_samples=2, seed=3)
        finals.append(res.final[0])
    np.testing.assert_array_equal(finals[0], finals[1])
    # batch size 1: each step moves exactly one coordinate halfway to 1
    moved = 1 - finals[0]
    assert np.allclose(np.log2(moved).round(), np.log2(moved))
    assert np.all(np.log2(1 / moved).sum(axis=1) == 7)
    other = flow.run_discrete(flow.SGD(lr=0.5, batch_size=1), _per_sample(np), (np.zeros((3, 2)),), steps=7,
                              n_samples=2, seed=4)
    assert not np.array_equal(other.final[0], finals[0])


def test_full_batch_sgd_is_gd():
    a = np.zeros((2, 2))
    sgd = flow.run_discrete(flow.SGD(lr=0.3, batch_size=2), _per_sample(np), (a,), steps=5, n_samples=2)
    gd = flow.run_discrete(flow.GD(lr=0.3), _per_sample(np), (a,), steps=5)
    np.testing.assert_allclose(sgd.final[0], gd.final[0], rtol=1e-15)


def test_engine_runs_on_array_api_strict():
    xp = namespace("array_api_strict")
    a = asarray([[1.0, 2.0]], xp)
    res = flow.integrate_flow(quadratic(xp, a), (asarray(np.ones((1, 2)), xp),), t_max=1.0,
                              t_eval=[0.0, 0.5, 1.0], observe=lambda s: {"x": s[0]})
    np.testing.assert_allclose(res.observables["x"][0, -1], np.exp(-np.array([1.0, 2.0])), rtol=1e-8)
    assert isinstance(res.final[0], np.ndarray)


@pytest.mark.parametrize("kwargs, match", [
    (dict(t_max=-1.0), "t_max must be"),
    (dict(t_max=1.0, t_eval=[0.5, 0.2]), "strictly increasing"),
    (dict(t_max=1.0, t_eval=[0.0, 2.0]), r"must lie in \[0, t_max"),
])
def test_flow_rejects_bad_times(kwargs, match):
    with pytest.raises(ValueError, match=match):
        flow.integrate_flow(quadratic(np, np.ones((1, 1))), (np.ones((1, 1)),), **kwargs)


@pytest.mark.parametrize("make, match", [
    (lambda: flow.Flow(rtol=0), "rtol must lie in"),
    (lambda: flow.Flow(atol=-1), "atol must be"),
    (lambda: flow.GD(lr=-0.1), "lr must be"),
    (lambda: flow.GD(lr=[0.1, np.nan]), "lr must be"),
    (lambda: flow.SGD(lr=0.1, batch_size=0), "batch_size must be"),
    (lambda: flow.SAM(lr=0.1, rho=-1), "rho must be"),
    (lambda: flow.StopRule(loss_tol=-1), "loss_tol must be"),
    (lambda: flow.StopRule(blowup=1), "blowup must be"),
    (lambda: flow.geometric(1.5), "q must lie in"),
    (lambda: flow.log_steps(0), "steps must be"),
])
def test_engine_arguments_are_validated(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_mismatched_batch_is_refused():
    with pytest.raises(ValueError, match="leading batch axis"):
        flow.integrate_flow(quadratic(np, np.ones((1, 1))), (np.ones((2, 1)), np.ones((3, 1))), t_max=1.0)
    with pytest.raises(ValueError, match="lr has 3 values"):
        flow.run_discrete(flow.GD(lr=[0.1, 0.1, 0.1]), quadratic(np, np.ones((2, 1))), (np.ones((2, 1)),), steps=2)


def test_to_numpy_of_results_is_host():
    xp = namespace("array_api_strict")
    x = asarray(np.ones((1, 1)), xp)
    assert isinstance(to_numpy(x), np.ndarray)


def test_discrete_run_that_converges_early_keeps_its_final_values():
    xp = namespace("numpy")
    res = flow.run_discrete(flow.GD(lr=0.5), quadratic(xp, np.ones((1, 1))), (np.ones((1, 1)),), steps=1000,
                            observe=lambda s: {"x": s[0]}, stop=flow.StopRule(loss_tol=1e-20))
    assert res.status[0] == "converged" and res.stop_step[0] < 100
    x = res.observables["x"][0, :, 0]
    assert np.all(np.isfinite(x)) and x[-1] == res.final[0][0, 0]


def test_flooding_ascends_below_the_level_and_two_steps_are_a_finite_difference_gr_step():
    """Below the level a flooding step is an ascent step; an ascent then a descent step is
    theta - eta (grad L(theta + eta grad L) - grad L(theta)) (Karakida et al. 2023, Sec. 5), to round-off."""
    from solvable.sims import diagonal

    problem = diagonal.Problem.random(8, 16, 2, seed=3)
    gd = diagonal.simulate(problem, 0.3, "gd", lr=0.05, steps=2000, loss_tol=0.0)
    level = float(gd.observables["loss"][0, -1]) * 2  # a level the GD run has passed below
    run = diagonal.simulate(problem, 0.3, "flood", lr=0.05, flood_level=level, steps=4000, record_w=True,
                            t_eval=np.arange(4001), loss_tol=0.0)
    loss = run.observables["loss"][0]
    assert run.meta["algorithm"] == "flood" and run.meta["flood_level"] == level
    assert loss[-200:].max() > level > loss[-200:].min()  # it floats at the level
    X, y = problem.X, problem.y
    n = X.shape[0]
    k = int(np.flatnonzero((loss[:-2] < level) & (loss[1:-1] >= level))[-1])  # an ascent step, then a descent step
    w = run.observables["w"][0]

    def grad_theta(u, v):
        g = X.T @ (X @ (u * u - v * v) - y) / n
        return 2 * u * g, -2 * v * g

    # rebuild u, v at step k from w and u v (flooding multiplies u v by 1 - 4 eta^2 g^2 at every step, either sign)
    uv = 0.3**2 * np.prod([1 - 4 * 0.05**2 * (X.T @ (X @ w[j] - y) / n) ** 2 for j in range(k)], axis=0)
    D = np.sqrt(w[k] ** 2 + 4 * uv**2)
    u, v = np.sqrt((D + w[k]) / 2), np.sqrt((D - w[k]) / 2)
    gu, gv = grad_theta(u, v)
    gu2, gv2 = grad_theta(u + 0.05 * gu, v + 0.05 * gv)
    u2, v2 = u - 0.05 * (gu2 - gu), v - 0.05 * (gv2 - gv)
    np.testing.assert_allclose(u2 * u2 - v2 * v2, w[k + 2], atol=1e-10)


def test_flooding_refuses_a_missing_or_negative_level():
    from solvable.sims import diagonal

    problem = diagonal.Problem.random(4, 8, 1, seed=0)
    with pytest.raises(ValueError, match="flood_level is required"):
        diagonal.simulate(problem, 0.3, "flood", lr=0.05, steps=10)
    with pytest.raises(ValueError, match="flood_level"):
        diagonal.simulate(problem, 0.3, "flood", lr=0.05, flood_level=-1.0, steps=10)
    with pytest.raises(ValueError, match="flood_level"):
        diagonal.simulate(problem, 0.3, "gd", lr=0.05, flood_level=0.1, steps=10)


def test_loss_tol_per_run_stops_each_run_at_its_own_threshold():
    from solvable.sims import diagonal

    problem = diagonal.Problem.random(8, 16, 2, seed=3)
    tols = [1e-4, 1e-9]
    traj = diagonal.simulate(problem, [0.1, 0.1], t_max=1e4, loss_tol=tols)
    assert traj.meta["loss_tol"] == tols
    final = traj.observables["loss"][:, -1]
    # the same run stops earlier, at a larger loss, with the looser threshold
    assert final[1] <= 1e-9 < final[0] <= 1e-4
    assert traj.stop_step[0] < traj.stop_step[1]
    with pytest.raises(ValueError, match="one per run"):
        diagonal.simulate(problem, [0.1, 0.1], t_max=10.0, loss_tol=[1e-4, 1e-4, 1e-4])
    with pytest.raises(ValueError, match=r"loss_tol\[1\]"):
        diagonal.simulate(problem, [0.1, 0.1], t_max=10.0, loss_tol=[1e-4, -1.0])
