"""The UFM identities proved in sympy."""

from __future__ import annotations

from ..framework.registry import Context, Evidence, claim, symbolic_evidence
from .common import DANG, ZHU

__all__ = ["symbolic"]


@claim(id="ufm.symbolic", kind="symbolic", backends="none",
       formula=r"\nabla_z \left[\frac{(\sqrt{n_k} - z)^2}{2N} + \sqrt{\lambda_W\lambda_H}\, z\right] = 0 \text{ at "
               r"} z_k",
       source=f"{DANG}, Theorem 4.1; {ZHU}, Theorem 3.1",
       statement="sympy proves that the closed-form one-layer MSE minimiser is a stationary point of the reduced "
                 "per-class problem and attains the AM-GM bound, and that rho solves the balanced CE scale equation.")
def symbolic(ctx: Context) -> Evidence:
    from solvable.theory.ufm import symbolic as sym

    return symbolic_evidence(sym.verify(), sym.numeric_gap(), "theory.ufm")
