"""The matrix-sensing gradients proved in sympy."""

from __future__ import annotations

from ..framework.registry import Context, Evidence, claim, symbolic_evidence
from .common import JIN, XU

__all__ = ["gradients_symbolic"]


@claim(id="matrix_sensing.gradients_symbolic", kind="symbolic", backends="none",
       formula=r"\nabla_X f = (G + G^\top)X,\ \ G = 2s\sum_i r_iA_i;\qquad \dot e = -8s(e - \sigma)e",
       source=f"{XU}, Eq. (1) (the factorised loss whose gradients sims.matrix_sensing writes by hand); the "
              f"commuting mode equation of theory.matrix_sensing ({JIN}, Sec. 3)",
       statement="sympy proves the symmetric, asymmetric, deep and l1 factorised gradients for general (non-symmetric) "
                 "A_i, the mode equation of the aligned population flow, its logistic solution, the learning time "
                 "and the 1/t tail.")
def gradients_symbolic(ctx: Context) -> Evidence:
    from solvable.theory.matrix_sensing import symbolic as sym

    return symbolic_evidence(sym.verify(), sym.numeric_gap(), "theory.matrix_sensing.mode_energy")
