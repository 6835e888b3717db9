r"""Symbolic derivations for deep linear and scalar networks (sympy).

* ``saxe_ode``: :math:`u(t) = s e^{2st/\tau}/(e^{2st/\tau} - 1 + s/u_0)` solves
  :math:`\tau\dot u = 2u(s - u)` with :math:`u(0) = u_0` (Saxe et al. 2014, Eq. 6);
* ``balance_conserved``: along gradient flow of :math:`(w_1 w_2 w_3 - y)^2/2`,
  :math:`\tfrac{d}{dt}(w_i^2 - w_j^2) = 0` (Kreisler et al. 2023, Sec. 3);
* ``gfs_hessian``: at a minimum (:math:`\prod w = y`) the Hessian is
  :math:`\nabla f\nabla f^\top`, whose top eigenvalue is
  :math:`\|\nabla f\|^2 = y^2\sum_i w_i^{-2}` (Kreisler et al. 2023, Lemma 3.2);
* ``sam_edge``: the positive root of :math:`\eta\lambda(1 + \rho\lambda) = 2` is
  :math:`(\sqrt{1 + 8\rho/\eta} - 1)/(2\rho)` (Agarwala & Dauphin 2023, Sec. 3);
* ``mp_resolvent``: through the effective ridge :math:`\kappa`, the closed forms of
  :func:`theory.deep_linear.mp_resolvent` solve :math:`\gamma\lambda g^2 + (1-\gamma+\lambda)g - 1 = 0`
  and are the :math:`\lambda`-derivatives that define them (:math:`g_2 = -g_1'`, :math:`v_2 = -\mathrm{df}'`,
  :math:`v_3 = -v_2'/2`, :math:`r_2 = \mathrm{df} - \lambda v_2`);
* ``ridge_stationarity``: for any resolvent :math:`g(\lambda)`, the model-collapse ridge error
  :math:`a\lambda^2 g_2 + b(g - \lambda g_2) + c(1 - 2\lambda g + \lambda^2 g_2)` (per coordinate,
  :math:`g_2 = -g'`) has derivative :math:`-(2g' + \lambda g'')((a + c)\lambda - b) - 2c(g + \lambda g')`,
  so without synthetic data (:math:`c = 0`) the optimum is :math:`\lambda^* = b/a` whatever the spectrum
  (:func:`theory.deep_linear.model_collapse_optimal_ridge`).
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

    gam, lm = sp.symbols("gamma lambda", positive=True)
    S = sp.sqrt((lm + gam - 1) ** 2 + 4 * lm)
    kappa = (lm + gam - 1 + S) / 2
    g1 = kappa / (lm * (1 + kappa))
    df = 1 / (1 + kappa)
    v2 = 1 / ((1 + kappa) * S)
    traces = {  # each closed form of theory.deep_linear.mp_resolvent against its definition
        "root": gam * lm * g1**2 + (1 - gam + lm) * g1 - 1,
        "kappa": kappa**2 + (1 - lm - gam) * kappa - lm,
        "g2": g1 * (gam * g1 + 1) / S + sp.diff(g1, lm),
        "df": df - (1 - lm * g1),
        "v2": v2 + sp.diff(df, lm),
        "v3": (1 + (lm + gam + 1) / S) / (2 * (1 + kappa) * S**2) + sp.diff(v2, lm) / 2,
        "r2": ((gam - 1) ** 2 + 2 * lm * (gam + 1)) / ((1 + kappa) * S * (S + lm)) - (df - lm * v2),
    }
    out["mp_resolvent"] = all(sp.simplify(e) == 0 for e in traces.values())

    a, b, c = sp.symbols("a b c", positive=True)
    g = sp.Function("g")(lm)
    gp, gpp = sp.diff(g, lm), sp.diff(g, lm, 2)
    err = a * lm**2 * (-gp) + b * (g + lm * gp) + c * (1 - 2 * lm * g - lm**2 * gp)
    claimed = -(2 * gp + lm * gpp) * ((a + c) * lm - b) - 2 * c * (g + lm * gp)
    factor = sp.simplify(sp.expand(sp.diff(err, lm) - claimed)) == 0
    clean = sp.solve(sp.Eq(claimed.subs(c, 0), 0), lm)
    out["ridge_stationarity"] = bool(factor and any(sp.simplify(r - b / a) == 0 for r in clean))
    return {k: bool(v) for k, v in out.items()}


def numeric_gap() -> float:
    """Largest relative gap between :mod:`theory.deep_linear` and these expressions at sample points."""
    import sympy as sp

    from .. import deep_linear as th  # the face (this module is not in it: no circle)

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
    gam, lm = sp.symbols("gamma lambda", positive=True)
    b0 = 1 - gam + lm
    g1 = sp.lambdify((lm, gam), (-b0 + sp.sqrt(b0**2 + 4 * gam * lm)) / (2 * gam * lm), "numpy")  # textbook root
    for lv, gv in ((0.3, 0.5), (1.0, 2.0), (5.0, 0.2)):
        gaps.append(abs(g1(lv, gv) - th.mp_resolvent(lv, gv).g1) / g1(lv, gv))
    # n = 0: the optimum is b/a = sigma^2 d / (T |w*|^2)
    gaps.append(abs(th.model_collapse_optimal_ridge(0, 50, 100, 1.0, 100, 0.5, w_norm_sq=2.0) - 0.25) / 0.25)
    return float(max(gaps))
