"""The reduced (mirror-descent) coordinates of the diagonal flow against the full simulation."""

from __future__ import annotations

import numpy as np

from solvable.sims import diagonal as sim
from solvable.sims.engine.recording import log_times

from ..framework import power
from ..framework.registry import Context, Evidence, claim
from ..framework.space import Param, Space
from .common import WOODWORTH, _travel_w

__all__ = ["reduced_equals_full"]


def _reduced_score(reduced: np.ndarray, full: np.ndarray, budget: np.ndarray) -> power.Score:
    """``f -> max |f w_reduced - w_full| / budget`` over the recorded entries (the reduced flow is the prediction)."""
    return lambda f: float(np.nanmax(np.abs(f * reduced - full) / budget))


def _draw_reduced(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 1, 1)
    t = np.asarray(d["times"])
    for a, err in zip(d["alpha"], d["ratio_over_time"]):
        ax.loglog(t, np.maximum(err, 1e-6), label=f"alpha = {a:.2g}")
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="error budget")
    ax.set_xlabel("time t")
    ax.set_ylabel("max |w_reduced - w_full| / budget (first problem)")
    ax.legend(fontsize="small")


@claim(id="diagonal.reduced_equals_full", kind="simulation", figure=_draw_reduced,
       precision=(1e-10, "both integrators at rtol 1e-10"),
       formula=r"u = u_0 e^{-2X^\top\mu},\; v = v_0 e^{2X^\top\mu},\; \dot\mu = (Xw(\mu) - y)/n,\;"
               r"w = -2\alpha^2\sinh(4X^\top\mu)\;(\text{shaped: } -(u_0^2 + v_0^2)\sinh(2X^\top\mu))",
       source=f"{WOODWORTH}, Sec. 4 (the multiplicative form of the flow); the shaped form derived here "
              "(sims/diagonal/reduced.py)",
       statement="The n-dimensional mu-flow is the same gradient flow as the 2d (or 4d) factors: over a batch of "
                 "problems, initial scales and both network shapes, the predictors agree at every recorded time.",
       space=Space((Param("alpha", 0.01, 3.0, log=True, doc="initial scale"),
                    Param("shape", 0.0, 0.9, doc="Azulay's s = (u0^2 - v0^2)/(u0^2 + v0^2) of the start"),
                    Param("n", 4, 40, integer=True, doc="samples"),
                    Param("d", 8, 120, integer=True, doc="dimension (a 3-sparse teacher)")),
                   constraints=(("n < d (over-parameterised: the flow interpolates)", lambda p: p["n"] < p["d"]),),
                   key="alpha"))
def reduced_equals_full(ctx: Context) -> Evidence:
    rtol = 1e-10
    shapes = (0.0, 0.5)
    if ctx.quick:
        sizes, alphas, seeds, t_max = (30, 60, 3), np.array([0.05, 0.5, 3.0]), range(2), 2e4
    else:
        sizes, alphas, seeds, t_max = (50, 200, 5), np.geomspace(1e-2, 3.0, 5), range(3), 1e5
    if ctx.point:  # one problem, one scale, one shape: a point of the space
        sizes = (int(ctx.param("n", sizes[0])), int(ctx.param("d", sizes[1])), 3)
        alphas = np.array([float(ctx.param("alpha", 0.5))])
        shapes, seeds = (float(ctx.param("shape", 0.0)),), range(1)
    t_eval = log_times(t_max, 60)
    worst, rows, ratio_first, steps_red, steps_full, statuses, parts = 0.0, [], None, [], [], [], []
    for k in seeds:
        problem = sim.Problem.random(*sizes, seed=ctx.seed + k)
        for shape in shapes:
            kw = dict(t_max=t_max, t_eval=t_eval, rtol=rtol, shape=shape, record_w=True, backend=ctx.backend,
                      dtype=ctx.dtype, device=ctx.device)
            red = sim.simulate(problem, alphas, **kw)
            full = sim.simulate(problem, alphas, coordinates="full", **kw)
            statuses += list(red.status) + list(full.status)
            steps = np.maximum(red.stop_step, full.stop_step)
            steps_red.append(red.stop_step.tolist())
            steps_full.append(full.stop_step.tolist())
            K = 2 * alphas**2 / np.sqrt(1 - shape**2)  # u0^2 + v0^2 summed over the pairs: the metric at w = 0
            # before either run stopped: the integration budget; from then on both are frozen at their stops,
            # which may differ by the distance each still had to travel (first order, as in _travel)
            live = t_eval[None, :] < np.minimum(red.stop_time, full.stop_time)[:, None]
            wr, wf = red.observables["w"], full.observables["w"]
            integ = 2 * steps[:, None, None] * rtol * (K[:, None, None] + np.abs(wf))
            travel = np.array([_travel_w(problem.X, problem.y, full.final["w"][b], K[b]) for b in range(len(alphas))])
            budget = integ + np.where(live, 0.0, 2 * travel[:, None])[:, :, None]
            ratio = np.nanmax(np.abs(wr - wf) / budget, axis=2)  # (B, T)
            parts.append(_reduced_score(wr, wf, budget))
            worst = max(worst, float(np.nanmax(ratio)))
            rows.append(float(np.nanmax(np.abs(wr - wf))))
            if ratio_first is None:
                ratio_first = ratio
    converged = all(s == "converged" for s in statuses)
    score = power.worst(*parts)
    return Evidence(
        predicted=0.0, observed=round(max(rows), 12),
        quantity="max |w_reduced(t) - w_full(t)| over problems, alphas, shapes and recorded times",
        error=score(1.0), tolerance=1.0, score=score, false_alarm=0.0,
        error_measure="worst ratio of |w_reduced - w_full| to its budget, over coordinates, recorded times, alphas, "
                      "shapes (0 and 0.5) and problems",
        tolerance_reason="both integrators control the relative error of the factors at rtol = 1e-10 per step, so "
                         "|dw| <= 2 steps rtol (u0^2 + v0^2 + |w|) accumulated linearly (the metric of w = u^2 - v^2 "
                         "is u^2 + v^2 <= K + |w|); after the earlier of the two stops each run is frozen where its "
                         "loss crossed the threshold, and may still differ by twice the first-order distance left "
                         "to travel, ||r|| sqrt(max D / lambda_min(X D X^T)), D = sqrt(w^2 + K^2)",
        conditions={"every run in both coordinates converged": converged},
        details={"alpha": alphas, "times": t_eval, "ratio_over_time": ratio_first, "steps_reduced": steps_red,
                 "steps_full": steps_full, "max_abs_difference": rows},
    )
