r"""Symbolic derivations for matrix sensing (sympy).

* ``grad_symmetric``: for :math:`f = s\sum_i(\langle A_i, XX^\top\rangle - y_i)^2` with *general*
  (not symmetric) :math:`A_i`, :math:`\nabla_X f = (G + G^\top)X`, :math:`G = 2s\sum_i r_i A_i`
  (the classic trap: :math:`2GX` holds only for symmetric :math:`A_i`);
* ``grad_asymmetric``: for :math:`M = FG^\top`, :math:`\nabla_F = G_M G`, :math:`\nabla_G = G_M^\top F`;
* ``grad_deep``: for :math:`M = W_3W_2W_1`, :math:`\nabla_{W_j} = (W_3\cdots W_{j+1})^\top G_M (W_{j-1}\cdots W_1)^\top`;
* ``grad_l1``: away from kinks, :math:`\nabla_X \frac{1}{\sqrt m}\sum_i|r_i| = (G + G^\top)X` with
  :math:`G = \frac{1}{\sqrt m}\sum_i \operatorname{sign}(r_i) A_i`;
* ``mode_ode``: an aligned mode :math:`X = x\,u` of the population flow has energy :math:`e = x^2`
  with :math:`\dot e = -8s(e - \sigma)e`;
* ``mode_solution``: :func:`theory.matrix_sensing.mode_energy` solves it with :math:`e(0) = e_0`;
* ``learning_time``: :func:`theory.matrix_sensing.learning_time` is where the solution crosses
  ``level`` :math:`\cdot\sigma`;
* ``tail``: :math:`z = 1/(8st + 1/z_0)` solves :math:`\dot z = -8sz^2`
  (:func:`theory.matrix_sensing.overparam_tail`).

Sizes are small (2 x 2 factors, two measurements) but every entry is a free symbol.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mode_energy_numeric", "numeric_gap", "verify"]


def _matrix(sp, name: str, rows: int, cols: int):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))


def _logistic():
    import sympy as sp

    t, sigma, e0, s = sp.symbols("t sigma e0 s", positive=True)
    return (t, sigma, e0, s), sigma / (1 + (sigma / e0 - 1) * sp.exp(-8 * s * sigma * t))


def mode_energy_numeric():
    """The symbolic mode energy as a NumPy function ``(t, sigma, e0, s) -> e``."""
    import sympy as sp

    args, e = _logistic()
    return sp.lambdify(args, e, "numpy")


def _grad(f, X) -> "object":
    import sympy as sp

    return sp.Matrix(X.shape[0], X.shape[1], lambda i, j: sp.diff(f, X[i, j]))


def _zero(sp, M) -> bool:
    return all(sp.expand(v) == 0 for v in M)


def verify() -> dict[str, bool]:
    """Prove each identity of the module docstring; return name -> proved."""
    import sympy as sp

    out: dict[str, bool] = {}
    s = sp.Symbol("s", positive=True)
    A = [_matrix(sp, f"A{i}", 2, 2) for i in range(2)]
    y = sp.symbols("y0:2", real=True)

    def measure(M):
        return [sum(A[i][a, b] * M[a, b] for a in range(2) for b in range(2)) - y[i] for i in range(2)]

    X = _matrix(sp, "X", 2, 2)
    r = measure(X * X.T)
    f = s * sum(ri**2 for ri in r)
    G = 2 * s * (r[0] * A[0] + r[1] * A[1])
    out["grad_symmetric"] = _zero(sp, _grad(f, X) - (G + G.T) * X)

    F, Gf = _matrix(sp, "F", 2, 2), _matrix(sp, "G", 2, 2)
    r = measure(F * Gf.T)
    f = s * sum(ri**2 for ri in r)
    GM = 2 * s * (r[0] * A[0] + r[1] * A[1])
    out["grad_asymmetric"] = _zero(sp, _grad(f, F) - GM * Gf) and _zero(sp, _grad(f, Gf) - GM.T * F)

    W = [_matrix(sp, f"W{j}", 2, 2) for j in range(3)]
    r = measure(W[2] * W[1] * W[0])
    f = s * sum(ri**2 for ri in r)
    GM = 2 * s * (r[0] * A[0] + r[1] * A[1])
    eye = sp.eye(2)
    pre = [eye, W[0], W[1] * W[0]]
    suf = [W[2] * W[1], W[2], eye]
    out["grad_deep"] = all(_zero(sp, _grad(f, W[j]) - suf[j].T * GM * pre[j].T) for j in range(3))

    # l1: on a region where every residual has a fixed sign (signs c_i = +-1), |r_i| = c_i r_i.
    c = (1, -1)
    r = measure(X * X.T)
    m = sp.Integer(2)
    f = sum(ci * ri for ci, ri in zip(c, r)) / sp.sqrt(m)
    G = (c[0] * A[0] + c[1] * A[1]) / sp.sqrt(m)
    out["grad_l1"] = _zero(sp, _grad(f, X) - (G + G.T) * X)

    # the aligned mode: X = x u with |u| = 1, population loss s ||x^2 u u^T - sigma u u^T||^2 = s (x^2 - sigma)^2
    x, sigma = sp.symbols("x sigma", positive=True)
    xdot = -sp.diff(s * (x**2 - sigma) ** 2, x)
    e = sp.Symbol("e", positive=True)
    out["mode_ode"] = sp.simplify((2 * x * xdot).subs(x, sp.sqrt(e)) + 8 * s * (e - sigma) * e) == 0

    (t, sig, e0, s2), sol = _logistic()
    ode = sp.diff(sol, t) + 8 * s2 * (sol - sig) * sol
    out["mode_solution"] = sp.simplify(ode) == 0 and sp.simplify(sol.subs(t, 0) - e0) == 0

    level = sp.Symbol("level", positive=True)
    t_level = sp.log((sig / e0 - 1) / (1 / level - 1)) / (8 * s2 * sig)
    out["learning_time"] = sp.simplify(sol.subs(t, t_level) - level * sig) == 0

    z0 = sp.Symbol("z0", positive=True)
    z = 1 / (8 * s2 * t + 1 / z0)
    out["tail"] = sp.simplify(sp.diff(z, t) + 8 * s2 * z**2) == 0 and sp.simplify(z.subs(t, 0) - z0) == 0
    return out


def numeric_gap() -> float:
    """Largest relative gap between :func:`theory.matrix_sensing.mode_energy` and the symbolic solution."""
    from .closed_forms import mode_energy

    f = mode_energy_numeric()
    t = np.linspace(0, 40, 201)
    gaps = []
    for sigma, e0, s in ((1.0, 1e-6, 0.5), (0.125, 1e-10, 0.25), (3.0, 0.5, 1.0)):
        ref = f(t, sigma, e0, s)
        gaps.append(np.max(np.abs(mode_energy(sigma, e0, t, s) - ref) / np.abs(ref)))
    return float(max(gaps))
