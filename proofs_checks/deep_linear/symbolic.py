"""The deep-linear identities proved in sympy (Saxe's mode ODE, the scalar network's Hessian, SAM's edge, the
resolvent).
"""

from __future__ import annotations

from ..framework.registry import Context, Evidence, claim, symbolic_evidence
from .common import AGARWALA, DOHMATOB, KREISLER, SAXE

__all__ = ["symbolic"]


@claim(id="deep_linear.symbolic", kind="symbolic", backends="none",
       formula=r"\tau \dot u = 2u(s - u),\qquad \eta\,\ell\,(1 + \rho\,\ell) = 2",
       source=f"{SAXE}, Eq. 6; {KREISLER}, Lemma 3.2; {AGARWALA}, Sec. 3; Marchenko & Pastur 1967 (resolvent); {DOHMATOB}, Sec. 4",
       statement="sympy proves that Saxe's u(t) solves tau u' = 2u(s - u), that y^2 sum 1/w_i^2 is the top Hessian "
                 "eigenvalue at a minimum of a scalar network, that the SAM edge solves eta l (1 + rho l) = 2, and the "
                 "Marchenko-Pastur resolvent and ridge-stationarity identities behind the adaptive ridge.")
def symbolic(ctx: Context) -> Evidence:
    from solvable.theory.deep_linear import symbolic as sym

    return symbolic_evidence(sym.verify(), sym.numeric_gap(), "theory.deep_linear")
