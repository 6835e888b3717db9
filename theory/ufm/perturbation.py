r"""Features pulled toward given ones: the exact within-class response and the near-collapse regime.

Tirer, Huang & Niles-Weed 2023 (Perturbation Analysis of Neural Collapse, ICML) keep the features of the
unconstrained feature model near a given matrix :math:`H_0` (say, intermediate features) and study the
minimisers when :math:`H_0` is close to collapse. Only their abstract and a review could be read here; the
statements below are derived in this module for the library's anchored MSE model (``sims.ufm.Problem(anchor=)``),

.. math::
    f(W, b, H) = \frac{1}{2N}\|WH + b\mathbf 1^\top - Y\|_F^2 + \sum_m\frac{\lambda_W}{2}\|W_m\|_F^2
                 + \frac{\lambda_H}{2}\|H - H_0\|_F^2 \;(+\tfrac{\lambda_b}{2}\|b\|^2),
    \qquad W = W_M\cdots W_1 .

**1. The within-class response is exact at every critical point.** Let :math:`P = I_N - J` remove each
class's mean (:math:`J` averages within classes), so :math:`YP = 0` and :math:`\mathbf 1^\top P = 0`.
Multiplying the stationarity condition in :math:`H`, :math:`\tfrac1N W^\top(WH + b\mathbf 1^\top - Y)
+ \lambda_H(H - H_0) = 0`, by :math:`P` on the right gives

.. math::
    HP = S\,H_0P,\qquad S = \lambda_H\Big(\frac{W^\top W}{N} + \lambda_H I\Big)^{-1},

for any depth, class sizes and bias. :math:`0 \prec S \preceq I`: the within-class deviations are kept
exactly on the kernel of :math:`W` and shrunk by :math:`\lambda_H/(\lambda_H + \sigma_i^2/N)` along its
:math:`i`-th right singular vector (:math:`\sigma_i` the singular values of :math:`W`). This is the reduction
of within-class variability the paper proves along gradient flow, here as an identity at the end point
(:func:`anchored_response`).

**2. The classifier feels the within-class part only at second order.** With :math:`E = H_0P`, the
objective splits into its class-mean part and :math:`\tfrac1{2N}\|WHP\|^2 + \tfrac{\lambda_H}2\|HP - E\|^2`;
minimising the latter over :math:`HP` leaves :math:`\tfrac{\lambda_H}{2}\operatorname{tr}(EE^\top G(W))`,
:math:`G = \tfrac{W^\top W}{N}(\tfrac{W^\top W}{N} + \lambda_H I)^{-1}`. So for :math:`E = \varepsilon E_1`
the classifier is the collapsed problem's up to :math:`O(\varepsilon^2)`, and
:math:`HP = S(W_0)E + O(\varepsilon^3)`, where :math:`W_0` minimises the problem with anchor :math:`H_0J`.
The constant grows like :math:`1/\lambda_W`: the cross-covariance of :math:`E` between the span of the
means and its complement tilts the classifier's rows out of that span (a force :math:`O(\varepsilon^2)`),
and nothing but the weight decay holds them back, so the expansion's parameter is
:math:`\varepsilon^2/\lambda_W`.

**3. The collapsed problem in closed form** (balanced classes, :math:`n` per class, :math:`N = Kn`, one
bias-free layer, anchor means :math:`a q_k` with orthonormal :math:`q_k \in \mathbb R^d`, :math:`d \ge K`).
On :math:`W = s\sum_k e_k q_k^\top` and class means :math:`t q_k` the objective is

.. math::
    f_B(s, t) = \tfrac12(st - 1)^2 + \tfrac{K\lambda_W}{2}s^2 + \tfrac{N\lambda_H}{2}(t - a)^2,

stationary at :math:`s = t/D`, :math:`D = t^2 + K\lambda_W`, with :math:`N\lambda_H(t - a)D^2 = K\lambda_W t`
(a quintic; :func:`near_collapse` takes its real root of least :math:`f_B`). Then :math:`S = cQQ^\top +
(I - QQ^\top)` with

.. math::
    c = \frac{N\lambda_H}{N\lambda_H + s^2} = \frac{K\lambda_W}{K\lambda_W + t(t - a)},\qquad
    \frac{\mathrm{NC1}(H^*)}{\mathrm{NC1}(H_0)} = \Big(\frac{c\,a}{t}\Big)^2 + O(\varepsilon^2),

because NC1 = tr(Σ_W Σ_B⁺)/K sees the within-class scatter only on the span of the centred means
(inside :math:`\operatorname{span}Q`, where it shrinks by :math:`c^2`), and the means move from
:math:`a q_k` to :math:`t q_k`. The error is even in :math:`\varepsilon` (the classifier depends on
:math:`EE^\top`), so the next term is :math:`O(\varepsilon^4)`. At :math:`a = 0` this is the standard
UFM (Dang et al. 2023, Thm 4.1: :math:`s^2 = \sqrt{n\lambda_H/\lambda_W} - N\lambda_H`) and the shrink
factor is :math:`c = K\sqrt{n\lambda_W\lambda_H} = 1 - z`, :math:`z = st` the fit of each class.
That the aligned point is the global minimiser of the collapsed problem (not only a critical point) is
checked, not proved: by L-BFGS from random starts (tests) and by gradient flow (the claim
``ufm.near_collapse``).

**4. The hyperparameters.** :func:`near_collapse_elasticities` differentiates :math:`\ln\rho`,
:math:`\rho = (ca/t)^2`, in :math:`\ln\lambda_W` and :math:`\ln\lambda_H` through the quintic (implicit
differentiation). On every point tried the feature regulariser moves NC1 more than the classifier's,
the paper's conclusion as its review states it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._format import shown
from .common import _counts, _lam

__all__ = ["NearCollapse", "anchored_response", "within_class", "near_collapse", "near_collapse_elasticities"]


def within_class(H: Any, n: Any) -> np.ndarray:
    """``H P``: every column minus its class's mean (samples ordered by class, sizes ``n``)."""
    n = _counts(n)
    H = np.asarray(H, dtype=float)
    if H.ndim != 2 or H.shape[1] != n.sum():
        raise ValueError(f"H must have shape (d, N) with N = {int(n.sum())}; got {H.shape}")
    bounds = np.concatenate([[0], np.cumsum(n)])
    out = H.copy()
    for k in range(len(n)):
        out[:, bounds[k]:bounds[k + 1]] -= H[:, bounds[k]:bounds[k + 1]].mean(axis=1, keepdims=True)
    return out


