"""The attention identities proved in sympy."""

from __future__ import annotations

from ..framework.registry import Context, Evidence, claim, symbolic_evidence
from .common import MHM, ZFB

__all__ = ["symbolic"]


@claim(id="lsa.symbolic", kind="symbolic", backends="none",
       formula=r"E[\hat\Lambda\Omega\hat\Lambda] = (1 + \tfrac1N)\Lambda\Omega\Lambda + "
               r"\tfrac1N\operatorname{tr}(\Omega\Lambda)\Lambda;\quad \nabla_A L(\Gamma^{-1}) = 0",
       source=f"{ZFB}, Lemmas 5.1-5.2 and Thm 4.1 (reduced loss, its stationary point, the conserved balance); "
              f"{MHM}, Thm 1 (the noisy one-step coefficient)",
       statement="sympy proves Isserlis' fourth moment and the resulting E[Lambda_hat Omega Lambda_hat], the reduced "
                 "loss, that its gradient vanishes at u U11^T = Gamma^-1 (general symmetric Lambda, noise s), the "
                 "conservation of u^2 - ||U11||_F^2, the one-step coefficient N/(N + d + 1 + s^2) and the minimal loss.")
def symbolic(ctx: Context) -> Evidence:
    from solvable.theory.lsa import symbolic as sym

    return symbolic_evidence(sym.verify(), sym.numeric_gap(), "theory.lsa.min_loss and minimiser")
