"""The optimal step of the one-step predictor with label noise."""

from __future__ import annotations

import numpy as np

from solvable.sims import lsa as sim
from solvable.theory import lsa as th

from ..framework import power
from ..framework.registry import Context, Evidence, claim, measurement
from ..framework.space import Param, Space
from .common import FLOW_TOL, MHM, _flow_to_minimiser

__all__ = ["noise_flows", "optimal_step_noise"]


@measurement
def noise_flows(ctx: Context) -> list:
    """Population flows: isotropic covariates with label noise s, and w ~ N(0, Sigma^-1) with Sigma non-isotropic."""
    d, N = 3, 10
    cases = [(f"isotropic, s = {s:g}", sim.Problem(Lambda=np.eye(d), N=N, noise=s)) for s in (0.0, 0.5, 1.0)]
    if ctx.point:  # one isotropic case of the claim's space
        d, N, s = int(ctx.param("d", d)), int(ctx.param("N", N)), float(ctx.param("s", 0.5))
        return [(f"isotropic d = {d}, N = {N}, s = {s:g}", p, _flow_to_minimiser(p, ctx))
                for p in [sim.Problem(Lambda=np.eye(d), N=N, noise=s)]]
    if not ctx.quick:
        cases += [("isotropic d = 5, N = 4, s = 2", sim.Problem(Lambda=np.eye(5), N=4, noise=2.0))]
    Sig = sim.rotated_covariance([2.0, 1.0, 0.5], ctx.seed)
    cases += [("Sigma rotated (2, 1, 0.5), w ~ N(0, Sigma^-1), s = 0.5",
               sim.Problem(Lambda=Sig, N=N, noise=0.5, task="inverse"))]
    return [(name, p, _flow_to_minimiser(p, ctx)) for name, p in cases]


@claim(id="lsa.optimal_step_noise", kind="simulation", precision=(1e-7, "the flow limit"),
       formula=r"A^* = \frac{N}{N + d + 1 + s^2}\,I\ \ (x \sim N(0, I));\qquad "
               r"A^* = \frac{N}{N + d + 1 + s^2}\,\Sigma^{-1}\ \ (x \sim N(0,\Sigma),\ w \sim N(0,\Sigma^{-1}))",
       source=f"{MHM}, Thm 1 (isotropic, noisy labels) and Thm 2 (preconditioned); coefficient derived in "
              f"theory.lsa.one_step_coefficient",
       statement="With label noise of variance s^2 the trained LSA is one GD step of size N/(N + d + 1 + s^2); with "
                 "x ~ N(0, Sigma) and w ~ N(0, Sigma^-1) it is one step preconditioned by Sigma^-1.",
       space=Space((Param("d", 2, 5, integer=True, doc="dimension"), Param("N", 2, 100, integer=True, doc="prompt length"),
                    Param("s", 0.0, 3.0, doc="label-noise standard deviation")), key="s"))
def optimal_step_noise(ctx: Context) -> Evidence:
    ratios, conditions, rows, parts = [], {}, {}, []
    for name, p, res in noise_flows(ctx):
        if p.task == "isotropic":
            A_pred = th.one_step_coefficient(p.d, p.N, p.noise) * np.eye(p.d)
        else:
            A_pred = th.preconditioned_step(p.Lambda, p.N, p.noise)
        err = float(np.linalg.norm(res["A"] - A_pred))
        scale = float(np.linalg.norm(A_pred))
        ratios.append(err / scale / FLOW_TOL)
        parts.append(power.relative(res["A"], A_pred, FLOW_TOL))
        conditions[f"{name}: within the strong-convexity certificate ||grad_A L|| / mu"] = (
            err <= res["bound"] + 1e-12 * scale)
        # the coefficient is tr(Sigma A) / d in both cases: A* = c I, or A* = c Sigma^-1 with Sigma = Lambda
        weight = np.eye(p.d) if p.task == "isotropic" else p.Lambda
        rows[name] = {"predicted_coefficient": float(np.trace(weight @ A_pred) / p.d),
                      "flow_coefficient": float(np.trace(weight @ res["A"]) / p.d), "relative_error": err / scale}
    return Evidence(
        predicted=[float(f"{r['predicted_coefficient']:.9g}") for r in rows.values()],
        observed=[float(f"{r['flow_coefficient']:.9g}") for r in rows.values()],
        quantity="the step's coefficient c (A = c I, or c Sigma^-1 preconditioned: tr(Sigma A) / d), per case",
        error=float(max(ratios)), tolerance=1.0, score=power.worst(*parts), false_alarm=0.0,
        error_measure="worst relative distance ||A_flow - A*||_F / ||A*||_F over the cases, in units of 1e-7",
        tolerance_reason="the flow stops once the gradient is below 1e-9; by strong convexity in A the distance left "
                         "is <= ||grad_A L|| / (lambda_min(Lambda) lambda_min(C)), about 1e-8 relative (each case's "
                         "certificate is a condition); 1e-7 leaves room for the integrator's rtol = 1e-10",
        conditions=conditions, details={"rows": rows},
    )
