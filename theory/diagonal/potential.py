"""Woodworth et al. 2020: the hyperbolic-entropy potential Q_alpha, the flow's limit as its constrained minimiser, the
min-l1 and min-l2 interpolators and the kernel regime's first correction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import newton
from ..convex import ConvexSolution, SolverError, check_matrix, check_vector, solve
from .common import _as_real, _check_alpha

__all__ = ["implicit_bias", "kernel_correction", "min_l1_interpolator", "min_l2_interpolator", "q", "q_alpha"]


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
    :mod:`theory.diagonal.symbolic`) gives
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
