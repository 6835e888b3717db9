r"""The closed forms and convex programs of linear self-attention: the population flow's limit and the global minimiser
(Zhang, Frei & Bartlett 2024), one step of preconditioned GD (Mahankali et al. 2024; Ahn et al. 2023), the risks,
and the attention SVM (Tarzanagh et al. 2023). Conventions: :mod:`solvable.theory.lsa`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._format import shown
from ..convex import ConvexSolution, SolverError, check_matrix, solve

__all__ = ["ahn_from_zfb", "att_svm", "flow_limit", "gamma", "gd_construction", "loss", "min_loss", "minimiser",
           "one_step_coefficient", "optimal_tokens", "preconditioned_gd", "preconditioned_step",
           "random_covariance_coefficient", "second_moment", "support_tokens", "test_risk", "token_scores",
           "zfb_from_ahn"]


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------
def _cov(name: str, S: Any) -> np.ndarray:
    """A symmetric positive-definite matrix (a 1-D array is its diagonal)."""
    arr = np.asarray(S, dtype=float) if not isinstance(S, (str, bytes)) and S is not None else None
    if arr is None:
        raise TypeError(f"{name} must be a covariance matrix (d, d) or its diagonal (d,); got {type(S).__name__}")
    if arr.ndim == 1:
        arr = np.diag(arr)
    arr = check_matrix(name, arr)
    if arr.shape[0] != arr.shape[1] or not np.allclose(arr, arr.T, rtol=1e-10, atol=1e-12 * np.abs(arr).max()):
        raise ValueError(f"{name} must be a symmetric (d, d) matrix; got shape {arr.shape}")
    arr = (arr + arr.T) / 2
    if np.linalg.eigvalsh(arr)[0] <= 0:
        raise ValueError(f"{name} must be positive definite")
    return arr


def _length(name: str, N: Any) -> int:
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1:
        raise ValueError(f"{name} (a prompt length) must be an integer >= 1; got {shown(N)}")
    return int(N)


def _noise(noise: Any) -> float:
    s = float(noise)
    if not np.isfinite(s) or s < 0:
        raise ValueError(f"noise (the label noise standard deviation s) must be finite and >= 0; got {shown(noise)}")
    return s


def _task(task_cov: Any, d: int) -> np.ndarray:
    if task_cov is None:
        return np.eye(d)
    om = _cov("task_cov", task_cov)
    if om.shape != (d, d):
        raise ValueError(f"task_cov must be ({d}, {d}) like Lambda; got {om.shape}")
    return om


# ---------------------------------------------------------------------------
# the one-layer population loss and its minimiser
# ---------------------------------------------------------------------------
def gamma(Lambda: Any, N: int, noise: float = 0.0) -> np.ndarray:
    r""":math:`\Gamma = (1 + \frac1N)\Lambda + \frac{\operatorname{tr}(\Lambda) + s^2}{N} I` (ZFB Thm 4.1 at
    :math:`s = 0`; with label noise of variance :math:`s^2` the minimiser is :math:`\Gamma^{-1}` with this
    :math:`\Gamma`, Mahankali et al. 2024 Thm 1 for :math:`\Lambda = I`). ``Lambda``: (d, d) or its diagonal."""
    L = _cov("Lambda", Lambda)
    N = _length("N", N)
    s = _noise(noise)
    return (1 + 1 / N) * L + (np.trace(L) + s**2) / N * np.eye(L.shape[0])


def second_moment(Lambda: Any, N: int, task_cov: Any = None, noise: float = 0.0) -> np.ndarray:
    r""":math:`C = E[hh^\top] = (1 + \frac1N)\Lambda\Omega\Lambda + \frac1N\operatorname{tr}(\Omega\Lambda)\Lambda
    + \frac{s^2}{N}\Lambda` for :math:`h = \frac1N\sum_i y_ix_i` (Isserlis' theorem; module docstring)."""
    L = _cov("Lambda", Lambda)
    N = _length("N", N)
    om = _task(task_cov, L.shape[0])
    s = _noise(noise)
    return (1 + 1 / N) * L @ om @ L + (np.trace(om @ L) + s**2) / N * L


def loss(A: Any, Lambda: Any, N: int, *, task_cov: Any = None, noise: float = 0.0) -> float:
    r"""ZFB's population loss :math:`L(A) = \frac12 E(x_q^\top A h - \langle w, x_q\rangle)^2` (clean target)
    = :math:`\frac12[\operatorname{tr}(A^\top\Lambda AC) - 2\operatorname{tr}(\Lambda A\Lambda\Omega) +
    \operatorname{tr}(\Lambda\Omega)]` (module docstring)."""
    A = check_matrix("A", A)
    L = _cov("Lambda", Lambda)
    if A.shape != L.shape:
        raise ValueError(f"A must be (d, d) = {L.shape}; got {A.shape}")
    om = _task(task_cov, L.shape[0])
    C = second_moment(L, N, om, noise)
    return 0.5 * float(np.trace(A.T @ L @ A @ C) - 2 * np.trace(L @ A @ L @ om) + np.trace(L @ om))


def minimiser(Lambda: Any, N: int, *, task_cov: Any = None, noise: float = 0.0) -> np.ndarray:
    r"""The global minimiser :math:`A^* = \Omega\Lambda C^{-1}` of :func:`loss`.

    :math:`\Omega = I`: :math:`A^* = \Gamma^{-1}` (ZFB Thm 4.1; Ahn et al. 2023 Thm 1 in their sign
    convention, :math:`Q_{11} = -\Gamma^{-1}`). :math:`\Omega = \Lambda^{-1}` (:math:`w \sim N(0,\Sigma^{-1})`):
    :math:`A^* = \frac{N}{N + d + 1 + s^2}\Sigma^{-1}`, one step of preconditioned GD (Mahankali et al. 2024).
    """
    L = _cov("Lambda", Lambda)
    om = _task(task_cov, L.shape[0])
    C = second_moment(L, N, om, noise)
    return np.linalg.solve(C.T, (om @ L).T).T


def min_loss(Lambda: Any, N: int, *, task_cov: Any = None, noise: float = 0.0) -> float:
    r"""The minimal population loss of the one-layer LSA, with ZFB's 1/2:
    :math:`\frac12[\operatorname{tr}\Lambda - \operatorname{tr}(\Lambda^2\Gamma^{-1})]` for :math:`\Omega = I`,
    i.e. :math:`\frac12\sum_j \lambda_j(\lambda_j + \operatorname{tr}\Lambda + s^2)/((N + 1)\lambda_j +
    \operatorname{tr}\Lambda + s^2)` (ZFB Thm 4.1 / Cor. 4.3 at :math:`M = N`; derived in the module docstring)."""
    return loss(minimiser(Lambda, N, task_cov=task_cov, noise=noise), Lambda, N, task_cov=task_cov, noise=noise)


def flow_limit(Lambda: Any, N: int, *, task_cov: Any = None, noise: float = 0.0) -> tuple[float, np.ndarray]:
    r"""The limit :math:`(u, U_{11})` of ZFB's gradient flow from their initialisation (Assumption 3.3).

    The flow conserves :math:`u^2 - \|U_{11}\|_F^2` (= 0 at their start :math:`u = \sigma`,
    :math:`U_{11} = \sigma\Theta\Theta^\top`, :math:`\|\Theta\Theta^\top\|_F = 1`), so the limit of
    :math:`uU_{11}^\top = A^*` is :math:`u = \|A^*\|_F^{1/2}`, :math:`U_{11} = A^{*\top}/u`: ZFB Thm 4.1,
    :math:`W^{PV} \to [[0, 0], [0, \|\Gamma^{-1}\|_F^{1/2}]]`, :math:`W^{KQ} \to [[\|\Gamma^{-1}\|_F^{-1/2}\Gamma^{-1}, 0], [0, 0]]`.
    """
    A = minimiser(Lambda, N, task_cov=task_cov, noise=noise)
    u = float(np.sqrt(np.linalg.norm(A)))
    return u, A.T / u


def test_risk(A: Any, Lambda: Any, M: int, *, Lambda_query: Any = None, task_cov: Any = None,
              noise: float = 0.0) -> float:
    r"""Mean squared error :math:`E(x_q^\top A h - \langle w, x_q\rangle)^2` (no 1/2) of the predictor
    :math:`A` on test prompts of length ``M``.

    Prompt covariates :math:`x_i \sim N(0, \Lambda)`, query :math:`x_q \sim N(0, \Lambda_q)` (default
    :math:`\Lambda`), task second moment :math:`\Omega` (any task distribution: only :math:`E[ww^\top]` enters),
    label noise :math:`s^2`:

    .. math:: R = \operatorname{tr}(A^\top\Lambda_q A\,C_M) - 2\operatorname{tr}(\Lambda_q A\Lambda\Omega)
              + \operatorname{tr}(\Lambda_q\Omega),

    :math:`C_M` = :func:`second_moment` at :math:`M`. With :math:`A = \Gamma_N^{-1}` this is the prediction error
    of the trained transformer (ZFB Thm 4.2 and Cor. 4.3, here exact in :math:`M` and :math:`N`); the
    distribution shifts of their Sec. 4.2 are the choices of :math:`\Lambda`, :math:`\Lambda_q`, :math:`\Omega`.
    """
    A = check_matrix("A", A)
    L = _cov("Lambda", Lambda)
    Lq = L if Lambda_query is None else _cov("Lambda_query", Lambda_query)
    if A.shape != L.shape or Lq.shape != L.shape:
        raise ValueError(f"A, Lambda and Lambda_query must all be (d, d); got {A.shape}, {L.shape}, {Lq.shape}")
    om = _task(task_cov, L.shape[0])
    C = second_moment(L, M, om, noise)
    return float(np.trace(A.T @ Lq @ A @ C) - 2 * np.trace(Lq @ A @ L @ om) + np.trace(Lq @ om))


def random_covariance_coefficient(moments: Any, d: int, N: int) -> float:
    r"""The minimiser :math:`A^* = aI` when every prompt draws its own :math:`\Lambda = \operatorname{diag}(\lambda)`,
    :math:`\lambda_j` i.i.d. with moments :math:`m_k = E\lambda^k` (``moments = (m1, m2, m3)``), :math:`w \sim N(0, I)`.

    Averaging :func:`loss`'s gradient :math:`\Lambda A\Lambda\Gamma_\Lambda - \Lambda^2` over :math:`\Lambda`
    entry by entry (all diagonal) gives :math:`A^*_{jk} = 0` off the diagonal and

    .. math:: a = \frac{E\lambda_j^2}{E[\lambda_j^2\Gamma_{jj}]} = \frac{m_2}{(1 + \frac2N)m_3 + \frac{d-1}{N}m_1m_2}.

    Derived here for the random-covariance setting of ZFB Sec. 4.3 (Thm 4.5): the trained predictor is one
    fixed :math:`aI`, not :math:`\Lambda^{-1}`, so on a prompt with covariance :math:`\Lambda` it predicts
    :math:`\approx a\,x_q^\top\Lambda w` as :math:`N \to \infty`: shrunk (or inflated) by :math:`a\lambda`.
    """
    m = np.asarray(moments, dtype=float)
    if m.shape != (3,) or not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise ValueError(f"moments must be (E lambda, E lambda^2, E lambda^3), all > 0; got {shown(moments)}")
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"d must be an integer >= 1; got {shown(d)}")
    N = _length("N", N)
    m1, m2, m3 = m
    return float(m2 / ((1 + 2 / N) * m3 + (d - 1) / N * m1 * m2))


