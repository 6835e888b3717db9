r"""Symbolic checks for the unconstrained feature model (sympy).

* ``mse_stationary``: for one class mode, :math:`f(a, h) = (ah - s)^2/(2N) + \lambda_W a^2/2 + \lambda_H h^2/2`
  with :math:`s = \sqrt{n_k}` is stationary at
  :math:`a^2 = \sqrt{\lambda_H/\lambda_W}\,(s - N\sqrt{\lambda_W\lambda_H})`,
  :math:`h^2 = \sqrt{\lambda_W/\lambda_H}\,(s - N\sqrt{\lambda_W\lambda_H})` (Dang et al. 2023, Thm 4.1);
* ``amgm_equality``: there :math:`\lambda_W a^2/2 + \lambda_H h^2/2 = \sqrt{\lambda_W\lambda_H}\,ah`,
  so the nuclear-norm bound is attained;
* ``ce_scale``: :math:`\rho = \frac1a\log\frac{(K-1)(a-\beta)}{\beta}` zeroes the derivative of
  :math:`\log(1 + (K-1)e^{-a\rho}) + \beta\rho` (Zhu et al. 2021, Thm 3.1, in this library's normalisation).
"""

from __future__ import annotations

import math

__all__ = ["verify", "numeric_gap"]


def _mse_point():
    import sympy as sp

    s, N, lw, lh = sp.symbols("s N lambda_W lambda_H", positive=True)
    gap = s - N * sp.sqrt(lw * lh)
    a = sp.sqrt(sp.sqrt(lh / lw) * gap)
    h = sp.sqrt(sp.sqrt(lw / lh) * gap)
    return (s, N, lw, lh), a, h


def verify() -> dict[str, bool]:
    import sympy as sp

    (s, N, lw, lh), a, h = _mse_point()
    A, Hs = sp.symbols("a h", positive=True)
    f = (A * Hs - s) ** 2 / (2 * N) + lw * A**2 / 2 + lh * Hs**2 / 2
    sub = {A: a, Hs: h}
    out = {
        "mse_stationary": all(sp.simplify(sp.diff(f, v).subs(sub)) == 0 for v in (A, Hs)),
        "amgm_equality": sp.simplify((lw * A**2 / 2 + lh * Hs**2 / 2 - sp.sqrt(lw * lh) * A * Hs).subs(sub)) == 0,
    }
    K, beta, rho = sp.symbols("K beta rho", positive=True)
    alpha = K / (K - 1)
    g = sp.log(1 + (K - 1) * sp.exp(-alpha * rho)) + beta * rho
    rho_star = sp.log((K - 1) * (alpha - beta) / beta) / alpha
    out["ce_scale"] = sp.simplify(sp.diff(g, rho).subs(rho, rho_star)) == 0
    return {k: bool(v) for k, v in out.items()}


def numeric_gap() -> float:
    """Relative gap between :mod:`theory.ufm` and these expressions at sample points."""
    import numpy as np

    from . import geometry as th

    n, lam = (30, 15, 8), 4e-3
    N = sum(n)
    geo = th.mse_geometry(n, lam, lam)
    a2 = np.array([max(math.sqrt(k) - N * lam, 0.0) for k in n])  # sqrt(lh/lw) = 1
    gaps = [float(np.max(np.abs(geo.w_norms_sq - a2)) / a2.max())]
    K, n_per = 4, 8
    beta = K * math.sqrt(n_per * lam * lam)
    a = K / (K - 1)
    rho = math.log((K - 1) * (a - beta) / beta) / a
    gaps.append(abs(th.ce_balanced_scale(K, n_per, lam, lam) - rho) / rho)
    return max(gaps)
