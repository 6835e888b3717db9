"""The reduced (collapsed and aligned) coordinates of the UFM against the full simulation."""

from __future__ import annotations

import numpy as np

from solvable.sims import ufm as sim

from ..framework import power
from ..framework.registry import Context, Evidence, claim
from ..framework.space import Param, Space
from .common import RTOL, _point_sizes

__all__ = ["reduced_equals_full"]


@claim(id="ufm.reduced_equals_full", kind="simulation", precision=(RTOL, "both flows at rtol 1e-10"),
       formula=r"h_i(0) = m_{y_i}(0)\ \Rightarrow\ h_i(t) = m_{y_i}(t),\quad \dot m_k = -\Big[\phi'(m_k)\odot"
               r"\tfrac1N W^\top\partial_z\ell(Wm_k + b, e_k) + \lambda_H m_k\Big];\quad"
               r"\dot s_k = -\big[\tfrac{n_k}{N}t_k(s_kt_k - 1) + \lambda_Ws_k\big]",
       source="this library (sims/ufm/reduced.py): the feature gradient depends on a sample only through its "
              "feature and label, so a collapsed start stays collapsed (the within-class collapse of Papyan, Han & "
              "Donoho 2020, kept from the start)",
       statement="From a collapsed start (every feature at its class's vector) gradient flow keeps every class "
                 "collapsed, so one feature per class is the full flow: objectives and features agree at every "
                 "recorded time, for MSE with a bias and cross-entropy, imbalanced classes, and a ReLU or a deep "
                 "head; from the aligned start (classifier rows and class vectors on one orthonormal frame) with "
                 "the squared error two numbers per class, s_k and t_k, are the full flow.",
       space=Space((Param("K", 2, 5, integer=True, doc="classes"),
                    Param("n1", 2, 20, integer=True, doc="size of the largest class"),
                    Param("ratio", 1.0, 8.0, log=True, doc="imbalance: n_k = round(n1 ratio^(-k/(K-1))), >= 1"),
                    Param("lam", 1e-3, 3e-2, log=True, doc="lambda_W = lambda_H")), key="ratio"))
def reduced_equals_full(ctx: Context) -> Evidence:
    cases = [dict(n=(8, 4, 2), d=5, loss="mse", lambda_b=0.0), dict(n=(6, 3, 3), d=4, loss="ce"),
             dict(n=(5, 3, 2), d=6, loss="mse", relu=True, lambda_b=1e-3), dict(n=(6, 2, 2), d=4, loss="mse", depth=3),
             dict(n=(8, 4, 2), d=5, loss="mse", init="aligned")]
    if ctx.point:
        lam = float(ctx.param("lam", 5e-3))
        sizes = _point_sizes(ctx, n1=8, ratio=4.0)
        K = len(sizes)
        cases = [dict(n=sizes, d=K + 2, loss=loss, lambda_W=lam, lambda_H=lam, lambda_b=0.0) for loss in ("mse", "ce")]
        cases.append(dict(n=sizes, d=K + 2, loss="mse", lambda_W=lam, lambda_H=lam, init="aligned"))
    t_max = 200.0 if ctx.quick else 1000.0
    t_eval = np.linspace(0, t_max, 21)[1:]
    alphas = np.array([0.05, 0.5])
    worst, rows, parts = 0.0, [], []
    for case in cases:
        problem = sim.Problem(**{k: v for k, v in case.items() if k != "init"})
        kw = dict(init=case.get("init", "collapsed"), t_max=t_max, t_eval=t_eval, rtol=RTOL, seed=ctx.seed, backend=ctx.backend,
                  dtype=ctx.dtype, device=ctx.device)
        red = sim.simulate(problem, alphas, **kw)
        full = sim.simulate(problem, alphas, coordinates="full", **kw)
        steps = np.maximum(red.stop_step, full.stop_step)
        live = t_eval[None, :] < np.minimum(red.stop_time, full.stop_time)[:, None]
        # relative error control at rtol per step on every parameter, accumulated linearly over the steps
        scale_H = np.max(np.abs(full.final["H"]), axis=(1, 2)) + np.max(np.abs(full.final["W"]), axis=(1, 2))
        budget_H = 4 * steps * RTOL * np.maximum(scale_H, 1e-300)
        diff_H = np.max(np.abs(red.final["H"] - full.final["H"]), axis=(1, 2))
        loss0 = np.nanmax(np.abs(full.observables["loss"]), axis=1)
        budget_loss = 4 * steps[:, None] * RTOL * loss0[:, None]
        diff_loss = np.where(live, np.abs(red.observables["loss"] - full.observables["loss"]), 0.0)
        ratio = max(float(np.max(diff_loss / budget_loss)), float(np.max(diff_H / budget_H)))
        red_loss = np.where(live, red.observables["loss"], 0.0)
        full_loss = np.where(live, full.observables["loss"], 0.0)
        parts += [power.absolute(full_loss, red_loss, budget_loss),
                  power.absolute(full.final["H"], red.final["H"], budget_H[:, None, None])]
        worst = max(worst, ratio)
        rows.append({"case": {k: (list(v) if isinstance(v, tuple) else v) for k, v in case.items()},
                     "reduction": red.meta.get("reduction"), "loss_difference": float(np.max(diff_loss)), "feature_difference": float(np.max(diff_H)),
                     "steps_reduced": red.stop_step.tolist(), "steps_full": full.stop_step.tolist(),
                     "status": sorted(set(red.status) | set(full.status))})
    ok = all(set(r["status"]) <= {"converged", "out_of_time"} for r in rows)
    return Evidence(
        score=power.worst(*parts), false_alarm=0.0,
        predicted=0.0, observed=float(f"{max(r['feature_difference'] for r in rows):.3g}"),
        quantity="max |H_reduced - H_full| at the end, over the cases and scales",
        error=worst, tolerance=1.0,
        error_measure="worst ratio, over cases (MSE with bias, CE, ReLU, depth 3, the aligned MSE modes; imbalanced) "
                      "and scales, of the "
                      "objective difference at every recorded time and the final feature difference to their budgets",
        tolerance_reason="both flows control the relative error at rtol = 1e-10 per step, accumulated linearly over "
                         "the larger step count, on quantities of size loss(0) and max(|H|) + max(|W|) (the feature "
                         "field carries W); a factor 4 for the two integrators and the product W h",
        conditions={"every run ended converged or out of time in both coordinates": ok},
        details={"rows": rows, "alpha": alphas},
    )