def one_step_coefficient(d: int, N: int, noise: float = 0.0) -> float:
    r"""The optimal one-step GD coefficient for :math:`x \sim N(0, I_d)`, :math:`w \sim N(0, I_d)`, label noise
    :math:`s^2`: the trained LSA predicts :math:`\hat y = a\,x_q^\top h` with

    .. math:: a = \frac{N}{N + d + 1 + s^2},

    i.e. one GD step of size :math:`\eta = a` on :math:`R(w) = \frac1{2N}\sum_i (w^\top x_i - y_i)^2` from 0
    (Mahankali, Hashimoto, Ma 2024, Thm 1; derived from :func:`minimiser` with :math:`\Lambda = I`)."""
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"d must be an integer >= 1; got {shown(d)}")
    N = _length("N", N)
    return float(N / (N + d + 1 + _noise(noise) ** 2))


def preconditioned_step(Sigma: Any, N: int, noise: float = 0.0) -> np.ndarray:
    r"""The preconditioner learned for :math:`x \sim N(0, \Sigma)`, :math:`w \sim N(0, \Sigma^{-1})`:
    :math:`A^* = \frac{N}{N + d + 1 + s^2}\Sigma^{-1}` -- one step of preconditioned GD (Mahankali et al. 2024,
    Thm 2; :func:`minimiser` with :math:`\Omega = \Sigma^{-1}`)."""
    S = _cov("Sigma", Sigma)
    return minimiser(S, N, task_cov=np.linalg.inv(S), noise=noise)


