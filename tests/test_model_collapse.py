"""Model collapse with a ridge downstream predictor: resolvent, error formula, adaptive ridge, simulator.

References are independent of the code under test: Gauss-Legendre quadrature of
the Marchenko-Pastur density (``mp_moments``), finite differences, a direct
``np.linalg.solve`` of the ridge normal equations on replicated draws.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from solvable.sims import deep_linear as sim
from solvable.theory import deep_linear as th

SETUP = dict(d=50, T=100, sigma=1.0, T0=100, sigma0=0.5)


def _err(n, lam, w_norm_sq=1.0, **kw):
    p = {**SETUP, **kw}
    return th.model_collapse_ridge_error(n, p["d"], p["T"], p["sigma"], p["T0"], p["sigma0"], lam, w_norm_sq)


def _star(n, w_norm_sq=1.0, **kw):
    p = {**SETUP, **kw}
    return th.model_collapse_optimal_ridge(n, p["d"], p["T"], p["sigma"], p["T0"], p["sigma0"], w_norm_sq)


TRACES = {  # the function of the eigenvalue nu that each field traces
    "g1": lambda v, lam: (v + lam) ** -1.0,
    "g2": lambda v, lam: (v + lam) ** -2.0,
    "df": lambda v, lam: v / (v + lam),
    "v2": lambda v, lam: v / (v + lam) ** 2,
    "v3": lambda v, lam: v / (v + lam) ** 3,
    "r2": lambda v, lam: v**2 / (v + lam) ** 2,
}


@pytest.mark.parametrize("lam, gamma", [(0.0, 0.5), (0.3, 0.5), (1.0, 2.0), (1e-3, 3.0), (5.0, 0.2), (0.05, 0.9),
                                        (1e-9, 4.0), (1e-9, 0.3), (1e6, 2.0)])
def test_resolvent_matches_quadrature_of_the_density(lam, gamma):
    got = th.mp_resolvent(lam, gamma)
    for name, fn in TRACES.items():
        with np.errstate(divide="ignore", invalid="ignore"):  # 0/0 at the atom for the s-weighted traces
            ref = th.mp_moments(gamma, lambda v: np.nan_to_num(fn(v, lam)) if lam == 0 else fn(v, lam))
        assert getattr(got, name) == pytest.approx(ref, rel=1e-9), name


def test_ridgeless_limit_is_the_linear_collapse_law():
    d, T, T0 = SETUP["d"], SETUP["T"], SETUP["T0"]
    for n in (0, 3):
        # the proportional limit of sigma^2 d/(T - d - 1): sigma^2 d/(T - d)
        assert _err(n, 0.0) == pytest.approx(d / (T - d) + n * 0.25 * d / (T0 - d - 1), rel=1e-13)
        assert _err(n, 1e-9) == pytest.approx(_err(n, 0.0), rel=1e-7)


def test_large_ridge_tends_to_the_zero_predictor():
    assert _err(5, 1e7, w_norm_sq=2.0) == pytest.approx(2.0, rel=1e-5)


@pytest.mark.parametrize("n", [0, 1, 4, 20])
def test_optimal_ridge_is_a_stationary_minimum(n):
    lam = _star(n)
    f0 = _err(n, lam)
    for eps in (1e-2, 0.1, 1.0):
        assert _err(n, lam * (1 + eps)) > f0 and _err(n, lam / (1 + eps)) > f0
    h = 1e-5 * lam
    assert abs(_err(n, lam + h) - _err(n, lam - h)) / (2 * h) < 1e-8 * f0 / lam


def test_clean_optimum_is_the_classical_ridge():
    # Dobriban & Wager 2018: lambda* = sigma^2 gamma / |w*|^2 for isotropic data
    assert _star(0, w_norm_sq=2.0, sigma=1.5) == pytest.approx(1.5**2 * 0.5 / 2.0, rel=1e-12)
    assert _star(0, sigma=0.0) == 0.0


def test_optimum_grows_linearly_and_the_error_stays_below_the_zero_predictor():
    stars = [_star(n) for n in (0, 2, 8, 64, 1000)]
    assert np.all(np.diff(stars) > 0)
    d, T, T0, s0 = SETUP["d"], SETUP["T"], SETUP["T0"], SETUP["sigma0"]
    slope = d * s0**2 * (1 + d / T) / (T0 - d - 1)  # lambda* ~ d (tau_n^2 (1 + gamma) + sigma^2/T) / |w*|^2
    assert (stars[-1] - stars[-2]) / (1000 - 64) == pytest.approx(slope, rel=1e-3)
    errors = [_err(n, lam) for n, lam in zip((0, 2, 8, 64, 1000), stars)]
    assert np.all(np.diff(errors) > 0) and errors[-1] < 1.0
    assert _err(8, 0.0) > 3 * _err(8, stars[2])


def _with_the_data(d, T, sigma, T0, sigma0, gens, trials, seed, lams, scale):
    """The self-training chain as the paper states it: rows drawn, labels made, OLS and ridge fitted on them."""
    rng = np.random.default_rng(seed)
    out = np.empty((trials, gens + 1, len(lams)))
    for t in range(trials):
        w = rng.standard_normal(d) / math.sqrt(d)
        g = w
        for n in range(gens + 1):
            if n:
                X0 = rng.standard_normal((T0, d)) * scale
                g = np.linalg.lstsq(X0, X0 @ g + sigma0 * rng.standard_normal(T0), rcond=None)[0]
            X = rng.standard_normal((T, d)) * scale
            y = X @ g + sigma * rng.standard_normal(T)
            for k, lam in enumerate(lams):
                fit = np.linalg.solve(X.T @ X / T + lam * np.eye(d), X.T @ y / T)
                out[t, n, k] = np.sum(scale**2 * (fit - w) ** 2)
    return out


@pytest.mark.parametrize("T, lams", [(12, (0.0, 0.3)), (3, (0.5,))], ids=["T>=d: Wishart", "T<d: rows"])
def test_the_data_free_sampler_has_the_distribution_of_the_fits_on_data(T, lams):
    """The exact sampler (Gram matrices from the Wishart, X^T eps from N(0, A)) against fits on drawn data, two
    independent Monte Carlos: every mean within 5 standard errors of their difference, and so is the spread."""
    d, sigma, T0, sigma0, gens, trials = 5, 0.7, 9, 0.5, 2, 3000
    scale = np.sqrt(np.array([2.0, 1.0, 1.0, 0.5, 0.25]))
    fast = sim.model_collapse(d, T, sigma, T0, sigma0, gens, n_trials=trials, seed=1, ridge=list(lams),
                              spectrum=scale**2)
    slow = _with_the_data(d, T, sigma, T0, sigma0, gens, trials, 2, lams, scale)
    for a, b in ((fast, slow), (np.log(fast), np.log(slow))):
        se = np.sqrt(a.var(axis=0, ddof=1) / trials + b.var(axis=0, ddof=1) / trials)
        assert np.all(np.abs(a.mean(axis=0) - b.mean(axis=0)) < 5 * se), (a.mean(axis=0), b.mean(axis=0), se)


def test_ols_collapse_has_the_exact_mean():
    """Dohmatob et al. 2024, Theorem 1 (OLS, isotropic): E||w_n - w*||^2 = sigma^2 d/(T - d - 1) +
    n sigma0^2 d/(T0 - d - 1), exact at every size (the inverse-Wishart mean); 6 standard errors."""
    d, T, sigma, T0, sigma0, gens, trials = 8, 20, 0.9, 30, 0.6, 3, 20000
    errs = sim.model_collapse(d, T, sigma, T0, sigma0, gens, n_trials=trials, seed=3)
    exact = sigma**2 * d / (T - d - 1) + np.arange(gens + 1) * sigma0**2 * d / (T0 - d - 1)
    se = errs.std(axis=0, ddof=1) / math.sqrt(trials)
    assert np.all(np.abs(errs.mean(axis=0) - exact) < 6 * se), (errs.mean(axis=0), exact, se)


def test_simulator_shapes_and_validation():
    assert sim.model_collapse(4, 8, 1.0, 10, 0.5, 2, n_trials=3).shape == (3, 3)
    assert sim.model_collapse(4, 8, 1.0, 10, 0.5, 2, n_trials=3, ridge=[0.1, 1.0]).shape == (3, 3, 2)
    assert sim.model_collapse(4, 2, 1.0, 10, 0.5, 1, n_trials=2, ridge=0.5).shape == (2, 2)  # T < d with ridge
    with pytest.raises(ValueError, match="T"):
        sim.model_collapse(4, 2, 1.0, 10, 0.5, 1, n_trials=2, ridge=[0.0, 0.5])
    with pytest.raises(ValueError, match="ridge"):
        sim.model_collapse(4, 8, 1.0, 10, 0.5, 1, ridge=-0.1)
    with pytest.raises(ValueError, match="sigma"):
        sim.model_collapse(4, 8, 1e200, 10, 0.5, 1)


def test_theory_validation():
    with pytest.raises(ValueError, match="lam"):
        th.model_collapse_ridge_error(1, 5, 20, 1.0, 20, 0.5, -1.0)
    with pytest.raises(ValueError, match="T > d"):
        th.model_collapse_ridge_error(1, 5, 4, 1.0, 20, 0.5, 0.0)
    with pytest.raises(ValueError, match="T0"):
        th.model_collapse_optimal_ridge(1, 5, 20, 1.0, 6, 0.5)
    with pytest.raises(ValueError, match="gamma"):
        th.mp_resolvent(0.0, 2.0)
    with pytest.raises(TypeError, match="n_generations"):
        th.model_collapse_ridge_error(1.5, 5, 20, 1.0, 20, 0.5, 0.1)


@given(st.integers(0, 50), st.integers(2, 60), st.integers(1, 200), st.floats(0.05, 3.0), st.floats(0.0, 2.0))
@settings(max_examples=40, deadline=None)
def test_adaptive_ridge_never_loses_to_least_squares_or_the_zero_predictor(n, d, T, sigma, sigma0):
    T0 = d + 2 + T  # generators need T0 > d + 1
    lam = th.model_collapse_optimal_ridge(n, d, T, sigma, T0, sigma0)
    best = th.model_collapse_ridge_error(n, d, T, sigma, T0, sigma0, lam)
    assert best <= 1.0 * (1 + 1e-12)  # the zero predictor's error, |w*|^2 = 1
    for other in (lam / 3, lam * 3):
        assert best <= th.model_collapse_ridge_error(n, d, T, sigma, T0, sigma0, other) * (1 + 1e-12)
    if T > d + 1:
        assert best <= th.model_collapse_ridge_error(n, d, T, sigma, T0, sigma0, 0.0)


def test_grokking_from_a_scaled_start_against_the_marchenko_pastur_prediction():
    """The initial-scale term of the grokking losses: without weight decay both losses are (1 + sigma0^2) times
    those from zero (a closed-form identity), and the simulated delay follows the prediction within the
    finite-size spread the claim uses; the start is its own stream (data and teacher unchanged)."""
    from solvable.sims.regression import simulate_teacher_student
    from solvable.theory import deep_linear as th

    t = np.array([0.0, 50.0, 400.0])
    for lam in (0.2, 0.6):
        tr0, te0 = th.grokking_losses(t, lam, 0.01)
        tr, te = th.grokking_losses(t, lam, 0.01, init_scale=1.5)
        np.testing.assert_allclose(tr, 3.25 * tr0, rtol=1e-10)
        np.testing.assert_allclose(te, 3.25 * te0, rtol=1e-10)
    assert th.grokking_time(0.3, 0.01, 1e-3, init_scale=2.0) > th.grokking_time(0.3, 0.01, 1e-3) + 10
    with pytest.raises(ValueError, match="init_scale"):
        th.grokking_losses(t, 0.3, 0.01, init_scale=-1.0)
    a = simulate_teacher_student(300, 0.3, 0.01, 50, seed=3, record_at=[0, 50])
    b = simulate_teacher_student(300, 0.3, 0.01, 50, init_scale=1.0, seed=3, record_at=[0, 50])
    assert a.meta["eigenvalues"] == b.meta["eigenvalues"]  # the same data
    np.testing.assert_allclose(a.observables["test_loss"][0, 0], 1.0, rtol=0.2)  # ||W*||^2 = 1 per output
    np.testing.assert_allclose(b.observables["test_loss"][0, 0], 2.0, rtol=0.2)  # + sigma0^2


@pytest.mark.parametrize("lam, d_out, gamma, init_scale", [(0.3, 1, 0.0, 0.0), (0.5, 3, 2e-3, 1.5), (1.5, 2, 0.0, 0.7)])
def test_teacher_student_gd_in_the_eigenbasis_is_gd_on_the_data(lam, d_out, gamma, init_scale):
    """The simulator runs in the eigenbasis of the sample covariance; a plain NumPy loop of the update written on
    the data, W <- W - eta (2 (W - W*) X X^T / N + gamma W) / d_out, gives the same losses and the same W (the
    change of basis is orthogonal, so only round-off separates them)."""
    from solvable.sims.regression import simulate_teacher_student, teacher_student_data

    d_in, eta, steps = 60, 0.05, 200
    X, w_star, W = teacher_student_data(d_in, lam, d_out=d_out, init_scale=init_scale, seed=5)
    n = X.shape[1]
    train, test = [], []
    for k in range(steps + 1):
        e = W - w_star
        train.append(np.sum((e @ X) ** 2) / n / d_out)
        test.append(np.sum(e * e) / d_out)
        if k < steps:
            W = W - eta * (2 * (e @ X) @ X.T / n + gamma * W) / d_out
    run = simulate_teacher_student(d_in, lam, eta, steps, d_out=d_out, gamma=gamma, init_scale=init_scale, seed=5,
                                   record_at=np.arange(steps + 1))
    np.testing.assert_allclose(run.observables["train_loss"][0], train, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(run.observables["test_loss"][0], test, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(run.final["W"][0], W, rtol=1e-10, atol=1e-13)


def test_general_covariance_reduces_to_the_isotropic_formula():
    """At Sigma = I the general deterministic equivalent is the Marchenko-Pastur one (a different code path:
    the resolvent's closed form against the self-consistent kappa)."""
    d, T, T0 = 40, 90, 120
    w = np.full(d, 1 / np.sqrt(d))
    for n, lam in ((0, 0.05), (3, 0.3), (5, 2.0)):
        general = th.model_collapse_ridge_error_general(n, T, 1.0, T0, 0.5, lam, np.ones(d), w)["error"]
        assert general == pytest.approx(th.model_collapse_ridge_error(n, d, T, 1.0, T0, 0.5, lam), rel=1e-12)


def test_general_covariance_at_lambda_zero_is_ols():
    d, T, T0, n = 20, 60, 50, 3
    s = np.arange(1, d + 1) ** -1.5
    out = th.model_collapse_ridge_error_general(n, T, 0.7, T0, 0.4, 0.0, s, np.ones(d))
    assert out["bias"] == 0 and out["variance"] == pytest.approx(0.49 * d / (T - d))
    assert out["synthetic"] == pytest.approx(n * 0.16 * d / (T0 - d - 1))
    with pytest.raises(ValueError, match="lam = 0 needs T > d"):
        th.model_collapse_ridge_error_general(n, 10, 0.7, T0, 0.4, 0.0, s, np.ones(d))
    with pytest.raises(ValueError, match="spectrum"):
        th.model_collapse_ridge_error_general(n, T, 0.7, T0, 0.4, 0.1, -s, np.ones(d))


def test_power_law_monte_carlo_matches_the_equivalent():
    d, T = 20, 80
    s = np.arange(1, d + 1) ** -1.5
    w = np.arange(1, d + 1) ** -0.5
    errs = sim.model_collapse(d, T, 0.3, 4 * d, 0.3, 2, n_trials=600, seed=4, ridge=1e-2, spectrum=s, w_star=w)
    for n in (0, 2):
        pred = th.model_collapse_ridge_error_general(n, T, 0.3, 4 * d, 0.3, 1e-2, s, w)["error"]
        e = errs[:, n]
        assert abs(e.mean() - pred) < 4 * e.std() / np.sqrt(e.size) + 2 * pred / T
    with pytest.raises(ValueError, match="spectrum"):
        sim.model_collapse(d, T, 0.3, 4 * d, 0.3, 1, spectrum=np.ones(3))


def test_wishart_spectrum_has_the_exact_moments_and_the_direct_draws_distribution():
    """Dumitriu & Edelman's bidiagonal model against E tr W = mn, E tr W^2 = mn(m + n + 1) (exact, W ~ W_m(n, I)),
    and each ordered eigenvalue's mean against eigenvalues of X X^T drawn directly (5 standard errors)."""
    m, n, draws = 12, 20, 4000
    rng = np.random.default_rng(11)
    fast = np.array([sim.wishart_spectrum(m, n, rng) for _ in range(draws)])
    assert np.all(np.diff(fast, axis=1) >= 0) and np.all(fast > 0)
    for stat, exact in ((fast.sum(axis=1), m * n), ((fast**2).sum(axis=1), m * n * (m + n + 1))):
        assert abs(stat.mean() - exact) < 5 * stat.std(ddof=1) / math.sqrt(draws), (stat.mean(), exact)
    X = rng.standard_normal((draws, m, n))
    slow = np.linalg.eigvalsh(X @ np.swapaxes(X, 1, 2))
    se = np.sqrt(fast.var(axis=0, ddof=1) / draws + slow.var(axis=0, ddof=1) / draws)
    assert np.all(np.abs(fast.mean(axis=0) - slow.mean(axis=0)) < 5 * se)
    with pytest.raises(ValueError, match="n must be at least m"):
        sim.wishart_spectrum(5, 4, rng)


@pytest.mark.parametrize("gamma, init", [(0.0, 0.0), (1e-3, 0.0), (0.0, 1e-3)])
def test_the_grokking_delay_by_bisection_is_the_scan(gamma, init):
    """Where every mode falls monotonically the first crossing is found by bisection: the very step of a scan."""
    from solvable.proofs_checks.deep_linear.grokking import _finite_grok_time

    rng = np.random.default_rng(2)
    m, steps, eta, target = 150, 6000, 0.01, 2.5e-4
    ev = sim.wishart_spectrum(m, 450, rng) / 450
    extra = {"proj_init": np.full(m, init), "proj_cross": np.zeros(m)} if init else {}
    k = np.arange(steps + 1)[:, None]
    rate = 2 * ev + gamma
    decay = (1 - eta * rate) ** k
    sq = (gamma / rate + (2 * ev / rate) * decay) ** 2 / m + (decay**2 * init if init else 0.0)
    first = [int(np.argmax(x < target)) for x in (sq.sum(axis=1), sq @ ev)]
    assert min(first) > 0 and first[0] > first[1]
    assert _finite_grok_time(ev, np.full(m, 1 / m), eta, target, steps, gamma, **extra) == first[0] - first[1]
