"""theory.newton: damped Newton that stops on the gradient, not on objective values rounding has flattened."""

import numpy as np
import pytest

from solvable.theory import matrix_sensing as ms
from solvable.theory import newton


def _entropy_dual(a, y, log_a2, offset=0.0):
    def w(v):
        return np.exp(log_a2 + a.T @ v)

    return (lambda v: offset + float(np.sum(w(v)) - y @ v), lambda v: a @ w(v) - y,
            lambda v: (a * w(v)) @ a.T)


def test_reaches_the_gradient_where_objective_comparisons_have_stopped_resolving():
    """A constant 1e8 added to the objective changes nothing but its rounding: an Armijo test on values then
    fails from the first steps (gains below 1e8 x eps = 1e-8), so the gradient test must carry the iteration."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 8))
    y = a @ rng.uniform(0.2, 1.0, 8)
    f, g, h = _entropy_dual(a, y, 2 * np.log(0.01), offset=1e8)
    res = newton.minimise(f, g, h, np.zeros(4), gtol=1e-13 * np.linalg.norm(y))
    assert res.reason == "gradient" and res.grad_norm <= 1e-13 * np.linalg.norm(y)
    # the same objective without the constant: the same minimiser
    f0, g0, h0 = _entropy_dual(a, y, 2 * np.log(0.01))
    ref = newton.minimise(f0, g0, h0, np.zeros(4), gtol=1e-13 * np.linalg.norm(y))
    np.testing.assert_allclose(res.x, ref.x, rtol=1e-9, atol=1e-12)


def test_a_stalled_iteration_says_so():
    """A gradient inconsistent with its objective (no step length lowers either): 'stalled' at the start."""
    res = newton.minimise(lambda x: float(x @ x), lambda x: np.ones(1), lambda x: np.eye(1), np.zeros(1),
                          gtol=1e-12)
    assert res.reason == "stalled" and res.iterations == 0 and res.x[0] == 0.0


@pytest.mark.parametrize("seed, alpha", [(37, 1e-2), (46, 1e-3)])
def test_commuting_limit_converges_where_the_dual_value_test_stalled(seed, alpha):
    """The instances (matrix_sensing.nuclear_norm_bias at full size, seeds 37 and 46) on which the dual-value
    Armijo test stalled at primal residual 1e-9 and 2e-9 (t halved to 4.8e-7 for 500 iterations)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((8, 16))
    y = a @ np.sort(rng.uniform(0.2, 1.0, 16))[::-1]
    sol = ms.commuting_limit(a, y, alpha)
    assert sol.residuals["primal"] < 1e-13
    # stationarity by construction, and the limit is the KKT point: ln(w / alpha^2) = a^T nu
    np.testing.assert_allclose(np.log(sol.x / alpha**2), a.T @ sol.dual, rtol=1e-12, atol=1e-10)


def test_polishing_the_dual_at_tiny_alpha_warns_of_nothing():
    """diagonal.saddle_to_saddle asks argmin Q at alpha = 1e-30; the old polish took the norm of an overflowing trial
    gradient outside its errstate ('RuntimeWarning: overflow encountered in dot' broke the progress bar)."""
    import warnings

    from solvable.sims import diagonal as sim
    from solvable.theory import diagonal as th

    problem = sim.Problem.random(40, 80, 5, seed=0)  # the claim's full size, where the old polish warned
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sol = th.implicit_bias(problem.X, problem.y, 1e-30)
    assert sol.kkt_residual < 1e-9