def anchored_response(W: Any, E: Any, lambda_H: float, N: int) -> np.ndarray:
    r""":math:`\lambda_H(W^\top W/N + \lambda_H I)^{-1}E`: the within-class features at any critical point of the
    anchored MSE model whose anchor has within-class part ``E`` (``W`` the end-to-end classifier, K x d;
    identity 1 of the module docstring)."""
    W = np.asarray(W, dtype=float)
    E = np.asarray(E, dtype=float)
    lh = _lam("lambda_H", lambda_H)
    if W.ndim != 2 or E.ndim != 2 or E.shape[0] != W.shape[1]:
        raise ValueError(f"W (K x d) and E (d x N) must share d; got {W.shape} and {E.shape}")
    if isinstance(N, bool) or not isinstance(N, (int, np.integer)) or N < 1:
        raise ValueError(f"N must be an integer >= 1; got {shown(N)}")
    d = W.shape[1]
    return lh * np.linalg.solve(W.T @ W / N + lh * np.eye(d), E)


@dataclass(frozen=True)
class NearCollapse:
    """The collapsed anchored problem's minimiser (module docstring, point 3) and what it predicts.

    Attributes
    ----------
    s, t : float
        Length of each classifier row and of each class mean (the means are ``t q_k``).
    shrink : float
        ``c``: the factor on the within-class deviations inside the span of the anchor's means (1 outside).
    nc1_ratio : float or None
        ``(c a / t)^2``, NC1 of the minimiser over NC1 of the anchor as the anchor's within-class part tends
        to zero; None at ``a = 0`` (the anchor's NC1 is then infinite).
    value : float
        ``f_B(s, t)``.
    stationary : tuple of float
        Every real stationary ``t`` of ``f_B`` (the minimiser's among them).
    """

    s: float
    t: float
    shrink: float
    nc1_ratio: float | None
    value: float
    stationary: tuple[float, ...]