# ---------------------------------------------------------------------------
# constructions and conventions
# ---------------------------------------------------------------------------
def gd_construction(eta: float, d: int, preconditioner: Any = None) -> tuple[np.ndarray, np.ndarray]:
    r"""ZFB-form weights :math:`(W^{PV}, W^{KQ})` of a layer that performs one (preconditioned) GD step.

    :math:`W^{PV} = [[0, 0], [0, 1]]`, :math:`W^{KQ} = [[\eta P^\top, 0], [0, 0]]` give
    :math:`\hat y = \eta\,x_q^\top P\frac1N\sum_i y_ix_i`: the prediction at :math:`x_q` after one step
    :math:`w_1 = -\eta P\nabla R(0)` on :math:`R(w) = \frac1{2N}\sum_i (w^\top x_i - y_i)^2`
    (von Oswald et al. 2023, Prop. 1, written in ZFB's parameterisation; :math:`P = I` is plain GD).
    """
    P = np.eye(d) if preconditioner is None else check_matrix("preconditioner", preconditioner)
    if P.shape != (d, d):
        raise ValueError(f"preconditioner must be ({d}, {d}); got {P.shape}")
    W_pv = np.zeros((d + 1, d + 1))
    W_pv[d, d] = 1.0
    W_kq = np.zeros((d + 1, d + 1))
    W_kq[:d, :d] = float(eta) * P.T
    return W_pv, W_kq


