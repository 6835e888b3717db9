r"""Predictions for diagonal linear networks.

Model (Woodworth, Gunasekar, Lee, Moroshko, Savarese, Golan, Soudry & Srebro
2020, "Kernel and Rich Regimes in Overparametrized Models", Sec. 4):
:math:`w = u \odot u - v \odot v` with :math:`u(0) = v(0) = \alpha` and loss
:math:`L(w) = \|Xw - y\|^2 / (2n)`.

Along gradient flow :math:`\dot u = -2u \odot \nabla L(w)`,
:math:`\dot v = 2v \odot \nabla L(w)`, so
:math:`w(t) = 2\alpha^2 \sinh(X^\top \nu(t))` with
:math:`\nu(t) = -\tfrac{2}{n}\int_0^t r(s)\,ds` -- a mirror flow whose limit,
when it interpolates, is the minimiser of the hyperbolic-entropy potential
:math:`Q_\alpha` over :math:`\{w : Xw = y\}` (Woodworth et al. 2020, Theorem 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import newton
from .convex import ConvexSolution, SolverError, check_matrix, check_vector, solve
from ._format import shown

__all__ = ["q", "q_alpha", "implicit_bias", "min_l1_interpolator", "min_l2_interpolator", "kernel_correction",
           "saddle_to_saddle", "SaddleToSaddle", "shape_equivalent_alpha", "azulay_init", "azulay_k", "azulay_q",
           "azulay_to_library", "effective_alpha", "effective_alpha_from_run", "effective_alpha_sgd",
           "effective_alpha_two_point",
           "discrete_bias_bound",
           "hessian_trace", "hessian_top", "stability_bounds"]


def q(z: Any) -> np.ndarray:
    r"""The scalar potential :math:`q(z) = 2 - \sqrt{4 + z^2} + z \operatorname{arcsinh}(z/2)`.

    Source: Woodworth et al. 2020, Theorem 1. It is even, convex, ``q(0) = 0``,
    :math:`q'(z) = \operatorname{arcsinh}(z/2)`, behaves like :math:`z^2/4` near
    0 and like :math:`|z| \log|z|` at infinity. ``2 - sqrt(4 + z^2)`` is
    evaluated as ``-z (z / (2 + hypot(2, z)))``: no cancellation near 0 and no
    overflow for large ``|z|``.
    """
    z = np.asarray(z, dtype=float)
    with np.errstate(invalid="ignore"):
        out = -z * (z / (2.0 + np.hypot(2.0, z))) + z * np.arcsinh(z / 2.0)
    return np.where(np.isinf(z), np.inf, out)


#: alpha^2 must be a normal float64 number: alpha in [ALPHA_MIN, ALPHA_MAX].
ALPHA_MIN, ALPHA_MAX = 1e-150, 1e150


def _as_real(name: str, x: Any, allowed_ndim: tuple[int, ...]) -> np.ndarray:
    """A finite real array of one of ``allowed_ndim`` dimensions (scalars are 0-D)."""
    try:
        ndim = np.ndim(x) if not isinstance(x, (str, bytes)) else -1
    except ValueError as exc:  # ragged nested lists
        raise TypeError(f"{name} must be a real array: {exc}") from exc
    if ndim < 0:
        raise TypeError(f"{name} must be a real number or array; got {type(x).__name__}")
    if ndim not in allowed_ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, allowed_ndim))} dimension(s); got {ndim}")
    return check_matrix(name, x, ndim=ndim)


def _check_alpha(alpha: Any, d: int | None = None) -> np.ndarray:
    a = _as_real("alpha", alpha, (0, 1))
    if np.any(a < ALPHA_MIN) or np.any(a > ALPHA_MAX):
        raise ValueError(f"alpha must lie in [{ALPHA_MIN:g}, {ALPHA_MAX:g}] (alpha^2 a normal float); got {shown(alpha)}")
    if d is not None and a.ndim == 1 and a.shape[0] != d:
        raise ValueError(f"per-coordinate alpha must have length d={d}; got {a.shape[0]}")
    return a


def q_alpha(w: Any, alpha: Any) -> np.ndarray:
    r"""The implicit-bias potential :math:`Q_\alpha(w) = \sum_i \alpha_i^2 q(w_i / \alpha_i^2)`.

    Source: Woodworth et al. 2020, Theorem 1 (with ``alpha`` per coordinate as
    in their Sec. 5). As :math:`\alpha \to 0`, :math:`Q_\alpha / \log(1/\alpha^2)` tends to
    :math:`\|w\|_1` (rich regime); as
    :math:`\alpha \to \infty`, :math:`Q_\alpha \approx \|w\|_2^2 / (4\alpha^2)`
    (kernel regime).

    Parameters
    ----------
    w : array_like, shape (..., d)
    alpha : float or array_like, shape (d,)

    Returns
    -------
    ndarray, shape (...)
    """
    w = _as_real("w", w, (0, 1, 2, 3))
    a2 = _check_alpha(alpha) ** 2
    return np.sum(a2 * q(w / a2), axis=-1)


def _dual_value(z: np.ndarray, a2: np.ndarray) -> np.ndarray:
    """Conjugate potential ``Q*(z) = sum a2 (2 cosh z - 2) = sum 4 a2 sinh(z/2)^2`` (Legendre transform of Q_alpha)."""
    return np.sum(4.0 * a2 * np.sinh(z / 2.0) ** 2)


def _w_of_z(z: np.ndarray, log_a2: np.ndarray) -> np.ndarray:
    """``2 alpha^2 sinh(z)`` as ``sign(z) exp(|z| + log a2) (1 - exp(-2|z|))``: no overflow for
    large ``|z|`` (small alpha), no cancellation for small ``|z|`` (large alpha)."""
    return np.sign(z) * np.exp(np.abs(z) + log_a2) * -np.expm1(-2.0 * np.abs(z))


def _polish_dual(X: np.ndarray, y: np.ndarray, log_a2: np.ndarray, nu: np.ndarray, iters: int = 50) -> np.ndarray:
    r"""Damped Newton iterations on the smooth, strictly convex dual, from the conic solution.

    Interior-point solvers stop at a relative accuracy near 1e-8 of *their*
    scaling; for large alpha the dual is nearly linear and that leaves
    :math:`\|Xw - y\|` at percents. Newton's method on
    :math:`D(\nu) = \sum \alpha^2 (e^{z} + e^{-z}) - y^\top\nu` (gradient
    :math:`Xw(\nu) - y`, Hessian :math:`X \operatorname{diag}(2\alpha^2\cosh z) X^\top`)
    with Armijo backtracking converges quadratically from there (:func:`theory.newton.minimise`, which also
    accepts a step that shrinks the gradient once the objective's change drowns in rounding).
    """

    def objective(v: np.ndarray) -> float:
        # sum a2 (e^z + e^-z - 2) = sum exp(|z| + log a2) (1 - e^-|z|)^2, without cancellation
        z = np.abs(X.T @ v)
        return float(np.sum(np.exp(z + log_a2) * np.expm1(-z) ** 2) - y @ v)

    def gradient(v: np.ndarray) -> np.ndarray:
        return X @ _w_of_z(X.T @ v, log_a2) - y

    def hessian(v: np.ndarray) -> np.ndarray:
        z = np.abs(X.T @ v)
        return (X * (np.exp(z + log_a2) * (1.0 + np.exp(-2.0 * z)))) @ X.T

    return newton.minimise(objective, gradient, hessian, nu, gtol=1e-15 * max(np.linalg.norm(y), 1.0),
                           max_iter=iters).x


def implicit_bias(X: Any, y: Any, alpha: Any, *, solver: str | None = None) -> ConvexSolution:
    r"""Limit of gradient flow: :math:`\arg\min Q_\alpha(w)` s.t. :math:`Xw = y`.

    Source: Woodworth et al. 2020, Theorem 1. Solved through the dual, an
    exponential-cone program in cvxpy,

    .. math::
        \min_\nu \sum_i \alpha_i^2 (e^{z_i} + e^{-z_i}) - y^\top \nu,
        \qquad z = X^\top \nu,

    whose stationarity condition is :math:`Xw = y` with
    :math:`w = 2\alpha^2 \sinh(z)` -- exactly the form the flow's iterates
    take. Written as ``exp(z + log alpha^2)`` the program stays well scaled
    for every alpha from 1e-12 to 1e3 (the primal Kullback-Leibler form does
    not: its entries span ``alpha^2 .. 1``). The conic solution is then
    polished by damped Newton steps on the same dual (see ``_polish_dual``),
    which takes the certificate from the solver's ~1e-6 to ~1e-12.

    Certificate (``residuals``): primal feasibility
    :math:`\|Xw - y\| / \|y\|`, stationarity
    :math:`\|\operatorname{arcsinh}(w / 2\alpha^2) - X^\top\nu\| / \|X^\top\nu\|`,
    and the relative duality gap :math:`|Q_\alpha(w) - (y^\top\nu - Q^*(X^\top\nu))|`.

    Parameters
    ----------
    X : array_like, shape (n, d)
    y : array_like, shape (n,)
    alpha : float > 0 or array_like (d,) of them
    solver : str, optional
        A cvxpy solver name supporting exponential cones (default Clarabel).

    Returns
    -------
    ConvexSolution
        ``x`` is the minimiser ``w``; ``dual`` is ``nu``.

    Raises
    ------
    SolverError
        If the solver fails or reports infeasibility/unboundedness (e.g. ``y``
        not in the range of ``X``: the dual is then unbounded), or ends
        "optimal_inaccurate" and the Newton polish cannot certify the point to
        a KKT residual of 1e-9.
    """
    import cvxpy as cp

    X = check_matrix("X", X)
    y = check_vector("y", y)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have length n={X.shape[0]} (rows of X); got {y.shape[0]}")
    a = _check_alpha(alpha, X.shape[1])
    a2 = np.broadcast_to(a**2, (X.shape[1],))
    log_a2 = np.log(a2)
    nu = cp.Variable(X.shape[0])
    z = X.T @ nu
    objective = cp.sum(cp.exp(z + log_a2)) + cp.sum(cp.exp(-z + log_a2)) - y @ nu
    prob = cp.Problem(cp.Minimize(objective))
    status = solve(prob, solver, allow_inaccurate=True)
    nu_v = _polish_dual(X, y, log_a2, np.asarray(nu.value, dtype=float))
    zv = X.T @ nu_v
    w = _w_of_z(zv, log_a2)
    value = float(np.sum(a2 * q(w / a2)))
    ynorm = max(np.linalg.norm(y), np.finfo(float).tiny)
    gap = abs(value - (y @ nu_v - _dual_value(zv, a2)))
    residuals = {
        "primal_feasibility": np.linalg.norm(X @ w - y) / ynorm,
        "stationarity": np.linalg.norm(np.arcsinh(w / (2 * a2)) - zv) / max(np.linalg.norm(zv), 1.0),
        "duality_gap": gap / max(abs(value), np.finfo(float).tiny),
    }
    if status != "optimal":
        # An inaccurate conic solution was only the start of the Newton polish: the prediction stands on
        # its own certificate, or not at all.
        if max(residuals.values()) > 1e-9:
            raise SolverError("the conic solution was inaccurate and polishing did not certify it "
                              f"(KKT residual {max(residuals.values()):.1e})", status)
        status = f"{status}, polished to a certified optimum"
    return ConvexSolution.certified(w, value, residuals, dual=nu_v, status=status, solver=solver or "CLARABEL")


def min_l1_interpolator(X: Any, y: Any, *, solver: str | None = None) -> ConvexSolution:
    r"""Minimum-:math:`\ell_1` interpolator :math:`\arg\min \|w\|_1` s.t. :math:`Xw = y` (basis pursuit).

    The :math:`\alpha \to 0` limit of the diagonal network's gradient flow
    (Woodworth et al. 2020, Theorem 2; Pesme & Flammarion 2023, Theorem 2).
    Certificate: primal feasibility, dual feasibility
    :math:`\max(\|X^\top\nu\|_\infty - 1, 0)` and the relative duality gap
    :math:`(\|w\|_1 - y^\top\nu) / \|w\|_1`.
    """
    import cvxpy as cp

    X = check_matrix("X", X)
    y = check_vector("y", y)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have length n={X.shape[0]} (rows of X); got {y.shape[0]}")
    w = cp.Variable(X.shape[1])
    cons = [X @ w == y]
    prob = cp.Problem(cp.Minimize(cp.norm1(w)), cons)
    status = solve(prob, solver)
    wv = np.asarray(w.value, dtype=float)
    nu = -np.asarray(cons[0].dual_value, dtype=float)  # cvxpy: grad f = -A^T dual
    value = float(np.sum(np.abs(wv)))
    ynorm = max(np.linalg.norm(y), np.finfo(float).tiny)
    residuals = {
        "primal_feasibility": np.linalg.norm(X @ wv - y) / ynorm,
        "dual_feasibility": max(np.max(np.abs(X.T @ nu)) - 1.0, 0.0),
        "duality_gap": abs(value - y @ nu) / max(value, np.finfo(float).tiny),
    }
    return ConvexSolution.certified(wv, value, residuals, dual=nu, status=status, solver=solver or "CLARABEL")


def min_l2_interpolator(X: Any, y: Any) -> ConvexSolution:
    r"""Minimum-:math:`\ell_2` interpolator :math:`X^\top (XX^\top)^{+} y`.

    The :math:`\alpha \to \infty` limit of the diagonal network's gradient flow
    (Woodworth et al. 2020, Theorem 2: the kernel regime, where
    :math:`Q_\alpha(w) \approx \|w\|^2 / (4\alpha^2)`). Closed form by least
    squares; the certificate is primal feasibility and stationarity
    :math:`w \in \operatorname{range}(X^\top)`.

    Raises
    ------
    SolverError
        With status ``infeasible`` if ``Xw = y`` has no solution.
    """
    X = check_matrix("X", X)
    y = check_vector("y", y)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have length n={X.shape[0]} (rows of X); got {y.shape[0]}")
    w, *_ = np.linalg.lstsq(X, y, rcond=None)
    nu, *_ = np.linalg.lstsq(X.T, w, rcond=None)
    ynorm = max(np.linalg.norm(y), np.finfo(float).tiny)
    residuals = {
        "primal_feasibility": np.linalg.norm(X @ w - y) / ynorm,
        "stationarity": np.linalg.norm(X.T @ nu - w) / max(np.linalg.norm(w), np.finfo(float).tiny),
    }
    if residuals["primal_feasibility"] > 1e-8:
        raise SolverError("X w = y has no solution: y is not in the range of X", "infeasible")
    return ConvexSolution.certified(w, 0.5 * float(w @ w), residuals, dual=nu, status="closed form", solver="lstsq")


def kernel_correction(X: Any, y: Any) -> np.ndarray:
    r"""Leading-order departure of the flow limit from the min-:math:`\ell_2` interpolator at large alpha.

    .. math::
        \arg\min_{Xw = y} Q_\alpha(w) = w_2 + \frac{c}{\alpha^4} + O(\alpha^{-8}),
        \qquad c = \tfrac{1}{24} P_{\ker X}\big(w_2^{\odot 3}\big),

    with :math:`w_2` the min-:math:`\ell_2` interpolator and
    :math:`P_{\ker X}` the orthogonal projector on the null space of ``X``.

    Derivation (this library, from Woodworth et al. 2020, Theorem 1): the
    series :math:`q(z) = z^2/4 - z^4/192 + O(z^6)` (checked by sympy in
    :mod:`theory.diagonal_symbolic`) gives
    :math:`Q_\alpha(w) = \|w\|^2/(4\alpha^2) - \sum_i w_i^4/(192\alpha^6) + O(\alpha^{-10})`.
    On the interpolators :math:`w = w_2 + N\delta` (:math:`N` an orthonormal
    basis of :math:`\ker X`, :math:`w_2 \perp \ker X`) stationarity in
    :math:`\delta` reads :math:`\delta/(2\alpha^2) = N^\top w^{\odot 3}/(48\alpha^6)`,
    so :math:`N\delta = P_{\ker X}(w_2^{\odot 3})/(24\alpha^4)` to leading order.
    The neglected terms are smaller by a factor of order
    :math:`\max_i w_{2,i}^2/\alpha^4`. Hence the distance to the
    min-:math:`\ell_2` interpolator decays like :math:`\alpha^{-4}` in the
    kernel regime.

    Returns
    -------
    ndarray, shape (d,)
        The vector ``c``.
    """
    X = check_matrix("X", X)
    y = check_vector("y", y)
    w2 = min_l2_interpolator(X, y).x
    cube = w2**3
    basis, _ = np.linalg.qr(X.T)  # orthonormal basis of range(X^T)
    return (cube - basis @ (basis.T @ cube)) / 24.0


@dataclass(frozen=True)
class SaddleToSaddle:
    r"""The alpha -> 0 limit of gradient flow in rescaled time (see :func:`saddle_to_saddle`).

    Attributes
    ----------
    times : ndarray, shape (K + 1,)
        Rescaled jump times :math:`\tilde t_0 = 0 < \tilde t_1 < \dots < \tilde t_K`; the
        flow sits at ``saddles[k]`` on :math:`(\tilde t_k, \tilde t_{k+1})`.
    saddles : ndarray, shape (K + 1, d)
        Visited saddles; ``saddles[0] = 0`` and ``saddles[-1]`` is the min-l1 interpolator.
    s : ndarray, shape (K + 1, d)
        The dual variable :math:`s(\tilde t_k)`, in :math:`[-1, 1]^d`.
    active : list of ndarray
        Coordinates allowed to be non-zero on each plateau (``|s_i| = 1``).
    losses : ndarray, shape (K + 1,)
        Training loss on each plateau.
    """

    times: np.ndarray
    saddles: np.ndarray
    s: np.ndarray
    active: list
    losses: np.ndarray

    def at(self, t: Any) -> np.ndarray:
        """The limiting trajectory at rescaled times ``t``: the saddle of the plateau containing each."""
        idx = np.searchsorted(self.times, np.asarray(t, dtype=float), side="right") - 1
        return self.saddles[np.clip(idx, 0, len(self.times) - 1)]


def _sign_constrained_lstsq(X: np.ndarray, y: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """argmin ||X beta - y||^2 subject to sign(beta_i) in {0, signs[i]} (zero outside the support).

    Flipping the columns by their sign turns it into non-negative least squares,
    solved exactly by the Lawson-Hanson active-set method (scipy.optimize.nnls).
    """
    from scipy.optimize import nnls

    beta = np.zeros(X.shape[1])
    support = np.nonzero(signs)[0]
    if support.size:
        coef, _ = nnls(X[:, support] * signs[support], y, maxiter=50 * max(support.size, 10))
        beta[support] = coef * signs[support]
    return beta


def saddle_to_saddle(X: Any, y: Any, *, max_jumps: int | None = None, tol: float = 1e-10) -> SaddleToSaddle:
    r"""The saddle-to-saddle limit of gradient flow as alpha -> 0 (Pesme & Flammarion 2023, Algorithm 1).

    Parametrisation and time constants, derived for this library's model
    :math:`w = u^2 - v^2`, :math:`u(0) = v(0) = \alpha`,
    :math:`L = \|Xw - y\|^2/(2n)`: along the flow
    :math:`u = \alpha e^{-2G}`, :math:`v = \alpha e^{2G}` with
    :math:`G(t) = \int_0^t \nabla L(w(\tau))\,d\tau`, so
    :math:`w_i = \alpha^2(\alpha^{-2S_i} - \alpha^{2S_i})` with
    :math:`S = -2G/\ln(1/\alpha)`. In rescaled time
    :math:`\tilde t = t/\ln(1/\alpha)` the dual variable obeys
    :math:`dS/d\tilde t = -2\nabla L(\beta)`, and as :math:`\alpha \to 0` a
    coordinate can be non-zero only once :math:`|S_i| = 1`, with the sign of
    :math:`S_i`. Hence the algorithm (Pesme & Flammarion's Algorithm 1 with the
    rate 2 of this parametrisation: their jump times are twice ours):

    from :math:`s = 0, \beta = 0, \tilde t = 0`, repeat

    1. :math:`g = \nabla L(\beta) = X^\top(X\beta - y)/n`; stop when :math:`g = 0`;
    2. :math:`\Delta = \min_i \{(1 - \operatorname{sign}(-g_i) s_i)/(2|g_i|) : |s_i| < 1, g_i \ne 0\}`
       (the first new coordinate to reach the boundary);
    3. :math:`s \leftarrow s - 2\Delta g`, :math:`\tilde t \leftarrow \tilde t + \Delta`;
    4. :math:`\beta \leftarrow \arg\min L` subject to :math:`\beta_i \ge 0` where
       :math:`s_i = 1`, :math:`\beta_i \le 0` where :math:`s_i = -1`,
       :math:`\beta_i = 0` elsewhere (a non-negative least-squares problem).

    The last saddle is the minimum-:math:`\ell_1` interpolator (Pesme &
    Flammarion 2023, Theorem 2), which a test checks against the LP.

    Parameters
    ----------
    X : array_like, shape (n, d)
    y : array_like, shape (n,)
    max_jumps : int, optional
        Safety bound on the number of jumps (default ``10 * d``).
    tol : float
        Relative tolerance on the gradient below which a saddle is stationary.
    """
    X = check_matrix("X", X)
    y = check_vector("y", y)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y must have length n={X.shape[0]} (rows of X); got {y.shape[0]}")
    n, d = X.shape
    max_jumps = 10 * d if max_jumps is None else int(max_jumps)
    s = np.zeros(d)
    beta = np.zeros(d)
    t = 0.0
    times, saddles, duals, actives, losses = [0.0], [beta.copy()], [s.copy()], [np.array([], dtype=int)], []
    scale = np.linalg.norm(X.T @ y) / n
    for _ in range(max_jumps):
        r = X @ beta - y
        losses.append(float(r @ r / (2 * n)))
        g = X.T @ r / n
        inside = np.abs(s) < 1 - 1e-12
        moving = inside & (np.abs(g) > tol * scale)
        if not moving.any():
            break
        target = np.sign(-g)
        delta = np.full(d, np.inf)
        delta[moving] = (1 - target[moving] * s[moving]) / (2 * np.abs(g[moving]))
        i = int(np.argmin(delta))
        step = delta[i]
        s = np.clip(s - 2 * step * g, -1.0, 1.0)
        s[i] = target[i]
        t += step
        boundary = np.where(np.abs(s) >= 1 - 1e-12, np.sign(s), 0.0)
        beta = _sign_constrained_lstsq(X, y, boundary)
        times.append(t)
        saddles.append(beta.copy())
        duals.append(s.copy())
        actives.append(np.nonzero(boundary)[0])
    else:
        raise RuntimeError(f"saddle_to_saddle did not reach a stationary saddle in {max_jumps} jumps")
    return SaddleToSaddle(times=np.array(times), saddles=np.array(saddles), s=np.array(duals), active=actives,
                          losses=np.array(losses))


def shape_equivalent_alpha(alpha: Any, shape: Any) -> np.ndarray:
    r"""The scale of the potential minimised by a diagonal network of initialisation shape ``shape``.

    Model (Azulay et al. 2021, "On the Implicit Bias of Initialization Shape",
    Sec. 4): :math:`w = u_+ \odot v_+ - u_- \odot v_-`, initialised with
    :math:`u_\pm(0) = u_0`, :math:`v_\pm(0) = v_0`, parametrised here by the
    scale :math:`\alpha^2 = u_0 v_0` and the shape
    :math:`s = (u_0^2 - v_0^2)/(u_0^2 + v_0^2) \in (-1, 1)`.

    Derivation (this library; it reproduces Azulay et al.'s closed form):
    gradient flow conserves :math:`\delta = u_\pm^2 - v_\pm^2` and gives
    :math:`\dot w_\pm = \mp\sqrt{\delta^2 + 4w_\pm^2}\,\nabla L`, whose solution
    is :math:`w = -(u_0^2 + v_0^2)\sinh(2G)`, :math:`G = \int \nabla L`. The
    limit therefore minimises
    :math:`\sum_i K_i - \sqrt{K_i^2 + w_i^2} + w_i\operatorname{arcsinh}(w_i/K_i)`
    with :math:`K = u_0^2 + v_0^2`, which is :math:`Q_{\alpha'}` of
    :func:`q_alpha` with :math:`2\alpha'^2 = K`:

    .. math:: \alpha' = \alpha\,(1 - s^2)^{-1/4}.

    Only :math:`u_0^2 + v_0^2` enters: at a fixed product :math:`u_0 v_0`, an
    unbalanced shape enlarges the effective scale and pushes the limit toward
    the kernel regime. (Azulay et al. write the scale as
    :math:`k = 2(u_0^2 + v_0^2)` for their normalisation of the model; in this
    library's normalisation it is :math:`K = u_0^2 + v_0^2`, confirmed by the
    claim ``diagonal.init_shape``.)
    """
    a = _check_alpha(alpha)
    s = _as_real("shape", shape, (0, 1))
    if np.any(np.abs(s) >= 1):
        raise ValueError(f"shape must lie in (-1, 1); got {shown(shape)}")
    return a * (1 - s**2) ** -0.25


def azulay_init(alpha: Any, shape: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Azulay et al. 2021's initialisation: :math:`u_0 = \sqrt{\alpha(1 - s)/(1 + s)}`,
    :math:`v_0 = \sqrt{\alpha(1 + s)/(1 - s)}`, so :math:`u_0 v_0 = \alpha` (Sec. 4, before Theorem 4.1).

    Their :math:`\alpha` is this library's :math:`\alpha^2` and their shape is not the library's:
    see :func:`azulay_to_library`.
    """
    a = _check_alpha(alpha)
    s = _as_real("shape", shape, (0, 1))
    if np.any(np.abs(s) >= 1):
        raise ValueError(f"shape must lie in (-1, 1); got {shown(shape)}")
    return np.sqrt(a * (1 - s) / (1 + s)), np.sqrt(a * (1 + s) / (1 - s))


def azulay_k(alpha: Any, shape: Any) -> np.ndarray:
    r"""The scale :math:`k = 2u_0^2 + 2v_0^2 = 4\alpha(1 + s^2)/(1 - s^2)` of Azulay et al.'s potential (Thm 4.1)."""
    u0, v0 = azulay_init(alpha, shape)
    return 2 * u0**2 + 2 * v0**2


def azulay_q(x: Any, k: Any) -> np.ndarray:
    r"""Azulay et al. 2021, Theorem 4.1: :math:`q_k(x) = \frac{k}{4}\big(1 - \sqrt{1 + 4x^2/k^2}
    + \frac{2x}{k}\operatorname{arcsinh}\frac{2x}{k}\big)`, so :math:`q_k'(x) = \tfrac12\operatorname{arcsinh}(2x/k)`.

    With :math:`k = 2K`, :math:`K = u_0^2 + v_0^2`, it is half of this library's potential
    :math:`\alpha'^2 q(x/\alpha'^2)` at :math:`2\alpha'^2 = K` (:func:`shape_equivalent_alpha`): the same minimiser.
    """
    x = np.asarray(x, dtype=float)
    k = _check_alpha(k)
    z = 2 * x / k
    return (k / 4) * (-z * (z / (1.0 + np.hypot(1.0, z))) + z * np.arcsinh(z))


def azulay_to_library(alpha: Any, shape: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Azulay et al.'s :math:`(\alpha, s)` as this library's ``(alpha, shape)`` of
    :func:`sims.diagonal.simulate`: :math:`\alpha_{lib} = \sqrt\alpha` (the library fixes
    :math:`u_0v_0 = \alpha_{lib}^2`) and :math:`s_{lib} = (u_0^2 - v_0^2)/(u_0^2 + v_0^2) = -2s/(1 + s^2)`."""
    u0, v0 = azulay_init(alpha, shape)
    return np.sqrt(u0 * v0), (u0**2 - v0**2) / (u0**2 + v0**2)


def effective_alpha(u: Any, v: Any) -> np.ndarray:
    r"""The effective initial scale :math:`\alpha_\infty = \sqrt{u \odot v}` of a discrete run.

    Derivation (this library, after Pesme, Pillaud-Vivien & Flammarion 2021
    and Even, Pesme, Gunasekar & Flammarion 2023): a GD or SGD step with
    (stochastic) gradient :math:`g_k` of :math:`L` in :math:`w` multiplies
    :math:`u` by :math:`1 - 2\gamma g_k` and :math:`v` by :math:`1 + 2\gamma g_k`,
    so :math:`u_k v_k = \alpha^2\prod_j (1 - 4\gamma^2 g_j^2)` and
    :math:`w_k = 2\,u_k v_k \sinh(-2\theta_k)` with
    :math:`\theta_k = \sum_j \operatorname{arctanh}(2\gamma g_j)`. The limit is
    the minimiser of :math:`Q_{\alpha_\infty}` over the interpolators, up to the
    non-linear part of :math:`\operatorname{arctanh}` (see
    :func:`discrete_bias_bound`); gradient flow keeps :math:`uv = \alpha^2`.
    Valid while every factor stays positive (:math:`2\gamma|g_k| < 1`).

    Raises
    ------
    ValueError
        If some :math:`u_i v_i \le 0` (a factor changed sign: the step was too large
        for this description).
    """
    u = _as_real("u", u, (1, 2))
    v = _as_real("v", v, (1, 2))
    prod = u * v
    if np.any(prod <= 0):
        raise ValueError("u * v must stay > 0: a factor changed sign, the step was too large for this description")
    return np.sqrt(prod)


def discrete_bias_bound(X: Any, u: Any, v: Any) -> float:
    r"""How far a discrete run's limit may sit from :math:`\arg\min Q_{\alpha_\infty}` (absolute, in w).

    With :math:`\alpha_\infty = \sqrt{uv}` the final iterate satisfies exactly
    :math:`\operatorname{arcsinh}(w/2\alpha_\infty^2) = \ln(u/v) =: z`
    (the parametrisation); for the flow :math:`z \in \operatorname{range}(X^\top)`,
    which is the optimality condition of the potential problem. For discrete
    steps :math:`z` has a component :math:`e_\perp = P_{\ker X} z` outside it
    (from the cubic and higher terms of arctanh), so the iterate is the exact
    minimiser of :math:`Q_{\alpha_\infty}(w) - e_\perp^\top w` over the
    interpolators. :math:`Q_{\alpha_\infty}` is
    :math:`1/\max_i\sqrt{w_i^2 + 4\alpha_{\infty,i}^4}`-strongly convex on that
    set, hence the bound
    :math:`\|w - \arg\min Q_{\alpha_\infty}\| \le \|e_\perp\| \max_i \sqrt{w_i^2 + 4\alpha_{\infty,i}^4}`.
    """
    X = check_matrix("X", X)
    u = _as_real("u", u, (1,))
    v = _as_real("v", v, (1,))
    a2 = effective_alpha(u, v) ** 2
    z = np.log(u / v)  # = arcsinh(w / 2 a2) exactly
    basis, _ = np.linalg.qr(X.T)
    e_perp = z - basis @ (basis.T @ z)
    w = u * u - v * v
    return float(np.linalg.norm(e_perp) * np.max(np.sqrt(w**2 + 4 * a2**2)))


def hessian_trace(X: Any, u: Any, v: Any) -> float:
    r"""Trace of the loss Hessian in :math:`(u, v)` at an interpolating point.

    At zero residual the Hessian of :math:`L = \|Xw - y\|^2/(2n)` is
    :math:`J^\top J/n` with rows :math:`J_j = [2u \odot x_j, -2v \odot x_j]`, so
    :math:`\operatorname{tr} H = \tfrac{4}{n}\sum_i (u_i^2 + v_i^2)\|X_{:,i}\|^2
    \ge \tfrac{4}{n}\sum_i |w_i|\,\|X_{:,i}\|^2`: a weighted :math:`\ell_1` norm
    of :math:`w` (the link of Wu & Su 2023, Sec. 5, "The Implicit Regularization
    of Dynamical Stability in Stochastic Gradient Descent").
    """
    X = check_matrix("X", X)
    u = _as_real("u", u, (1,))
    v = _as_real("v", v, (1,))
    return float(4.0 / X.shape[0] * np.sum((u**2 + v**2) * np.sum(X**2, axis=0)))


def hessian_top(X: Any, u: Any, v: Any) -> float:
    r"""Largest eigenvalue of the loss Hessian in :math:`(u, v)` at an interpolating point:
    :math:`\lambda_{\max}(J^\top J/n) = \lambda_{\max}(\tfrac4n X\operatorname{diag}(u^2 + v^2)X^\top)`."""
    X = check_matrix("X", X)
    u = _as_real("u", u, (1,))
    v = _as_real("v", v, (1,))
    return float(np.linalg.eigvalsh(4.0 / X.shape[0] * (X * (u**2 + v**2)) @ X.T)[-1])


def stability_bounds(lr: Any) -> dict[str, np.ndarray]:
    r"""Linear-stability thresholds at step size ``lr`` (Wu & Su 2023, Sec. 3).

    A global minimum that is linearly stable for GD has
    :math:`\lambda_{\max}(H) \le 2/\eta`; for SGD with batch size one (in the
    mean-square sense, at an interpolating minimum)
    :math:`\operatorname{tr}(H) \le 2/\eta`.
    """
    eta = _as_real("lr", lr, (0, 1))
    if np.any(eta <= 0):
        raise ValueError("lr must be > 0")
    return {"gd_top": 2.0 / eta, "sgd_trace": 2.0 / eta}


def effective_alpha_from_run(X: Any, y: Any, ws: Any, lr: float, batch_size: int | None = None) -> dict[str, np.ndarray]:
    r"""The effective scale of a GD or SGD run predicted from its iterates: :math:`\ln(\alpha_\infty/\alpha)` per
    coordinate.

    A step with gradient :math:`g_k` in :math:`w` multiplies :math:`uv` by :math:`1 - 4\eta^2g_k^2`
    (:func:`effective_alpha`), so for GD, with :math:`g_k = X^\top(Xw_k - y)/n` read off the iterates ``ws``
    (``(steps, d)``, :math:`w_0, w_1, \dots` up to the last step taken),
    :math:`\ln(\alpha_\infty/\alpha) = \tfrac12\sum_k\ln(1 - 4\eta^2g_k^2)` exactly; its leading order
    :math:`-2\eta^2\sum_k g_k^2` is the form of Even, Pesme, Gunasekar & Flammarion 2023 (Sec. 3, in this
    library's parameterisation), within :math:`\tfrac14\sum_k x_k^2/(1 - x_k)`, :math:`x_k = 4\eta^2g_k^2`
    (from :math:`|\ln(1 - x) + x| \le x^2/(2(1 - x))`).

    For SGD with one sample per step (``batch_size=1``, Pesme, Pillaud-Vivien & Flammarion 2021's setting) the
    sample's gradient is :math:`r_{k,i}x_i`; the realised sum differs from
    :math:`\tfrac12\sum_k E_i\ln(1 - 4\eta^2 r_{k,i}^2x_i^2)` (the iterate-wise average over the sample drawn)
    by a martingale, whose variance :math:`\tfrac14\sum_k\operatorname{Var}_i\ln(\cdot)` is returned: the
    prediction holds to a few of its standard deviations (derived here). Returns ``"log_ratio"``,
    ``"leading"`` (GD), ``"leading_bound"`` (GD) and ``"variance"`` (SGD).
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    W = np.asarray(ws, dtype=float)
    if W.ndim != 2 or W.shape[1] != X.shape[1]:
        raise ValueError(f"ws must be (steps, d = {X.shape[1]}); got {W.shape}")
    lr = float(lr)
    n = X.shape[0]
    R = W @ X.T - y  # (steps, n)
    if batch_size is None:
        x = 4 * lr**2 * (R @ X / n) ** 2
        if np.any(x >= 1):
            raise ValueError("a factor 1 - 4 lr^2 g^2 is <= 0: the step was too large for this description")
        return {"log_ratio": 0.5 * np.sum(np.log1p(-x), axis=0), "leading": -0.5 * np.sum(x, axis=0),
                "leading_bound": 0.25 * np.sum(x**2 / (1 - x), axis=0)}
    if batch_size != 1:
        raise ValueError(f"batch_size must be None (GD) or 1; got {batch_size!r}")
    x = 4 * lr**2 * (R[:, :, None] * X[None, :, :]) ** 2  # (steps, n, d)
    if np.any(x >= 1):
        raise ValueError("a factor 1 - 4 lr^2 g^2 is <= 0: the step was too large for this description")
    logs = 0.5 * np.log1p(-x)
    return {"log_ratio": logs.mean(axis=1).sum(axis=0), "variance": logs.var(axis=1).sum(axis=0)}


def effective_alpha_sgd(X: Any, y: Any, ws: Any, lr: float, batch_size: int) -> dict[str, np.ndarray]:
    r"""The effective scale of mini-batch SGD in closed form in the step and the batch noise:
    :math:`\ln(\alpha_\infty/\alpha)` per coordinate, predicted from the iterates.

    Derived here, in this library's parameterisation (:math:`w = u^2 - v^2`, :math:`u_0 = v_0 = \alpha`,
    :math:`L = \|Xw - y\|^2/(2n)`); the form is that of Pesme, Pillaud-Vivien & Flammarion 2021 (Theorem 1:
    the stochastic flow's effective scale is :math:`\alpha` shrunk by the exponential of the step times the
    integral of the loss, "the slower the convergence, the better the bias") and of Even, Pesme, Gunasekar &
    Flammarion 2023 (Sec. 3, discrete SGD), whose own constants could not be read.

    A step on a batch :math:`\mathcal B` of :math:`B` samples drawn without replacement (as
    ``sims.rules.SGD`` does) moves :math:`w_j` with the batch gradient
    :math:`g_{\mathcal B,j} = \frac1B\sum_{i\in\mathcal B} r_ix_{ij}` and multiplies :math:`u_jv_j` by
    :math:`1 - 4\eta^2g_{\mathcal B,j}^2` (:func:`effective_alpha`). Over the draw,

    .. math::
        E\,g_{\mathcal B,j}^2 = g_j^2 + c_B\operatorname{Var}_i(r_ix_{ij}),\qquad
        c_B = \frac{n - B}{B(n - 1)},

    (the variance of a mean drawn without replacement; :math:`\operatorname{Var}_i` with :math:`1/n`), so the
    leading order of :math:`\ln(\alpha_\infty/\alpha)`, summed along the run, is

    .. math::
        -2\eta^2\sum_k\Big[(1 - c_B)\,g_{k,j}^2 + c_B\,\overline{(r_kx_j)^2}\Big],

    GD's :math:`-2\eta^2\sum g^2` at :math:`B = n` (:math:`c_n = 0`) plus the noise's share, which grows as the
    batch shrinks. Summed over the coordinates, for rows of equal norm :math:`R^2 = \|x_i\|^2`, the noise's
    share is :math:`\overline{r^2\|x\|^2} = 2R^2L_k` exactly, and

    .. math::
        \sum_j\ln\frac{\alpha_{\infty,j}}{\alpha} \approx -2\eta^2(1 - c_B)\sum_k\|g_k\|^2
        - 4\eta\,c_BR^2\int_0^\infty L\,dt,\qquad \int_0^\infty L\,dt := \eta\sum_kL_k,

    Pesme et al.'s loss integral with the step and the batch noise made explicit.

    The realised log ratio is :math:`\sum_k\frac12\ln(1 - x_k)` with :math:`x_k = 4\eta^2g_{\mathcal B_k,j}^2`.
    It differs from the leading order by (i) the Taylor remainder of each term's expectation,
    :math:`|E\ln(1 - x) + Ex| \le E x^2/(2(1 - \bar x))`, and (ii) a martingale (the draw minus its expectation)
    of variance :math:`\sum_k\operatorname{Var}\frac12\ln(1 - x_k)`, bounded per step by the smaller of
    :math:`E x^2/(4(1 - \bar x)^2)` and :math:`\ell^2 c_B\operatorname{Var}_i(r_ix_{ij})`, where
    :math:`\ell = 4\eta^2\bar G/(1 - \bar x)` is the Lipschitz constant of :math:`g \mapsto \frac12\ln(1 - 4\eta^2g^2)`
    on :math:`|g| \le \bar G` (:math:`\operatorname{Var}f(Z) \le \ell^2\operatorname{Var}Z`; zero at :math:`B = n`).
    Both need only :math:`Ex^2 \le \bar x\,Ex`, where :math:`\bar G` = the mean of the :math:`B` largest
    :math:`|r_ix_{ij}|` bounds :math:`|g_{\mathcal B,j}|` for every batch and :math:`\bar x = 4\eta^2\bar G^2`: no
    fourth moments.

    Parameters
    ----------
    X, y : the data; ws : ``(steps, d)`` iterates :math:`w_0, w_1, \dots` up to the last step taken;
    lr : the step :math:`\eta`; batch_size : :math:`B` in ``[1, n]``.

    Returns
    -------
    dict
        ``"leading"`` (per coordinate), ``"gd_part"`` (:math:`-2\eta^2(1 - c_B)\sum g^2`), ``"noise_part"``
        (:math:`-2\eta^2c_B\sum\overline{(rx)^2}`), ``"remainder_bound"`` and ``"variance_bound"`` (per
        coordinate), ``"loss_integral"`` (:math:`\eta\sum_kL_k`), ``"row_norm_sq"`` (the mean of
        :math:`\|x_i\|^2`), ``"c_B"``.
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    W = np.asarray(ws, dtype=float)
    if W.ndim != 2 or W.shape[1] != X.shape[1]:
        raise ValueError(f"ws must be (steps, d = {X.shape[1]}); got {W.shape}")
    n = X.shape[0]
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be an integer in [1, n = {n}]; got {shown(batch_size)}")
    lr = float(lr)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0; got {shown(lr)}")
    c = (n - batch_size) / (batch_size * (n - 1)) if n > 1 else 0.0
    g_sq, m_sq, remainder, variance = (np.zeros(X.shape[1]) for _ in range(4))
    losses = 0.0
    X_sq = X * X
    chunk = max(1, 2**22 // X.size)  # the per-sample products are (steps, n, d): about 32 MB at a time
    for start in range(0, W.shape[0], chunk):
        R = W[start:start + chunk] @ X.T - y  # (k, n)
        g = R @ X / n
        m = (R * R) @ X_sq / n  # mean_i (r_i x_ij)^2
        e_x = 4 * lr**2 * ((1 - c) * g * g + c * m)  # E x over the draw
        # the largest |g_B| over every batch: the mean of the B largest |r_i x_ij|
        a = np.sort(np.abs(R[:, :, None] * X[None, :, :]), axis=1)[:, n - batch_size:, :]
        G = np.mean(a, axis=1)
        top = 4 * lr**2 * G * G
        if np.any(top >= 1):
            raise ValueError("a factor 1 - 4 lr^2 g^2 can be <= 0: the step is too large for this description")
        g_sq += np.sum(g * g, axis=0)
        m_sq += np.sum(m, axis=0)
        remainder += np.sum(top * e_x / (4 * (1 - top)), axis=0)
        lipschitz = (4 * lr**2 * G / (1 - top)) ** 2 * c * np.maximum(m - g * g, 0.0)
        variance += np.sum(np.minimum(top * e_x / (4 * (1 - top) ** 2), lipschitz), axis=0)
        losses += float(np.sum(R * R)) / (2 * n)
    gd_part = -2 * lr**2 * (1 - c) * g_sq
    noise_part = -2 * lr**2 * c * m_sq
    return {"leading": gd_part + noise_part, "gd_part": gd_part, "noise_part": noise_part,
            "remainder_bound": remainder, "variance_bound": variance, "loss_integral": lr * losses,
            "row_norm_sq": float(np.mean(np.sum(X_sq, axis=1))), "c_B": c}


def effective_alpha_two_point(X: Any, y: Any, ws: Any, lr: float, alpha: float, rule: str, *, lam: float | None = None,
                              eps: float | None = None, rho: float | None = None) -> dict[str, np.ndarray]:
    r"""The effective scale of gradient regularisation or SAM predicted from the iterates: :math:`\ln(\alpha_\infty/\alpha)`.

    Derived here (this library's parameterisation :math:`w = u^2 - v^2`, :math:`u_0 = v_0 = \alpha`,
    :math:`L = \|Xw - y\|^2/(2n)`, :math:`g = \nabla_w L`, :math:`D = u^2 + v^2`), for the rules that combine the
    gradient at :math:`\theta` and at the ascent point :math:`\theta + \epsilon\nabla_\theta L`: a step
    :math:`\theta \leftarrow \theta - \eta(a\nabla_\theta L(\theta) + b\nabla_\theta L(\theta + \epsilon\nabla_\theta L))`.
    The ascent point is :math:`u(1 + 2\epsilon g)`, :math:`v(1 - 2\epsilon g)`, where the gradient is
    :math:`g' = g + A(w' - w)`, :math:`w' = w(1 + 4\epsilon^2g^2) + 4\epsilon gD`, :math:`A = X^\top X/n`; so
    :math:`u` and :math:`v` are multiplied by :math:`1 - 4\eta b\epsilon gg' \mp 2\eta(ag + bg')` and

    .. math::
        u v \leftarrow u v\,\big[(1 - 4\eta b\epsilon\,g g')^2 - 4\eta^2(ag + bg')^2\big].

    ``rule="gr"`` (Karakida, Takase, Hayase & Osawa 2023, Sec. 3: the gradient of
    :math:`L + \frac\lambda2\|\nabla_\theta L\|^2` by a finite difference of step :math:`\epsilon`,
    ``sims.rules.GradientRegularized``): :math:`a = 1 - \lambda/\epsilon`, :math:`b = \lambda/\epsilon`, so
    :math:`b\epsilon = \lambda` and :math:`ag + bg' = g + \lambda(g' - g)/\epsilon`. As :math:`\epsilon \to 0`,
    :math:`g' \to g` and the first-order shrinkage is :math:`-4\eta\lambda g^2` per step:
    :math:`\ln(\alpha_\infty/\alpha) \approx -4\lambda\int_0^\infty g(t)^2dt` for the GR flow, Karakida et al.'s
    explicit scale in this parameterisation; a finite :math:`\epsilon` (FD-GR) replaces :math:`g^2` by
    :math:`gg'`, :math:`g' = g + 4\epsilon A(Dg) + O(\epsilon^2)`. ``rule="sam"`` (unnormalised; :math:`a = 0`,
    :math:`b = 1`, :math:`\epsilon = \rho`): the same factor as FD-GR at :math:`\lambda = \epsilon = \rho`.
    ``rule="sam_normalized"``: :math:`\epsilon_k = \rho/\|\nabla_\theta L\|`,
    :math:`\|\nabla_\theta L\|^2 = 4\sum_i D_ig_i^2`.

    :math:`D` follows from :math:`w` and the predicted :math:`uv` (:math:`D^2 = w^2 + 4(uv)^2`), so the recursion
    needs only the iterates ``ws`` (``(steps, d)``: :math:`w_0, w_1, \dots` up to the last step taken) and
    ``alpha``. Returns ``"log_ratio"`` (exact), ``"first_order"`` (:math:`-4\eta b\epsilon\sum_k g_kg'_k`, the
    regulariser's shrinkage at first order in the step), ``"second_order"``
    (:math:`-2\eta^2\sum_k(ag_k + bg'_k)^2`, GD's), ``"remainder_bound"`` (a bound on the log ratio minus those
    two: :math:`\sum_k A_k^2/2 + x_k^2/(4(1 - \max(x_k, 0)))`, :math:`A_k = 4\eta b\epsilon g_kg'_k`,
    :math:`x_k` one minus the factor) and ``"grad_sum"`` (:math:`\sum_k|g_k|`, for round-off budgets).
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float)
    W = np.asarray(ws, dtype=float)
    if W.ndim != 2 or W.shape[1] != X.shape[1]:
        raise ValueError(f"ws must be (steps, d = {X.shape[1]}); got {W.shape}")
    rules = ("gr", "sam", "sam_normalized")
    if rule not in rules:
        raise ValueError(f"rule must be one of {rules}; got {shown(rule)}")
    lr, alpha = float(lr), float(alpha)
    if rule == "gr":
        if lam is None or eps is None or not (lam > 0 and eps > 0):
            raise ValueError(f"rule='gr' needs lam > 0 and eps > 0; got lam={shown(lam)}, eps={shown(eps)}")
        a, b = 1 - lam / eps, lam / eps
    else:
        if rho is None or not rho >= 0:
            raise ValueError(f"rule={rule!r} needs rho >= 0; got {shown(rho)}")
        a, b = 0.0, 1.0
    n = X.shape[0]
    A = X.T @ X / n
    c = X.T @ y / n
    p = np.full(X.shape[1], alpha**2)  # u v
    log_ratio, first, second, grad_sum, rest = (np.zeros_like(p) for _ in range(5))
    for w in W:
        g = A @ w - c
        D = np.sqrt(w * w + 4 * p * p)
        if rule == "gr":
            e = float(eps)
        elif rule == "sam":
            e = float(rho)
        else:
            norm = 2 * float(np.sqrt(np.sum(D * g * g)))
            e = float(rho) / norm if norm > 0 else 0.0
        g_up = g + A @ (w * (4 * e * e * g * g) + 4 * e * g * D)
        shrink = 4 * lr * b * e * g * g_up
        drive = 2 * lr * (a * g + b * g_up)
        factor = (1 - shrink) ** 2 - drive**2
        if np.any(factor <= 0):
            raise ValueError("a factor of u v is <= 0: the step was too large for this description")
        log_ratio += 0.5 * np.log(factor)
        p = p * factor
        first -= shrink
        second -= 0.5 * drive**2
        grad_sum += np.abs(g)
        # (1/2) ln(1 - x) with x = 2A - A^2 + B^2 is -A - B^2/2 + A^2/2 + (1/2)(ln(1 - x) + x), and
        # |ln(1 - x) + x| <= x^2 / (2 (1 - max(x, 0)))
        x = 1 - factor
        rest += 0.5 * shrink**2 + x * x / (4 * (1 - np.maximum(x, 0)))
    return {"log_ratio": log_ratio, "first_order": first, "second_order": second, "grad_sum": grad_sum,
            "remainder_bound": rest}
