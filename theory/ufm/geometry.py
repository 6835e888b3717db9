"""The unconstrained feature model's optima: the MSE value and geometry (Zhu et al. 2021; Dang et al. 2023), the convex
programs, the cross-entropy ETF scale, and deep heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

from ..convex import ConvexSolution, SolverError, solve
from .._format import shown
from .common import _counts, _lam

__all__ = ["Geometry", "ce_balanced_scale", "ce_convex_program", "dang_roots", "deep_ce_family", "deep_mse_value", "labels", "mse_convex_program", "mse_geometry", "mse_optimal_value", "simplex_etf"]


def labels(n: Any) -> np.ndarray:
    """The one-hot label matrix ``Y`` (K x N), samples ordered by class."""
    n = _counts(n)
    return np.repeat(np.eye(len(n)), n, axis=1)


def simplex_etf(K: int) -> np.ndarray:
    r"""The Gram matrix of a unit simplex equiangular tight frame, :math:`\frac{K}{K-1}(I - \frac1K\mathbf 1\mathbf 1^\top)`."""
    return K / (K - 1) * (np.eye(K) - np.ones((K, K)) / K)


def mse_optimal_value(n: Any, lambda_W: float, lambda_H: float) -> float:
    r"""Global minimum of the bias-free, one-layer MSE UFM.

    Soft-thresholding the singular values :math:`\sqrt{n_k}` of :math:`Y` at
    :math:`\tau = N\sqrt{\lambda_W\lambda_H}` (the prox of
    :math:`\tau\|\cdot\|_*` for :math:`\tfrac12\|Z - Y\|^2`), each mode costs
    :math:`(\tau\sqrt{n_k} - \tau^2/2)/N` when :math:`\sqrt{n_k} > \tau` and
    :math:`n_k/(2N)` otherwise (Zhu et al. 2021, Sec. 3; Dang et al. 2023, Thm 4.1).
    Valid when the feature dimension is at least the number of classes.
    """
    n = _counts(n)
    lw, lh = _lam("lambda_W", lambda_W), _lam("lambda_H", lambda_H)
    N = n.sum()
    tau = N * math.sqrt(lw * lh)
    s = np.sqrt(n)
    cost = np.where(s > tau, tau * s - tau**2 / 2, s**2 / 2)
    return float(cost.sum() / N)


def mse_convex_program(n: Any, lambda_W: float, lambda_H: float, *, solver: str | None = None) -> ConvexSolution:
    r""":math:`\min_Z \|Z - Y\|_F^2/(2N) + \sqrt{\lambda_W\lambda_H}\|Z\|_*` in cvxpy (an SDP).

    Certificate: the optimality condition :math:`(Y - Z)/N \in \sqrt{\lambda_W\lambda_H}\,\partial\|Z\|_*`,
    i.e. :math:`G = (Y - Z)/(N\sqrt{\lambda_W\lambda_H})` has
    :math:`\|G\|_2 \le 1` and :math:`\langle G, Z\rangle = \|Z\|_*`; residuals
    ``dual_feasibility`` (:math:`\max(\|G\|_2 - 1, 0)`) and ``complementarity``.
    """
    import cvxpy as cp

    n = _counts(n)
    lw, lh = _lam("lambda_W", lambda_W), _lam("lambda_H", lambda_H)
    Y = labels(n)
    N = Y.shape[1]
    Z = cp.Variable(Y.shape)
    c = math.sqrt(lw * lh)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(Z - Y) / (2 * N) + c * cp.normNuc(Z)))
    status = solve(prob, solver)
    z = np.asarray(Z.value)
    G = (Y - z) / (N * c)
    nuc = np.linalg.svd(z, compute_uv=False).sum()
    residuals = {"dual_feasibility": max(np.linalg.norm(G, 2) - 1, 0.0),
                 "complementarity": abs(float(np.sum(G * z)) - nuc) / max(nuc, 1.0)}
    value = float(np.sum((z - Y) ** 2) / (2 * N) + c * nuc)
    return ConvexSolution.certified(z, value, residuals, status=status, solver=solver or "CLARABEL")


@dataclass(frozen=True)
class Geometry:
    """Predicted global-minimiser geometry of the bias-free MSE UFM.

    Attributes
    ----------
    w_norms_sq : ndarray (K,)
        Squared norms of the rows of the end-to-end classifier :math:`W_M\\cdots W_1`.
    h_norms_sq : ndarray (K,)
        Squared norms of the class means of the features.
    z : ndarray (K,)
        Singular values of :math:`Z = W_M\\cdots W_1 H` per class (0: the class collapses).
    collapsed : ndarray of bool (K,)
    """

    w_norms_sq: np.ndarray
    h_norms_sq: np.ndarray
    z: np.ndarray
    collapsed: np.ndarray


def _mode_minimiser(sigma: float, N: int, c: float, p: float) -> float:
    r"""Global minimiser over :math:`z \ge 0` of :math:`(\sigma - z)^2/(2N) + c z^p`, :math:`0 < p \le 1`.

    For :math:`p < 1` the function is concave near 0 and may have a positive
    local minimum that is not global: every stationary point in
    :math:`(0, \sigma]` is found on a fine grid refined by Brent's method, and
    the best of those and :math:`z = 0` is returned.
    """
    if p == 1.0:
        return max(sigma - N * c, 0.0)

    def grad(z: float) -> float:
        return (z - sigma) / N + c * p * z ** (p - 1)

    def value(z: float) -> float:
        return (sigma - z) ** 2 / (2 * N) + c * z**p

    grid = np.geomspace(sigma * 1e-12, sigma, 4000)
    g = np.array([grad(z) for z in grid])
    cands = [0.0]
    for i in np.nonzero(np.sign(g[:-1]) != np.sign(g[1:]))[0]:
        cands.append(optimize.brentq(grad, grid[i], grid[i + 1], xtol=1e-15 * sigma, rtol=1e-14))
    return min(cands, key=value)


def mse_geometry(n: Any, lambda_W: float, lambda_H: float, depth: int = 1) -> Geometry:
    r"""Lengths of the classifier rows and class means at the global minimum of the bias-free MSE UFM.

    One layer (Dang et al. 2023, Thm 4.1, bias-free imbalanced case):
    :math:`WW^\top` is diagonal with
    :math:`\|w_k\|^2 = \sqrt{n_k\lambda_H/\lambda_W} - N\lambda_H` (positive part),
    class means are orthogonal with
    :math:`\|\bar h_k\|^2 = \sqrt{\lambda_W/\lambda_H}\,z_k/n_k`, where
    :math:`z_k = (\sqrt{n_k} - N\sqrt{\lambda_W\lambda_H})_+`; class :math:`k`
    collapses to zero iff :math:`n_k \le N^2\lambda_W\lambda_H`.

    ``depth`` = M classifier layers, all with :math:`\lambda_W` (Dang et al.
    2023, Sec. 4.2): the AM-GM reduction leaves per mode
    :math:`\min_{z\ge0} (\sqrt{n_k} - z)^2/(2N) + \tfrac{M+1}{2}(\lambda_W^M\lambda_H)^{1/(M+1)} z^{2/(M+1)}`,
    solved globally by :func:`_mode_minimiser`. With the balanced factors,
    :math:`\lambda_W a^2 = \lambda_H h^2 = \mu_k = (z_k^2\lambda_W^M\lambda_H)^{1/(M+1)}`, so
    :math:`\|w_k\|^2 = (\mu_k/\lambda_W)^M` and :math:`\|\bar h_k\|^2 = \mu_k/(\lambda_H n_k)`.
    Requires every width to be at least K.
    """
    n = _counts(n)
    lw, lh = _lam("lambda_W", lambda_W), _lam("lambda_H", lambda_H)
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or not 1 <= depth <= 50:
        raise ValueError(f"depth must be an integer in [1, 50]; got {shown(depth)}")
    M = int(depth)
    N = int(n.sum())
    c = (M + 1) / 2 * (lw**M * lh) ** (1 / (M + 1))
    z = np.array([_mode_minimiser(math.sqrt(nk), N, c, 2 / (M + 1)) for nk in n])
    mu = (z**2 * lw**M * lh) ** (1 / (M + 1))
    return Geometry(w_norms_sq=(mu / lw) ** M, h_norms_sq=mu / (lh * n), z=z, collapsed=z == 0)


def dang_roots(n: Any, lambda_W: float, lambda_H: float, depth: int) -> np.ndarray:
    r"""Per-class :math:`s_k^{2M} = N\lambda_H x_k^M` from the largest real root of
    :math:`b/n_k = M x^{M-1}/(x^M + 1)^2`, :math:`b = MN(N\lambda_W^M\lambda_H)^{1/M}`
    (the closed form stated for Dang et al. 2023's deep imbalanced case), 0 when no root exists.

    Kept to compare against :func:`mse_geometry`'s global minimisation: the
    largest stationary point is not the global minimiser just above the
    collapse threshold (see the claim ``ufm.deep_linear_geometry``).
    """
    n = _counts(n)
    lw, lh = _lam("lambda_W", lambda_W), _lam("lambda_H", lambda_H)
    M = int(depth)
    N = int(n.sum())
    b = M * N * (N * lw**M * lh) ** (1 / M)
    out = np.zeros(len(n))
    for k, nk in enumerate(n):
        g = lambda x: M * x ** (M - 1) / (x**M + 1) ** 2 - b / nk  # noqa: E731
        xs = np.geomspace(1e-8, 1e8, 20000)
        vals = g(xs)
        idx = np.nonzero(np.sign(vals[:-1]) != np.sign(vals[1:]))[0]
        if idx.size:
            i = idx[-1]
            x = optimize.brentq(g, xs[i], xs[i + 1], xtol=1e-14)
            out[k] = N * lh * x**M
    return out


def ce_convex_program(n: Any, lambda_W: float, lambda_H: float, *, solver: str | None = None) -> ConvexSolution:
    r"""The cross-entropy UFM as a convex program (one layer, bias-free, :math:`d \ge K`):
    :math:`\min_Z \frac1N\sum_i [\operatorname{logsumexp}(z_i) - z_{i,y_i}] + \sqrt{\lambda_W\lambda_H}\|Z\|_*`
    (Zhu et al. 2021, Sec. 3; the nuclear-norm reformulation also used for the
    imbalanced analysis of Fang et al. 2021's layer-peeled model).

    Solved on class-level logits: replacing the columns of a class by their
    mean lowers neither term (both are convex and invariant under permuting
    the samples of a class), so an optimum has :math:`Z = Z_c E` with
    :math:`E` the class indicators, and since :math:`EE^\top = \operatorname{diag}(n)`,
    :math:`\|Z\|_* = \|Z_c\operatorname{diag}(\sqrt n)\|_*`: a K x K program
    whatever the number of samples. The full ``Z`` is returned.

    Certificate: with :math:`G = (Y - \operatorname{softmax}(Z))/(N\sqrt{\lambda_W\lambda_H})`,
    :math:`\|G\|_2 \le 1` and :math:`\langle G, Z\rangle = \|Z\|_*`; a solution whose
    residuals exceed 1e-4 (relative) raises :class:`SolverError`, whatever the solver's status.
    """
    import cvxpy as cp

    n = _counts(n)
    lw, lh = _lam("lambda_W", lambda_W), _lam("lambda_H", lambda_H)
    Y = labels(n)
    K, N = Y.shape
    c = math.sqrt(lw * lh)
    Zc = cp.Variable((K, K))  # column k: the logits of class k
    ce = cp.sum(cp.multiply(n, cp.log_sum_exp(Zc, axis=0) - cp.diag(Zc)))
    prob = cp.Problem(cp.Minimize(ce / N + c * cp.normNuc(Zc @ np.diag(np.sqrt(n)))))

    def certificate(z: np.ndarray) -> dict[str, float]:
        soft = np.exp(z - z.max(0)) / np.exp(z - z.max(0)).sum(0)
        G = (Y - soft) / (N * c)
        nuc = np.linalg.svd(z, compute_uv=False).sum()
        return {"dual_feasibility": max(np.linalg.norm(G, 2) - 1, 0.0),
                "complementarity": abs(float(np.sum(G * z)) - nuc) / max(nuc, 1.0)}

    status = solve(prob, solver)
    z = np.repeat(np.asarray(Zc.value), n, axis=1)
    residuals = certificate(z)
    if max(residuals.values()) > 1e-6 and (solver or "CLARABEL") == "CLARABEL":
        # Clarabel's default tolerances can leave complementarity near 1e-4 on exp-cone + SDP programs;
        # tighter ones improve it but may end "optimal_inaccurate": the certificate decides.
        tight = {"tol_gap_abs": 1e-11, "tol_gap_rel": 1e-11, "tol_feas": 1e-11, "max_iter": 200}
        status = solve(prob, solver, allow_inaccurate=True, **tight)
        z2 = np.repeat(np.asarray(Zc.value), n, axis=1)
        if max(certificate(z2).values()) < max(residuals.values()):
            z, residuals = z2, certificate(z2)
    nuc = np.linalg.svd(z, compute_uv=False).sum()
    lse = z.max(0) + np.log(np.exp(z - z.max(0)).sum(0))
    value = float((lse.sum() - np.sum(Y * z)) / N + c * nuc)
    if residuals["dual_feasibility"] > 1e-4 or residuals["complementarity"] > 1e-4:
        raise SolverError(f"the solution fails its certificate ({residuals})", status)
    return ConvexSolution.certified(z, value, residuals, status=status, solver=solver or "CLARABEL")


def ce_balanced_scale(K: int, n_per_class: int, lambda_W: float, lambda_H: float) -> float:
    r"""The logit scale of the balanced cross-entropy UFM's simplex ETF (Zhu et al. 2021, Thm 3.1).

    At the global minimum the logits are :math:`z_i = \rho\frac{K}{K-1}(e_{y_i} - \tfrac1K\mathbf 1)`;
    the objective restricted to this family is
    :math:`\log(1 + (K-1)e^{-a\rho}) + \beta\rho` with :math:`a = K/(K-1)` and
    :math:`\beta = K\sqrt{n\lambda_W\lambda_H}` (:math:`\|Z\|_* = \rho K\sqrt n`),
    minimised in closed form:
    :math:`\rho = \frac1a\log\frac{(K-1)(a - \beta)}{\beta}`, or 0 when :math:`\beta \ge 1`.
    """
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 2:
        raise ValueError(f"K must be an integer >= 2; got {shown(K)}")
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise ValueError(f"n_per_class must be an integer >= 1; got {shown(n_per_class)}")
    lw, lh = _lam("lambda_W", lambda_W), _lam("lambda_H", lambda_H)
    a = K / (K - 1)
    beta = K * math.sqrt(n_per_class * lw * lh)
    # d/drho: -a (K-1) e^{-a rho} / (1 + (K-1) e^{-a rho}) + beta = 0
    if beta >= 1.0:
        return 0.0
    return math.log((K - 1) * (a - beta) / beta) / a


def _depth_coefficient(lw: float, lh: float, depth: Any) -> tuple[int, float]:
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or not 1 <= depth <= 50:
        raise ValueError(f"depth must be an integer in [1, 50]; got {shown(depth)}")
    M = int(depth)
    return M, (M + 1) / 2 * (lw**M * lh) ** (1 / (M + 1))


def deep_mse_value(n: Any, lambda_W: float, lambda_H: float, depth: int = 1, bias: bool = False) -> float:
    r"""Global minimum of the MSE UFM with ``depth`` = M linear classifier layers, bias-free or with an
    unregularised bias.

    For :math:`Z = W_M\cdots W_1H` the least regularisation is
    :math:`c\sum_i\sigma_i(Z)^{2/(M+1)}`, :math:`c = \tfrac{M+1}{2}(\lambda_W^M\lambda_H)^{1/(M+1)}` (AM-GM
    over balanced factors; Dang et al. 2023, Sec. 4.2). The loss :math:`\|Y - Z\|_F^2/(2N)` and this
    regulariser are unitarily invariant, so (von Neumann's trace inequality) the minimiser shares the target's
    singular vectors and the problem splits into one scalar problem per singular value :math:`\sigma` of the
    target: :math:`\min_{z\ge0}(\sigma - z)^2/(2N) + cz^{2/(M+1)}` (:func:`_mode_minimiser`). The target is
    :math:`Y` (singular values :math:`\sqrt{n_k}`) without bias; with an unregularised bias the bias absorbs the
    samples' mean, and removing it from :math:`Z` lowers every singular value, so the target is the centred
    :math:`Y(I - \mathbf 1\mathbf 1^\top/N)` (for balanced classes: :math:`\sqrt n` with multiplicity
    :math:`K - 1`). Derived here from Dang et al.'s reduction; the bias case also by Tirer & Bruna 2022.
    """
    n = _counts(n)
    lw, lh = _lam("lambda_W", lambda_W), _lam("lambda_H", lambda_H)
    M, c = _depth_coefficient(lw, lh, depth)
    target = labels(n)
    N = target.shape[1]
    if bias:
        target = target - target.mean(axis=1, keepdims=True)
    sigmas = np.linalg.svd(target, compute_uv=False)
    p = 2 / (M + 1)
    total = 0.0
    for sigma in sigmas[sigmas > 1e-12 * sigmas[0]]:
        z = _mode_minimiser(float(sigma), N, c, p)
        total += (sigma - z) ** 2 / (2 * N) + c * z**p
    return float(total)


def deep_ce_family(K: int, n_per_class: int, lambda_W: float, lambda_H: float, depth: int = 1,
                   rank: int | None = None) -> tuple[float, float]:
    r"""The best cross-entropy UFM objective (balanced classes, M = ``depth`` linear classifier layers) over a
    one-parameter family of logits, and its scale.

    ``rank=None``: the simplex ETF, :math:`z_i = \rho\frac{K}{K-1}(e_{y_i} - \tfrac1K\mathbf 1)` (Zhu et al.
    2021; Dang et al. 2023's balanced CE geometry): cross-entropy :math:`\log(1 + (K-1)e^{-a\rho})`,
    :math:`a = K/(K-1)`, and :math:`K - 1` singular values :math:`a\rho\sqrt n`, so the objective is
    :math:`\log(1 + (K-1)e^{-a\rho}) + c(K-1)(a\rho\sqrt n)^{2/(M+1)}` (at M = 1 :func:`ce_balanced_scale`'s).
    ``rank=2`` (K even): the classes in pairs, :math:`z_i = \rho(e_{y_i} - e_{\pi(y_i)})` with :math:`\pi`
    swapping the two classes of a pair: every sample still classified, cross-entropy
    :math:`\log(1 + e^{-2\rho} + (K-2)e^{-\rho})`, and :math:`K/2` singular values :math:`2\rho\sqrt n`.
    Each is minimised over :math:`\rho \ge 0` (a fine grid refined by Brent's method: the regulariser is
    concave for M >= 2). Returns ``(value, rho)``. Derived here.
    """
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 2:
        raise ValueError(f"K must be an integer >= 2; got {shown(K)}")
    if isinstance(n_per_class, bool) or not isinstance(n_per_class, (int, np.integer)) or n_per_class < 1:
        raise ValueError(f"n_per_class must be an integer >= 1; got {shown(n_per_class)}")
    lw, lh = _lam("lambda_W", lambda_W), _lam("lambda_H", lambda_H)
    M, c = _depth_coefficient(lw, lh, depth)
    p, rn = 2 / (M + 1), math.sqrt(n_per_class)
    if rank is None:
        a = K / (K - 1)

        def value(r: float) -> float:
            return math.log1p((K - 1) * math.exp(-a * r)) + c * (K - 1) * (a * r * rn) ** p
    elif rank == 2 and K % 2 == 0:
        def value(r: float) -> float:
            return math.log(1 + math.exp(-2 * r) + (K - 2) * math.exp(-r)) + c * (K // 2) * (2 * r * rn) ** p
    else:
        raise ValueError(f"rank must be None (the simplex ETF) or 2 with an even K; got rank={rank!r}, K={K}")
    grid = np.linspace(0.0, 60.0, 60001)
    vals = np.array([value(r) for r in grid])
    i = int(np.argmin(vals))
    if i == 0:
        return float(vals[0]), 0.0
    res = optimize.minimize_scalar(value, bounds=(grid[i - 1], grid[min(i + 1, grid.size - 1)]), method="bounded",
                                   options={"xatol": 1e-13})
    return float(res.fun), float(res.x)