def ahn_from_zfb(W_pv: Any, W_kq: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""Ahn et al.'s :math:`(P, Q)` with the same predictions as ZFB's :math:`(W^{PV}, W^{KQ})` on a masked layer.

    ZFB predict :math:`+[W^{PV}E\,E^\top W^{KQ}E/N]_{d+1,N+1}`; Ahn et al. predict
    :math:`-[PZMZ^\top QZ/n]_{d+1,n+1}` with the query masked (:math:`M`): the same map when the query column
    is left out of ZFB's sum (or does not reach the prediction, as for the sparse form), with
    :math:`P = W^{PV}`, :math:`Q = -W^{KQ}`. Their loss has no 1/2: :math:`f_{Ahn} = 2L_{ZFB}`, so their
    gradient flow at time :math:`t` is ZFB's at :math:`2t`.
    """
    return np.array(W_pv, dtype=float), -np.array(W_kq, dtype=float)


def zfb_from_ahn(P: Any, Q: Any) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`ahn_from_zfb`."""
    return np.array(P, dtype=float), -np.array(Q, dtype=float)


def preconditioned_gd(X: Any, y: Any, x_query: Any, preconditioners: Any) -> np.ndarray:
    r"""Predictions :math:`\langle w_L, x_q\rangle` after :math:`L` steps of preconditioned GD from :math:`w_0 = 0`:
    :math:`w_{l+1} = w_l - A_l^\top\nabla R(w_l)`, :math:`R(w) = \frac1{2n}\sum_i (w^\top x_i - y_i)^2`.

    Ahn et al. 2023, Lemma 1: the :math:`L`-layer masked LSA with :math:`P_l = [[0, 0], [0, 1]]`,
    :math:`Q_l = -[[A_l, 0], [0, 0]]` computes exactly this (its prediction being minus the bottom-right entry).
    ``X`` (P, n, d), ``y`` (P, n), ``x_query`` (P, d), ``preconditioners`` (L, d, d). Returns (P,).
    """
    X = check_matrix("X", X, ndim=3)
    y = check_matrix("y", y, ndim=2)
    xq = check_matrix("x_query", x_query, ndim=2)
    As = check_matrix("preconditioners", preconditioners, ndim=3)
    n = X.shape[1]
    w = np.zeros((X.shape[0], X.shape[2]))
    for A in As:
        grad = np.einsum("pi,pid->pd", np.einsum("pid,pd->pi", X, w) - y, X) / n
        w = w - grad @ A
    return np.einsum("pd,pd->p", w, xq)


# ---------------------------------------------------------------------------
# attention as a max-margin SVM
# ---------------------------------------------------------------------------
def token_scores(X: Any, Y: Any, v: Any) -> np.ndarray:
    r"""Scores :math:`\gamma_{it} = Y_i\,v^\top x_{it}` (Tarzanagh et al. 2023, Def. 1): ``X`` (n, T, d), ``Y`` (n,), ``v`` (d,)."""
    X = check_matrix("X", X, ndim=3)
    return np.asarray(Y, dtype=float)[:, None] * (X @ np.asarray(v, dtype=float))


def optimal_tokens(X: Any, Y: Any, v: Any) -> np.ndarray:
    """The globally optimal token of each sequence, the one of highest score (Tarzanagh et al. 2023, Def. 1)."""
    return np.argmax(token_scores(X, Y, v), axis=1)


def _differences(X: np.ndarray, z: np.ndarray, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The constraint matrices :math:`D_{it} = (x_{i\\alpha_i} - x_{it}) z_i^\\top`, (n, T, d, d), and the mask t != alpha_i."""
    n, T, _ = X.shape
    sel = X[np.arange(n), alpha]
    D = (sel[:, None, :] - X)[..., None] * z[:, None, None, :]
    mask = np.ones((n, T), dtype=bool)
    mask[np.arange(n), alpha] = False
    return D, mask


def att_svm(X: Any, z: Any, alpha: Any, norm: str = "fro", solver: str | None = None) -> ConvexSolution:
    r"""The attention SVM for the selected tokens ``alpha``:

    .. math:: \min_W \|W\| \quad\text{s.t.}\quad (x_{i\alpha_i} - x_{it})^\top W z_i \ge 1\ \ \forall i,\ t \ne \alpha_i ,

    with :math:`\|\cdot\|_F` (``norm="fro"``, the limit direction of GD on :math:`W`) or the nuclear norm
    (``"nuc"``, the limit of GD on the factorisation :math:`W = KQ^\top`): Tarzanagh, Li, Thrampoulidis,
    Oymak 2023, Eq. (Att-SVM) and (Att-SVM*), Thms 1-2. ``X`` (n, T, d) tokens, ``z`` (n, d) queries,
    ``alpha`` (n,) the selected token of each sequence.

    Certificate from the multipliers :math:`\lambda_{it} \ge 0` (``dual``, (n, T), 0 at :math:`\alpha_i`) and
    :math:`G = \sum\lambda_{it}D_{it}`: Frobenius (:math:`\min\frac12\|W\|_F^2`): stationarity :math:`W = G`;
    nuclear: :math:`\|G\|_{op} \le 1` and :math:`\langle G, W\rangle = \|W\|_*`; both: primal feasibility,
    complementary slackness, and the duality gap (:math:`\|W\|_* = \sum\lambda`, or
    :math:`\frac12\|W\|_F^2 = \sum\lambda - \frac12\|G\|_F^2`). ``value`` is the norm :math:`\|W^{mm}\|`.
    Raises :class:`SolverError` when infeasible (e.g. duplicated tokens) or not certified.
    """
    import cvxpy as cp

    X = check_matrix("X", X, ndim=3)
    z = check_matrix("z", z, ndim=2)
    n, T, d = X.shape
    if z.shape != (n, d):
        raise ValueError(f"z must be (n, d) = ({n}, {d}); got {z.shape}")
    a = np.asarray(alpha)
    if a.shape != (n,) or a.dtype.kind not in "iu" or np.any(a < 0) or np.any(a >= T):
        raise ValueError(f"alpha must be n = {n} token indices in [0, {T}); got {shown(alpha)}")
    if norm not in ("fro", "nuc"):
        raise ValueError(f"norm must be 'fro' or 'nuc'; got {shown(norm)}")
    if T < 2:
        raise ValueError("each sequence needs T >= 2 tokens")
    D, mask = _differences(X, z, a)
    Dm = D[mask].reshape(-1, d * d)
    W = cp.Variable((d, d))
    cons = Dm @ cp.vec(W, order="C") >= 1
    objective = 0.5 * cp.sum_squares(W) if norm == "fro" else cp.normNuc(W)
    status = solve(cp.Problem(cp.Minimize(objective), [cons]), solver, allow_inaccurate=True)
    Wv = np.asarray(W.value, dtype=float)
    lam_m = np.maximum(np.asarray(cons.dual_value, dtype=float).reshape(-1), 0.0)
    lam = np.zeros((n, T))
    lam[mask] = lam_m
    G = (lam_m @ Dm).reshape(d, d)
    margins = Dm @ Wv.reshape(-1)
    comp = float(np.sum(lam_m * np.abs(margins - 1)) / max(lam_m.sum(), 1e-300))
    primal = max(0.0, 1.0 - float(margins.min()))
    if norm == "fro":
        val = float(np.linalg.norm(Wv))
        half = 0.5 * val**2
        residuals = {"primal": primal, "stationarity": float(np.linalg.norm(Wv - G) / max(val, 1e-300)),
                     "complementarity": comp,
                     "gap": abs(half - (lam_m.sum() - 0.5 * float(np.sum(G * G)))) / max(half, 1e-300)}
    else:
        val = float(np.linalg.svd(Wv, compute_uv=False).sum())
        residuals = {"primal": primal, "dual": max(0.0, float(np.linalg.norm(G, 2)) - 1.0),
                     "stationarity": abs(val - float(np.sum(G * Wv))) / max(val, 1e-300),
                     "complementarity": comp, "gap": abs(val - float(lam_m.sum())) / max(val, 1e-300)}
    if max(residuals.values()) > 1e-5:
        raise SolverError(f"the attention SVM is not certified (KKT residuals {residuals})", status)
    return ConvexSolution.certified(Wv, val, residuals, dual=lam, status=status, solver=solver or "CLARABEL")


def support_tokens(solution: ConvexSolution, tol: float = 1e-6) -> np.ndarray:
    """Boolean (n, T): the tokens whose constraint is active with a positive multiplier (the support vectors)."""
    lam = np.asarray(solution.dual)
    return lam > tol * max(float(lam.max()), 1e-300)
