r"""Symbolic derivations for diagonal linear networks (sympy).

The potential of Woodworth et al. 2020 (Theorem 1),
:math:`q(z) = 2 - \sqrt{4 + z^2} + z\,\operatorname{arcsinh}(z/2)`, and the facts
the implicit-bias prediction rests on:

* ``q_prime``: :math:`q'(z) = \operatorname{arcsinh}(z/2)`;
* ``q_convex``: :math:`q''(z) = 1/\sqrt{4 + z^2} > 0` for real :math:`z`;
* ``q_min_at_zero``: :math:`q(0) = q'(0) = 0`, so 0 is the minimiser;
* ``stationarity``: :math:`\partial_w[\alpha^2 q(w/\alpha^2)] = s` solves to
  :math:`w = 2\alpha^2\sinh(s)`; with :math:`s = (X^\top\nu)_i` this is the
  Lagrangian's stationarity condition and the form of the flow's iterates;
* ``kernel_series``: :math:`q(z) = z^2/4 - z^4/192 + z^6/2560 + O(z^8)`, the
  expansion behind :func:`theory.diagonal.kernel_correction`;
* ``conjugate``: the Legendre transform is
  :math:`\sup_w\, ws - \alpha^2 q(w/\alpha^2) = 2\alpha^2(\cosh s - 1)`, the
  dual objective used by :func:`theory.diagonal.implicit_bias`.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["q_expr", "verify", "q_numeric"]


def q_expr():
    """``(z, q(z))`` as sympy objects."""
    import sympy as sp

    z = sp.Symbol("z", real=True)
    return z, 2 - sp.sqrt(4 + z**2) + z * sp.asinh(z / 2)


def q_numeric() -> Callable[[np.ndarray], np.ndarray]:
    """The symbolic q compiled to a NumPy function (for cross-checking the numerical code)."""
    import sympy as sp

    z, q = q_expr()
    return sp.lambdify(z, q, "numpy")


def verify() -> dict[str, bool]:
    """Prove each identity of the module docstring; return name -> proved."""
    import sympy as sp

    z, q = q_expr()
    w, s = sp.symbols("w s", real=True)
    a = sp.Symbol("alpha", positive=True)
    out: dict[str, bool] = {}
    dq = sp.diff(q, z)
    out["q_prime"] = sp.simplify(dq - sp.asinh(z / 2)) == 0
    d2q = sp.diff(q, z, 2)
    out["q_convex"] = bool(sp.simplify(d2q - 1 / sp.sqrt(z**2 + 4)) == 0 and (1 / sp.sqrt(z**2 + 4)).is_positive)
    out["q_min_at_zero"] = bool(q.subs(z, 0) == 0 and dq.subs(z, 0) == 0)
    series = sp.series(q, z, 0, 8).removeO()
    out["kernel_series"] = sp.simplify(series - (z**2 / 4 - z**4 / 192 + z**6 / 2560)) == 0
    Q = a**2 * q.subs(z, w / a**2)
    sols = sp.solve(sp.Eq(sp.diff(Q, w), s), w)
    out["stationarity"] = len(sols) == 1 and sp.simplify(sols[0] - 2 * a**2 * sp.sinh(s)) == 0
    # asinh(sinh(s)) = s on the reals: sinh is injective and sinh(asinh(x)) = x (proved here too);
    # sympy does not apply it on its own.
    x = sp.Symbol("x", real=True)
    out["asinh_inverts_sinh"] = sp.simplify(sp.sinh(sp.asinh(x)) - x) == 0
    conj = (w * s - Q).subs(w, 2 * a**2 * sp.sinh(s)).subs(sp.asinh(sp.sinh(s)), s)
    out["cosh_root"] = bool(sp.simplify(4 * sp.sinh(s) ** 2 + 4 - (2 * sp.cosh(s)) ** 2) == 0 and sp.cosh(s).is_positive)
    conj = conj.subs(sp.sqrt(4 * sp.sinh(s) ** 2 + 4), 2 * sp.cosh(s))  # justified by cosh_root
    out["conjugate"] = sp.simplify(conj - 2 * a**2 * (sp.cosh(s) - 1)) == 0
    return {k: bool(v) for k, v in out.items()}
