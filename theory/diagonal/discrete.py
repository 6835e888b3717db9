"""Discrete algorithms on diagonal networks: the effective initial scale of GD, SGD, SAM and gradient regularisation
(Even et al. 2023; Pesme et al. 2021; Karakida et al. 2023), and the Hessian's trace and top eigenvalue behind SGD's
stability (Wu & Su 2023).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..convex import check_matrix
from .._format import shown
from .common import _as_real

__all__ = ["discrete_bias_bound", "effective_alpha", "effective_alpha_from_run", "effective_alpha_sgd", "effective_alpha_two_point", "hessian_top", "hessian_trace", "stability_bounds"]


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
    ``sims.engine.rules.SGD`` does) moves :math:`w_j` with the batch gradient
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
    ``sims.engine.rules.GradientRegularized``): :math:`a = 1 - \lambda/\epsilon`, :math:`b = \lambda/\epsilon`, so
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
