"""The reduced coordinates of matrix sensing against the full factorisation."""

from __future__ import annotations

import numpy as np

from solvable.sims import matrix_sensing as sim

from ..framework import power
from ..framework.registry import Context, Evidence, claim
from ..framework.space import Param, Space
from .common import JIN

__all__ = ["reduced_equals_full"]


@claim(id="matrix_sensing.reduced_equals_full", kind="simulation",
       precision=(1e-10, "both flows at rtol 1e-10"),
       formula=r"X = U_k\operatorname{diag}(x),\ \dot x = -4c(x^2 - \sigma^*)x;\quad "
               r"\dot p = -2c(pq - \sigma^*)q,\ \dot q = -2c(pq - \sigma^*)p;\quad "
               r"\dot\sigma = -2cN\sigma^{2-2/N}(\sigma - \sigma^*)",
       source=f"{JIN}, Sec. 3 (the commuting case); the per-factorisation mode equations derived in "
              "sims/matrix_sensing/reduced.py",
       statement="On the population operator from the aligned start the factors stay diagonal in M*'s singular "
                 "bases, so the per-mode ODEs are the full flow: for the symmetric, asymmetric and deep (N = 3) "
                 "factorisations with k < r, k = r and k > r, the singular values and M agree at every recorded time.",
       space=Space((Param("factorisation", 0, 2, integer=True, doc="0 symmetric, 1 asymmetric, 2 deep (N = 3)"),
                    Param("k", 1, 7, integer=True, doc="width of the factors (the target has rank 3)"),
                    Param("alpha", 1e-4, 0.5, log=True, doc="initial scale"),
                    Param("kappa", 1.0, 20.0, log=True, doc="condition number of the target")),
                   # found by the slow step's search: the aligned start has at most min(n1, n2) columns
                   constraints=(("k <= min(n1, n2): 8 for the symmetric 8 x 8 target, 6 for the 8 x 6 ones",
                                 lambda p: p["k"] <= (8 if p["factorisation"] == 0 else 6)),),
                   key="alpha"))
def reduced_equals_full(ctx: Context) -> Evidence:
    rtol = 1e-10
    t_max = 100.0 if ctx.quick else 400.0
    t_eval = np.linspace(0, t_max, 41)[1:]
    alphas = np.array([1e-3, 0.1])
    worst, rows, parts = 0.0, [], []
    kinds, widths, kappa = ("symmetric", "asymmetric", "deep"), (2, 3, 5), 3.0
    if ctx.point:
        kinds = (("symmetric", "asymmetric", "deep")[int(ctx.param("factorisation", 0))],)
        widths, alphas = (int(ctx.param("k", 3)),), np.array([float(ctx.param("alpha", 0.1))])
        kappa = float(ctx.param("kappa", 3.0))
    for factorisation in kinds:
        sym = factorisation == "symmetric"
        problem = sim.Problem.random(8, 8 if sym else 6, rank=3, symmetric=sym, operator="population", kappa=kappa,
                                     seed=ctx.seed)
        for k in widths:
            kw = dict(k=k, factorisation=factorisation, init="aligned", t_max=t_max, t_eval=t_eval, rtol=rtol,
                      loss_tol=0.0, record_M=True, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
            red = sim.simulate(problem, alphas, **kw)
            full = sim.simulate(problem, alphas, coordinates="full", **kw)
            steps = np.maximum(red.stop_step, full.stop_step)
            scale = max(float(np.abs(problem.M_star).max()), 1.0)
            # relative error rtol per step on the factors gives 2 rtol on M (a product of 2 or N factors: N rtol),
            # accumulated linearly over the steps
            budget = (3 if factorisation == "deep" else 2) * steps * rtol * scale
            err = np.max(np.abs(red.observables["M"] - full.observables["M"]), axis=(1, 2, 3))
            worst = max(worst, float(np.max(err / budget)))
            parts.append(power.absolute(full.observables["M"], red.observables["M"], budget[:, None, None, None]))
            rows.append({"factorisation": factorisation, "k": k, "max_M_difference": float(err.max()),
                         "budget": float(budget.max()), "status": sorted(set(red.status) | set(full.status))})
    statuses = {s for r in rows for s in r["status"]}
    score = power.worst(*parts)
    return Evidence(
        score=score, false_alarm=0.0,
        predicted=0.0, observed=float(f"{max(r['max_M_difference'] for r in rows):.3g}"),
        quantity="max |M_reduced(t) - M_full(t)| over factorisations, k, alphas and recorded times",
        error=score(1.0), tolerance=1.0,
        error_measure="worst ratio of max |M_reduced - M_full| to its budget, over factorisations, k in {2, 3, 5} "
                      "(rank 3), alpha in {1e-3, 0.1} and recorded times",
        tolerance_reason="each flow controls the relative error of the factors at rtol = 1e-10 per step; M is a "
                         "product of 2 (N = 3) factors, so its error is 2 (3) rtol max|M| per step, accumulated "
                         "linearly over the larger step count",
        conditions={"every run reached t_max": statuses == {"out_of_time"}},
        details={"rows": rows, "alpha": alphas},
    )
