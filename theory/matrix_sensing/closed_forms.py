r"""The closed forms and convex programs of matrix sensing: mode energies and learning times of the commuting flow (Jin
et al. 2023), the over-parameterised tail (Xiong, Ding & Du 2023), greedy low-rank learning (Li, Luo & Lyu 2021) and
the minimum nuclear norm (Gunasekar et al. 2017). Conventions: :mod:`solvable.theory.matrix_sensing`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import newton
from ..convex import ConvexSolution, SolverError, check_matrix, check_vector, solve
from .._format import shown

__all__ = ["GreedyStages", "commuting_limit", "effective_rank", "exact_rate", "gd_iterations", "greedy_low_rank",
           "learning_slope",
           "learning_time", "min_nuclear_norm", "mode_energy", "overparam_tail"]


def _positive(name: str, x: Any) -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{name} must be finite and > 0; got {shown(x)}")
    return arr


def _rate(loss_scale: float) -> float:
    if not (isinstance(loss_scale, (int, float)) and loss_scale > 0):
        raise ValueError(f"loss_scale must be a number > 0; got {shown(loss_scale)}")
    return 8.0 * float(loss_scale)


def mode_energy(sigma: Any, s0: Any, t: Any, loss_scale: float = 0.5) -> np.ndarray:
    r"""Energy :math:`s(t) = \|u^\top X(t)\|^2` of one eigen-mode in the commuting case.

    With :math:`X(0)` aligned with the eigenvectors of :math:`M^*` and :math:`\mathcal A = I`,
    each mode obeys :math:`\dot s = -8s\,(s - \sigma)s` (``loss_scale`` :math:`s`; proved by
    :mod:`theory.matrix_sensing.symbolic`), a logistic equation:

    .. math:: s(t) = \frac{\sigma}{1 + (\sigma/s_0 - 1)\,e^{-8s\sigma t}} .

    Broadcasts over ``sigma``, ``s0`` and ``t``.
    """
    sigma, s0 = _positive("sigma", sigma), _positive("s0", s0)
    c = _rate(loss_scale)
    return sigma / (1 + (sigma / s0 - 1) * np.exp(-c * sigma * np.asarray(t, dtype=float)))


def learning_time(sigma: Any, s0: Any, level: float = 0.5, loss_scale: float = 0.5) -> np.ndarray:
    r"""Time at which a mode's energy reaches ``level`` :math:`\cdot\sigma` (commuting case):

    .. math:: t = \frac{1}{8s\sigma}\ln\frac{\sigma/s_0 - 1}{1/\text{level} - 1},

    which at level 1/2 and :math:`s_0 = \alpha^2 c` is
    :math:`\frac{2\ln(1/\alpha) + \ln(\sigma/c) + O(\alpha^2)}{8s\sigma}`: modes are learned one at a
    time, in decreasing order of :math:`\sigma`, each after a time proportional to
    :math:`\ln(1/\alpha)/\sigma` (Jin et al. 2023, Sec. 3; the closed form is the logistic of
    :func:`mode_energy`).
    """
    sigma, s0 = _positive("sigma", sigma), _positive("s0", s0)
    level = np.asarray(level, dtype=float)
    if np.any(level <= 0) or np.any(level >= 1):
        raise ValueError(f"level must lie in (0, 1); got {shown(level)}")
    if np.any(s0 >= level * sigma):
        raise ValueError("s0 must be below level * sigma (the mode is not yet learned)")
    return np.log((sigma / s0 - 1) / (1 / level - 1)) / (_rate(loss_scale) * sigma)


def learning_slope(sigma: Any, loss_scale: float = 0.5) -> np.ndarray:
    r""":math:`dt_i / d\ln(1/\alpha) = 2/(8s\sigma_i)` (``1/(2 sigma_i)`` at :math:`s = 1/2`).

    The learning time of mode :math:`i` is :math:`(2\ln(1/\alpha) + C_i)/(8s\sigma_i)` where
    :math:`C_i` depends on the direction of the initialisation, not on its scale; for a
    random (non-aligned) start the modes still grow as :math:`e^{4s\sigma_i t}` in the linear
    phase, so this slope is exact as :math:`\alpha \to 0` whatever the direction.
    """
    return 2.0 / (_rate(loss_scale) * _positive("sigma", sigma))


def overparam_tail(extra: int, t: Any, loss_scale: float = 0.5) -> np.ndarray:
    r"""Squared error :math:`\|XX^\top - M^*\|_F^2 \approx p/(8s\,t)^2` of symmetric over-parameterisation.

    Population case, :math:`k > r`: once the signal is fitted, the part :math:`Z` of
    :math:`X` outside the range of :math:`M^*` obeys :math:`\dot Z = -4s\,ZZ^\top Z` (the cross
    term decays exponentially), so each non-zero eigenvalue of :math:`ZZ^\top` follows
    :math:`\dot z = -8s z^2`, :math:`z = 1/(8s t + 1/z_0) \sim 1/(8st)`; there are
    :math:`p = \min(k - r, n - r)` of them (Xiong, Ding, Du 2023, Thm 3.1's
    :math:`\Omega(1/T^2)`, with the constant of the population case). In GD steps of size
    :math:`\eta`, :math:`t = \eta T`.
    """
    if isinstance(extra, bool) or not isinstance(extra, (int, np.integer)) or extra < 1:
        raise ValueError(f"extra must be an integer >= 1 (the number min(k - r, n - r)); got {shown(extra)}")
    return extra / (_rate(loss_scale) * _positive("t", t)) ** 2


def exact_rate(sigma_r: float, loss_scale: float = 0.5) -> float:
    r"""Linear rate :math:`\|XX^\top - M^*\|_F \sim e^{-4s\sigma_r t}` of exact parameterisation (k = r).

    Population case from a random start: the slowest direction of the Hessian at
    :math:`X^* = U\Sigma^{1/2}Q` moves :math:`X` out of the range of :math:`M^*`
    (:math:`\delta X = u_\perp v^\top`, curvature :math:`4s\|X^* v\|^2/\|v\|^2 \ge 4s\sigma_r`),
    and the error is linear in that deviation (Xiong et al. 2023: :math:`\exp(-\Omega(T))`).
    Per GD step of size :math:`\eta`: a factor :math:`1 - 4s\eta\sigma_r`.
    """
    return 4.0 * float(loss_scale) * float(_positive("sigma_r", sigma_r))


def gd_iterations(sigma: Any, s0: float, eps: float, lr: float, loss_scale: float = 0.5) -> float:
    r"""GD iterations until every mode is within ``eps`` of its target, commuting population case.

    Mode :math:`i` must reach energy :math:`\sigma_i - \epsilon`: by :func:`learning_time` at level
    :math:`1 - \epsilon/\sigma_i`, in steps of :math:`\eta` (valid for :math:`8s\eta\sigma_i \ll 1`,
    i.e. for the slow modes that set the count). With :math:`\sigma_r = \sigma_1/\kappa` and
    :math:`\eta \propto 1/\sigma_1` this is :math:`\Theta(\kappa\ln(\sigma_r/s_0))` iterations: the
    polynomial dependence on :math:`\kappa` that ScaledGD removes (Xu et al. 2023, Sec. 1).
    """
    sigma = _positive("sigma", sigma)
    lr, eps = float(_positive("lr", lr)), float(_positive("eps", eps))
    level = np.clip(1 - eps / sigma, 0.5, 1 - 1e-15)
    return float(np.max(learning_time(sigma, s0, level=level, loss_scale=loss_scale)) / lr)


@dataclass(frozen=True)
class GreedyStages:
    """The stages of greedy low-rank learning: ``M[i]`` is the rank-``i+1`` stage, ``loss[i]`` its loss."""

    M: np.ndarray  # (R, n, n)
    loss: np.ndarray  # (R,)
    converged: np.ndarray  # (R,) bool


def greedy_low_rank(M_star: Any = None, *, A: Any = None, y: Any = None, max_rank: int, eps: float = 1e-4,
                    loss_scale: float = 0.5, gtol: float = 1e-12) -> GreedyStages:
    r"""Greedy low-rank learning (GLRL; Li, Luo, Lyu 2021, Algorithm 1), symmetric PSD.

    Stage 0 is :math:`M = 0`. Stage :math:`i` starts from :math:`[U_{i-1}, \epsilon v]` with
    :math:`v` the top eigenvector of :math:`-\nabla f(U_{i-1}U_{i-1}^\top)` and minimises
    :math:`f(UU^\top)` over :math:`U \in \mathbb{R}^{n\times i}` (L-BFGS, exact gradient);
    its limit as :math:`\epsilon \to 0` is what small-initialisation gradient flow passes
    near (their Thm 5.3; Jin et al. 2023, Thm 3.2). Population case
    (``M_star``; :math:`f = s\|M - M^*\|_F^2`): the stages are the truncated eigendecompositions
    :math:`\sum_{j\le i}\sigma_j u_j u_j^\top`, returned in closed form. Sensing case
    (``A`` (m, n, n) symmetric, ``y``): the stages are computed.
    """
    from scipy.optimize import minimize

    if (M_star is None) == (A is None):
        raise ValueError("give either M_star (population case) or A and y (sensing case)")
    if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
        raise ValueError(f"max_rank must be an integer >= 1; got {shown(max_rank)}")
    if M_star is not None:
        M = check_matrix("M_star", M_star)
        w, V = np.linalg.eigh((M + M.T) / 2)
        order = np.argsort(w)[::-1][:max_rank]
        stages = np.array([(V[:, order[:i + 1]] * np.maximum(w[order[:i + 1]], 0)) @ V[:, order[:i + 1]].T
                           for i in range(len(order))])
        losses = np.array([loss_scale * np.sum((S - M) ** 2) for S in stages])
        return GreedyStages(stages, losses, np.ones(len(order), dtype=bool))
    A = check_matrix("A", A, ndim=3)
    y = check_vector("y", y)
    m, n, _ = A.shape
    Af = A.reshape(m, n * n)

    def fun(u: np.ndarray, rank: int) -> tuple[float, np.ndarray]:
        U = u.reshape(n, rank)
        r = Af @ (U @ U.T).reshape(-1) - y
        G = 2 * loss_scale * (Af.T @ r).reshape(n, n)
        return loss_scale * float(r @ r), ((G + G.T) @ U).reshape(-1)

    U = np.zeros((n, 0))
    out, losses, ok = [], [], []
    for rank in range(1, max_rank + 1):
        r = Af @ (U @ U.T).reshape(-1) - y
        G = 2 * loss_scale * (Af.T @ r).reshape(n, n)
        vals, vecs = np.linalg.eigh(-(G + G.T) / 2)
        U0 = np.hstack([U, eps * vecs[:, -1:]])
        res = minimize(fun, U0.reshape(-1), args=(rank,), jac=True, method="L-BFGS-B",
                       options={"maxiter": 20000, "gtol": gtol, "ftol": 1e-300, "maxcor": 30})
        U = res.x.reshape(n, rank)
        out.append(U @ U.T)
        losses.append(float(res.fun))
        ok.append(bool(np.linalg.norm(res.jac) <= 1e-6 * max(1.0, np.linalg.norm(y))))
    return GreedyStages(np.array(out), np.array(losses), np.array(ok))


def effective_rank(M: Any) -> float:
    r"""Effective rank :math:`\exp(H(p))`, :math:`p_i = \sigma_i/\sum_j\sigma_j` (Roy & Vetterli 2007),
    the measure Arora et al. 2019 plot."""
    s = np.linalg.svd(check_matrix("M", M), compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def min_nuclear_norm(A: Any = None, y: Any = None, *, mask: Any = None, psd: bool = False,
                     solver: str | None = None) -> ConvexSolution:
    r"""The minimum nuclear-norm matrix consistent with the measurements:
    :math:`\min \|M\|_* \text{ subject to } \langle A_i, M\rangle = y_i` (``psd``: :math:`\min \operatorname{tr} M`,
    :math:`M \succeq 0`), Gunasekar et al. 2017's conjectured limit of small-init gradient flow.

    ``A`` (m, n1, n2) and ``y`` (m,); or ``mask`` (n1, n2) and ``y`` the observed entries in
    ``np.flatnonzero(mask)`` order (completion; no dense operator is built).

    Certificate: with the multipliers :math:`\lambda`, :math:`Y = \sum_i\lambda_i A_i` must be a
    sub-gradient of the nuclear norm at :math:`M`, i.e. :math:`\|Y\|_{op} \le 1` and
    :math:`\langle Y, M\rangle = \|M\|_*` (PSD: :math:`Y \preceq I`, :math:`\langle I - Y, M\rangle = 0`).
    Residuals: primal :math:`\|\mathcal A(M) - y\|/\|y\|`; dual :math:`\max(0, \|Y\| - 1)`;
    complementarity :math:`|\|M\|_* - \langle Y, M\rangle|/\|M\|_*`; gap
    :math:`|\|M\|_* - y^\top\lambda|/\|M\|_*`. ``dual`` is :math:`\lambda`.
    """
    import cvxpy as cp

    if mask is not None:
        if A is not None:
            raise ValueError("give A or mask, not both")
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.ndim != 2 or not mask.any():
            raise ValueError("mask must be a 2-D boolean array with at least one True")
        n1, n2 = mask.shape
        y = check_vector("y", y)
        rows, cols = np.nonzero(mask)
        if y.shape[0] != rows.size:
            raise ValueError(f"y must hold one value per observed entry ({rows.size}); got {y.shape[0]}")
    else:
        A = check_matrix("A", A, ndim=3)
        y = check_vector("y", y)
        m, n1, n2 = A.shape
        if y.shape[0] != m:
            raise ValueError(f"y must have length m={m}; got {y.shape[0]}")
    if psd and n1 != n2:
        raise ValueError("psd=True needs square matrices")
    M = cp.Variable((n1, n2), symmetric=bool(psd)) if psd else cp.Variable((n1, n2))
    if mask is not None:
        measured = cp.vec(M, order="C")[rows * n2 + cols]
    else:
        measured = A.reshape(A.shape[0], -1) @ cp.vec(M, order="C")
    constraint = measured == y
    cons = [constraint] + ([M >> 0] if psd else [])
    objective = cp.trace(M) if psd else cp.normNuc(M)
    # SCS by default: the interior-point solvers spend minutes on the 2n x 2n semidefinite cone at
    # n = 100, where SCS takes seconds; its accuracy is certified by our own KKT residuals below, as is an
    # inaccurate finish of any solver.
    solver = solver or "SCS"
    options = {"eps": 1e-9, "max_iters": 200_000} if solver == "SCS" else {}
    status = solve(cp.Problem(cp.Minimize(objective), cons), solver, allow_inaccurate=True, **options)
    Mv = np.asarray(M.value)
    lam = -np.asarray(constraint.dual_value, dtype=float).reshape(-1)
    if mask is not None:
        Y = np.zeros((n1, n2))
        Y[rows, cols] = lam
        meas = Mv[rows, cols]
    else:
        Y = np.tensordot(lam, A, axes=1)
        meas = A.reshape(A.shape[0], -1) @ Mv.reshape(-1)
    nuc = float(np.trace(Mv)) if psd else float(np.linalg.svd(Mv, compute_uv=False).sum())
    if psd:
        dual = max(0.0, float(np.linalg.eigvalsh((Y + Y.T) / 2)[-1]) - 1.0)
    else:
        dual = max(0.0, float(np.linalg.norm(Y, 2)) - 1.0)
    scale = max(abs(nuc), 1e-300)
    residuals = {
        "primal": float(np.linalg.norm(meas - y) / max(np.linalg.norm(y), 1e-300)),
        "dual": dual,
        "complementarity": abs(nuc - float(np.sum(Y * Mv))) / scale,
        "gap": abs(nuc - float(y @ lam)) / scale,
    }
    if max(residuals.values()) > 1e-4:
        raise SolverError(f"the nuclear-norm solution is not certified (KKT residuals {residuals})", status)
    return ConvexSolution.certified(Mv, nuc, residuals, dual=lam, status=status, solver=solver)


def commuting_limit(a: Any, y: Any, alpha: float) -> ConvexSolution:
    r"""Exact flow limit for commuting measurements :math:`A_i = \operatorname{diag}(a_i)` from :math:`X_0 = \alpha I`.

    The flow keeps :math:`X` diagonal; the diagonal :math:`w = x^2` of :math:`M` obeys
    :math:`\frac{d}{dt}\ln w = -8s\,a^\top r` (any loss scale :math:`s`), so :math:`w = \alpha^2 e^{a^\top\nu}` for some
    :math:`\nu`: the limit is the interpolating minimiser of the entropy
    :math:`\sum_j w_j\ln(w_j/\alpha^2) - w_j` (Gunasekar et al. 2017, Sec. 4: commuting measurements;
    as :math:`\alpha \to 0` it tends to the minimum trace, i.e. nuclear-norm, solution, with
    :math:`\ln(1/\alpha^2)` times the trace dominating the entropy). ``a`` is ``(m, n)``, the diagonals.

    Solved through the concave dual :math:`\max_\nu\, y^\top\nu - \alpha^2\sum_j e^{(a^\top\nu)_j}`
    by damped Newton steps (:func:`theory.newton.minimise`, which stops on the gradient, not on dual values
    that no longer change in float64); the KKT residuals are the primal residual
    :math:`\|a w - y\|/\|y\|` and the stationarity of :math:`\ln(w/\alpha^2) = a^\top\nu` (exact by construction).
    """
    a = check_matrix("a", a)
    y = check_vector("y", y)
    alpha = float(_positive("alpha", alpha))
    if y.shape[0] != a.shape[0]:
        raise ValueError(f"y must have length m={a.shape[0]}; got {y.shape[0]}")
    log_a2 = 2 * np.log(alpha)

    # the negated dual, minimised: f(nu) = alpha^2 sum exp(a^T nu) - y^T nu, gradient a w - y, Hessian a diag(w) a^T
    def weights(v: np.ndarray) -> np.ndarray:
        return np.exp(log_a2 + a.T @ v)

    result = newton.minimise(lambda v: float(np.sum(weights(v)) - y @ v), lambda v: a @ weights(v) - y,
                             lambda v: (a * weights(v)) @ a.T, np.zeros(a.shape[0]),
                             gtol=1e-14 * max(np.linalg.norm(y), 1e-300))
    nu = result.x
    w = np.exp(log_a2 + a.T @ nu)
    residuals = {"primal": float(np.linalg.norm(a @ w - y) / max(np.linalg.norm(y), 1e-300)), "stationarity": 0.0}
    if residuals["primal"] > 1e-9:
        raise SolverError(f"the commuting-limit dual did not converge (primal residual {residuals['primal']:.2e}, "
                          f"Newton {result.reason} after {result.iterations} steps)", "not_converged")
    value = float(np.sum(w * (np.log(w) - log_a2) - w))
    return ConvexSolution.certified(w, value, residuals, dual=nu, status="optimal", solver="newton (dual)")