def _check(K: Any, n_per_class: Any, a: Any) -> tuple[int, int, float]:
    for name, v in (("K", K), ("n_per_class", n_per_class)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 2 - (name == "n_per_class") <= v <= 10**6:
            raise ValueError(f"{name} must be an integer >= {2 - (name == 'n_per_class')} (at most 1e6); got {shown(v)}")
    if isinstance(a, bool) or not isinstance(a, (int, float, np.integer, np.floating)) or not math.isfinite(a) or a < 0:
        raise ValueError(f"a (the length of the anchor's class means) must be a finite number >= 0; got {shown(a)}")
    return int(K), int(n_per_class), float(a)


def near_collapse(K: int, n_per_class: int, lambda_W: float, lambda_H: float, a: float) -> NearCollapse:
    """The collapsed anchored problem in closed form (module docstring, point 3; derived here).

    Parameters
    ----------
    K, n_per_class : int
        Classes (>= 2) and samples per class (>= 1).
    lambda_W, lambda_H : float > 0
        Weight decay on the classifier and the pull of the features toward the anchor.
    a : float >= 0
        Length of the anchor's class means (orthonormal directions).
    """
    K, n, a = _check(K, n_per_class, a)
    lw, lh = _lam("lambda_W", lambda_W), _lam("lambda_H", lambda_H)
    N = K * n
    kw = K * lw
    quad = np.array([1.0, 0.0, kw])
    poly = N * lh * np.polymul([1.0, -a], np.polymul(quad, quad))
    poly = np.polysub(poly, [kw, 0.0])
    roots = np.roots(poly)
    scale = max(1.0, float(np.abs(roots).max()))
    real = np.sort(roots[np.abs(roots.imag) <= 1e-9 * scale].real)

    def value(t: float) -> float:
        s = t / (t * t + kw)
        return 0.5 * (s * t - 1) ** 2 + 0.5 * kw * s * s + 0.5 * N * lh * (t - a) ** 2

    t = float(min(real, key=value))
    s = t / (t * t + kw)
    c = N * lh / (N * lh + s * s)
    ratio = (c * a / t) ** 2 if a > 0 else None
    return NearCollapse(s=s, t=t, shrink=c, nc1_ratio=ratio, value=value(t), stationary=tuple(float(r) for r in real))


def near_collapse_elasticities(K: int, n_per_class: int, lambda_W: float, lambda_H: float,
                               a: float) -> tuple[float, float]:
    r"""``(d ln rho / d ln lambda_W, d ln rho / d ln lambda_H)`` for :math:`\rho = (ca/t)^2` (module docstring,
    point 4), by implicit differentiation of :math:`F(t) = N\lambda_H(t - a)D^2 - K\lambda_W t = 0`:
    :math:`t_\lambda = -F_\lambda/F_t` with :math:`F_t = N\lambda_H(D^2 + 4t(t - a)D) - K\lambda_W`,
    :math:`F_{\lambda_W} = 2KN\lambda_H(t - a)D - Kt`, :math:`F_{\lambda_H} = N(t - a)D^2`, and
    :math:`\ln\rho = 2(\ln K\lambda_W - \ln(K\lambda_W + t^2 - at) + \ln a - \ln t)`."""
    K, n, a = _check(K, n_per_class, a)
    if a == 0:
        raise ValueError("a must be > 0: at a = 0 the anchor's NC1 is infinite and the ratio is not defined")
    sol = near_collapse(K, n, lambda_W, lambda_H, a)
    lw, lh, t, N = float(lambda_W), float(lambda_H), sol.t, K * n
    D = t * t + K * lw
    Ft = N * lh * (D * D + 4 * t * (t - a) * D) - K * lw
    tW = -(2 * K * N * lh * (t - a) * D - K * t) / Ft
    tH = -(N * (t - a) * D * D) / Ft
    den = K * lw + t * t - a * t

    def dlnrho(dt: float, dkw: float) -> float:
        return 2 * (dkw / (K * lw) - (dkw + (2 * t - a) * dt) / den - dt / t)

    return lw * dlnrho(tW, K), lh * dlnrho(tH, 0.0)
