"""Scalar networks: gradient-flow solutions and their sharpness (Kreisler et al. 2023), the Hessian at a minimum, and
SAM's edge of stability (Agarwala & Dauphin 2023).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize

from ..convex import check_vector

__all__ = ["gfs", "gfs_sharpness", "sam_edge", "scalar_hessian"]


def gfs(w: Any, y: float) -> np.ndarray:
    r"""The gradient-flow solution from ``w`` for the scalar network :math:`f = \prod_i w_i`.

    Gradient flow on :math:`(f - y)^2/2` conserves :math:`w_i^2 - w_j^2`
    (Kreisler, Nacson, Soudry & Carmon 2023, Sec. 3), so its limit is
    :math:`w_i^{*2} = w_i^2 + c` with :math:`c` the root of
    :math:`\prod_i (w_i^2 + c) = y^2`, signs kept. Valid when the signs of ``w``
    make :math:`\operatorname{sign}(\prod w_i) = \operatorname{sign}(y)` reachable
    without crossing zero (``y`` and ``prod(w)`` of the same sign).
    """
    w = check_vector("w", w)
    y = float(y)
    if not math.isfinite(y) or y == 0:
        raise ValueError(f"y must be finite and non-zero; got {y}")
    if np.any(w == 0) or np.sign(np.prod(w)) != np.sign(y):
        raise ValueError("the gradient-flow solution is described for prod(w) of the sign of y, no w_i = 0")
    w2 = w**2

    def excess(c: float) -> float:
        return float(np.sum(np.log(w2 + c)) - 2 * math.log(abs(y)))

    lo = -w2.min() * (1 - 1e-15)
    hi = max(abs(y) ** (2 / len(w)), 1.0)
    while excess(hi) < 0:
        hi *= 2
    c = optimize.brentq(excess, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)
    return np.sign(w) * np.sqrt(w2 + c)


def gfs_sharpness(w: Any, y: float) -> float:
    r"""Sharpness of the gradient-flow solution from ``w``: :math:`y^2\sum_i 1/(w_i^2 + c)`.

    At a minimum of :math:`(\prod w - y)^2/2` the Hessian is
    :math:`\nabla f\nabla f^\top` with :math:`\partial_i f = y/w_i^*`, so its top
    eigenvalue is :math:`\|\nabla f\|^2 = y^2\sum_i w_i^{*-2}` (Kreisler et al. 2023,
    Lemma 3.2; derived symbolically in :mod:`theory.deep_linear.symbolic`).
    """
    ws = gfs(w, y)
    return float(y**2 * np.sum(1.0 / ws**2))


def scalar_hessian(w: Any, y: float) -> np.ndarray:
    r"""Exact Hessian of :math:`(\prod_i w_i - y)^2/2`:
    :math:`H_{ij} = \partial_i f\,\partial_j f + (f - y)\,\partial_{ij} f`."""
    w = check_vector("w", w)
    d = len(w)
    f = float(np.prod(w))
    grad = np.array([np.prod(np.delete(w, i)) for i in range(d)])
    second = np.zeros((d, d))
    for i in range(d):
        for j in range(d):
            if i != j:
                second[i, j] = np.prod(np.delete(w, [i, j]))
    return np.outer(grad, grad) + (f - y) * second


def sam_edge(eta: Any, rho: Any) -> np.ndarray:
    r"""Largest curvature at which unnormalised SAM is linearly stable on a quadratic.

    On :math:`\tfrac{\lambda}{2}x^2`, unnormalised SAM
    :math:`x \leftarrow x - \eta\nabla L(x + \rho\nabla L(x))` multiplies
    :math:`x` by :math:`1 - \eta\lambda(1 + \rho\lambda)`; stability needs
    :math:`\eta\lambda(1 + \rho\lambda) \le 2`, i.e.

    .. math:: \lambda \le \frac{\sqrt{1 + 8\rho/\eta} - 1}{2\rho}

    (Agarwala & Dauphin 2023, Sec. 3; :math:`\rho \to 0` gives GD's :math:`2/\eta`).
    Normalised SAM replaces :math:`\rho` by :math:`\rho/\|g\|` (Long & Bartlett
    2023) and has no fixed edge.
    """
    eta = np.asarray(eta, dtype=float)
    rho = np.asarray(rho, dtype=float)
    if np.any(~np.isfinite(eta)) or np.any(eta <= 0):
        raise ValueError("eta must be finite and > 0")
    if np.any(~np.isfinite(rho)) or np.any(rho < 0):
        raise ValueError("rho must be finite and >= 0")
    safe = np.where(rho > 0, rho, 1.0)
    return np.where(rho > 0, (np.sqrt(1 + 8 * safe / eta) - 1) / (2 * safe), 2 / eta)
