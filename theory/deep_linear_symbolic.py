r"""Symbolic derivations for deep linear and scalar networks (sympy).

* ``saxe_ode``: :math:`u(t) = s e^{2st/\tau}/(e^{2st/\tau} - 1 + s/u_0)` solves
  :math:`\tau\dot u = 2u(s - u)` with :math:`u(0) = u_0` (Saxe et al. 2014, Eq. 6);
* ``balance_conserved``: along gradient flow of :math:`(w_1 w_2 w_3 - y)^2/2`,
  :math:`\tfrac{d}{dt}(w_i^2 - w_j^2) = 0` (Kreisler et al. 2023, Sec. 3);
* ``gfs_hessian``: at a minimum (:math:`\prod w = y`) the Hessian is
  :math:`\nabla f\nabla f^\top`, whose top eigenvalue is
  :math:`\|\nabla f\|^2 = y^2\sum_i w_i^{-2}` (Kreisler et al. 2023, Lemma 3.2);
* ``sam_edge``: the positive root of :math:`\eta\lambda(1 + \rho\lambda) = 2` is
  :math:`(\sqrt{1 + 8\rho/\eta} - 1)/(2\rho)` (Agarwala & Dauphin 2023, Sec. 3).
"""

from __future__ import annotations

import numpy as np

__all__ = ["verify", "numeric_gap"]


def _saxe():
    import sympy as sp

    t, tau, s, u0 = sp.symbols("t tau s u0", positive=True)
    e = sp.exp(2 * s * t / tau)
    return (t, tau, s, u0), s * e / (e - 1 + s / u0)


def _sam():
    import sympy as sp

    eta, rho, lam = sp.symbols("eta rho lambda", positive=True)
    return (eta, rho, lam), (sp.sqrt(1 + 8 * rho / eta) - 1) / (2 * rho)


def verify() -> dict[str, bool]:
    """Prove each identity of the module docstring; return name -> proved."""
    import sympy as sp

    out: dict[str, bool] = {}
    (t, tau, s, u0), u = _saxe()
    out["saxe_ode"] = bool(sp.simplify(tau * sp.diff(u, t) - 2 * u * (s - u)) == 0 and sp.simplify(u.subs(t, 0) - u0) == 0)

    w = sp.symbols("w1:4", positive=True)
    y = sp.Symbol("y", positive=True)
    f = w[0] * w[1] * w[2]
    loss = (f - y) ** 2 / 2
    flow = [-sp.diff(loss, wi) for wi in w]  # dw_i/dt
    rates = [sp.simplify(2 * wi * fi) for wi, fi in zip(w, flow)]  # d(w_i^2)/dt
    out["balance_conserved"] = all(sp.simplify(rates[0] - r) == 0 for r in rates[1:])

    grad = sp.Matrix([sp.diff(f, wi) for wi in w])
    hess = sp.hessian(loss, w).subs(y, f)  # at a minimum, y = prod(w)
    norm2 = (grad.T * grad)[0]
    rank_one = sp.simplify(hess - grad * grad.T) == sp.zeros(3, 3)
    eigen = sp.simplify(hess * grad - norm2 * grad) == sp.zeros(3, 1)
    formula = sp.simplify(norm2 - f**2 * sum(1 / wi**2 for wi in w)) == 0
    out["gfs_hessian"] = bool(rank_one and eigen and formula)

    (eta, rho, lam), edge = _sam()
    roots = sp.solve(sp.Eq(eta * lam * (1 + rho * lam), 2), lam)
    out["sam_edge"] = any(sp.simplify(r - edge) == 0 for r in roots)
    out["sam_edge_gd_limit"] = sp.simplify(sp.limit(edge, rho, 0) - 2 / eta) == 0
    return {k: bool(v) for k, v in out.items()}


def numeric_gap() -> float:
    """Largest relative gap between :mod:`theory.deep_linear` and these expressions at sample points."""
    import sympy as sp

    from . import deep_linear as th

    (t, tau, s, u0), u = _saxe()
    fu = sp.lambdify((t, tau, s, u0), u, "numpy")
    ts = np.linspace(0, 5, 11)
    gaps = [np.max(np.abs(fu(ts, 1.0, 2.0, 1e-3) - th.saxe_mode(ts, 2.0, 1e-3)) / 2.0)]
    (eta, rho, _), edge = _sam()
    fe = sp.lambdify((eta, rho), edge, "numpy")
    for e, r in ((0.1, 0.05), (0.3, 0.5)):
        gaps.append(abs(fe(e, r) - float(th.sam_edge(e, r))) / fe(e, r))
    w = np.array([0.8, 1.1, 1.0 / 0.88])  # a minimum: prod = 1
    gaps.append(abs(th.gfs_sharpness(w, 1.0) - np.sum(1 / w**2)) / np.sum(1 / w**2))
    return float(max(gaps))
