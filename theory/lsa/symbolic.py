r"""Symbolic derivations for the one-layer LSA (sympy), in d = 2 with every entry a free symbol.

* ``isserlis``: :math:`E[xx^\top\Omega xx^\top] = 2\Lambda\Omega\Lambda + \operatorname{tr}(\Omega\Lambda)\Lambda`
  for :math:`x = L\xi`, :math:`\Lambda = LL^\top`, from the standard normal's fourth moments
  :math:`E\xi_i\xi_j\xi_k\xi_l = \delta_{ij}\delta_{kl} + \delta_{ik}\delta_{jl} + \delta_{il}\delta_{jk}`;
* ``second_moment``: hence :math:`E[\hat\Lambda\Omega\hat\Lambda] = (1 + \frac1N)\Lambda\Omega\Lambda +
  \frac1N\operatorname{tr}(\Omega\Lambda)\Lambda` (:math:`N(N-1)` independent pairs, :math:`N` equal ones);
* ``reduced_loss``: :math:`\frac12E(x_q^\top Ah - w^\top x_q)^2 = \frac12[\operatorname{tr}(A^\top\Lambda AC)
  - 2\operatorname{tr}(\Lambda A\Lambda\Omega) + \operatorname{tr}(\Lambda\Omega)]` given :math:`E[hh^\top] = C`,
  :math:`E[hw^\top] = \Lambda\Omega`, :math:`E[ww^\top] = \Omega` (:func:`theory.lsa.loss`);
* ``stationary_point``: its gradient in :math:`A` vanishes at :math:`A = \Gamma^{-1}` (:math:`\Omega = I`,
  general symmetric :math:`\Lambda`, noise :math:`s`): :math:`uU_{11}^\top = \Gamma^{-1}` (ZFB Thm 4.1);
* ``balance``: along the flow of :math:`L(uU^\top)`, :math:`\frac{d}{dt}(u^2 - \|U\|_F^2) = 0`;
* ``one_step``: with :math:`\Lambda = I` the minimiser is :math:`\frac{N}{N + d + 1 + s^2}I` (Mahankali et al.);
* ``min_loss``: :math:`L(\Gamma^{-1}) = \frac12[\operatorname{tr}\Lambda - \operatorname{tr}(\Lambda^2\Gamma^{-1})]`
  at :math:`s = 0`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["numeric_gap", "verify"]


def _sym(sp, name: str):
    a, b, c = sp.symbols(f"{name}11 {name}12 {name}22", real=True)
    return sp.Matrix([[a, b], [b, c]])


def _zero(sp, M) -> bool:
    return all(sp.simplify(sp.together(sp.expand(v))) == 0 for v in M)


def _fourth(sp, L, Om):
    """E[x x^T Om x x^T] for x = L xi, from the fourth moments of the standard normal."""
    d = L.shape[0]
    out = sp.zeros(d, d)
    for i in range(d):
        for j in range(d):
            # x_i (x^T Om x) x_j = sum_{abcd} L_ia L_jd (L^T Om L)_bc xi_a xi_b xi_c xi_d
            B = L.T * Om * L
            s = 0
            for a in range(d):
                for b in range(d):
                    for c in range(d):
                        for e in range(d):
                            m = (a == b) * (c == e) + (a == c) * (b == e) + (a == e) * (b == c)
                            if m:
                                s += L[i, a] * L[j, e] * B[b, c] * m
            out[i, j] = s
    return out


def _loss(sp, A, Lam, Om, C):
    return sp.Rational(1, 2) * ((A.T * Lam * A * C).trace() - 2 * (Lam * A * Lam * Om).trace() + (Lam * Om).trace())


def verify() -> dict[str, bool]:
    """Prove each identity of the module docstring; return name -> proved."""
    import sympy as sp

    out: dict[str, bool] = {}
    l11, l21, l22 = sp.symbols("l11 l21 l22", real=True)
    L = sp.Matrix([[l11, 0], [l21, l22]])
    Lam = L * L.T
    Om = _sym(sp, "o")
    N, s = sp.symbols("N s", positive=True)
    fourth = _fourth(sp, L, Om)
    out["isserlis"] = _zero(sp, fourth - (2 * Lam * Om * Lam + (Om * Lam).trace() * Lam))
    pairs = (N * (N - 1) * Lam * Om * Lam + N * fourth) / N**2
    C = (1 + 1 / N) * Lam * Om * Lam + (Om * Lam).trace() * Lam / N
    out["second_moment"] = _zero(sp, pairs - C)

    A = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"a{i}{j}", real=True))
    Cs = C + s**2 / N * Lam
    direct = sp.Rational(1, 2) * (Lam * (A * Cs * A.T - A * Lam * Om - Om * Lam * A.T + Om)).trace()
    out["reduced_loss"] = sp.expand(direct - _loss(sp, A, Lam, Om, Cs)) == 0

    G = _sym(sp, "g")  # a general symmetric Lambda for the stationary point
    I2 = sp.eye(2)
    Cg = (1 + 1 / N) * G * G + (G.trace() + s**2) / N * G
    f = _loss(sp, A, G, I2, Cg)
    Gamma = (1 + 1 / N) * G + (G.trace() + s**2) / N * I2
    grad = sp.Matrix(2, 2, lambda i, j: sp.diff(f, A[i, j]))
    out["stationary_point"] = _zero(sp, grad.subs(dict(zip(list(A), list(Gamma.inv())))))

    u = sp.Symbol("u", real=True)
    U = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"U{i}{j}", real=True))
    fr = f.subs(dict(zip(list(A), list(u * U.T))))
    du = -sp.diff(fr, u)
    dU = sp.Matrix(2, 2, lambda i, j: -sp.diff(fr, U[i, j]))
    out["balance"] = sp.expand(2 * u * du - 2 * sum(U[k] * dU[k] for k in range(4))) == 0

    Ci = (1 + 1 / N) * I2 + (2 + s**2) / N * I2
    fi = _loss(sp, A, I2, I2, Ci)
    gi = sp.Matrix(2, 2, lambda i, j: sp.diff(fi, A[i, j]))
    out["one_step"] = _zero(sp, gi.subs(dict(zip(list(A), list(N / (N + 3 + s**2) * I2)))))

    Cz = Cg.subs(s, 0)
    Gz = Gamma.subs(s, 0)
    at_min = _loss(sp, Gz.inv(), G, I2, Cz)
    out["min_loss"] = sp.simplify(at_min - sp.Rational(1, 2) * (G.trace() - (G * G * Gz.inv()).trace())) == 0
    return out


def numeric_gap() -> float:
    """Largest relative gap between :func:`theory.lsa.min_loss` / :func:`theory.lsa.minimiser` and the
    symbolic expressions at sample points."""
    import sympy as sp

    from . import closed_forms as lsa

    G = _sym(sp, "g")
    N = sp.Symbol("N", positive=True)
    Gz = (1 + 1 / N) * G + G.trace() / N * sp.eye(2)
    expr = sp.Rational(1, 2) * (G.trace() - (G * G * Gz.inv()).trace())
    f = sp.lambdify((G[0, 0], G[0, 1], G[1, 1], N), expr, "numpy")
    inv = sp.lambdify((G[0, 0], G[0, 1], G[1, 1], N), Gz.inv(), "numpy")
    gap = 0.0
    for g11, g12, g22, n in ((2.0, 0.3, 1.0, 5), (1.0, -0.2, 0.5, 20), (3.0, 0.0, 0.1, 1)):
        Lam = np.array([[g11, g12], [g12, g22]])
        ref = float(f(g11, g12, g22, n))
        gap = max(gap, abs(lsa.min_loss(Lam, n) - ref) / abs(ref))
        R = np.asarray(inv(g11, g12, g22, n), dtype=float)
        gap = max(gap, float(np.abs(lsa.minimiser(Lam, n) - R).max() / np.abs(R).max()))
    return gap
