"""Ma & Fattahi 2023: robust recovery by the sub-gradient method."""

from __future__ import annotations

import numpy as np

from solvable.sims import matrix_sensing as sim

from ..framework.registry import Context, Evidence, claim, measurement
from ..framework.space import Param, Space
from .common import MA

__all__ = ["robust_runs", "robust_subgradient"]


@measurement
def robust_runs(ctx: Context) -> dict:
    """20 % gross outliers; l1 sub-gradient (eta_t = 0.3 q^t) vs l2 GD (eta = 0.1), k = r, 2r, n, alpha = 1e-3."""
    n, r, m, q, steps = (12, 2, 500, 0.998, 7500) if ctx.quick else (20, 3, 1000, 0.999, 15000)
    kappa, outliers = float(ctx.param("kappa", 2.0)), float(ctx.param("outliers", 0.2))
    problem = sim.Problem.random(n, n, r, m=m, kappa=kappa, symmetric=True, operator="symmetric", outliers=outliers,
                                 seed=ctx.seed)
    kw = dict(record_sv=False, seed=ctx.seed, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
    out = {"problem": problem, "ks": (r, 2 * r, n), "q": q, "l1": [], "l2": []}
    for k in out["ks"]:
        sub = sim.simulate(problem, 1e-3, "subgradient", k=k, loss="l1", lr=0.3, decay=q, steps=steps,
                           t_eval=[0, steps], **kw)
        gd = sim.simulate(problem, 1e-3, "gd", k=k, lr=0.1, steps=4000, t_eval=[0, 4000], **kw)
        out["l1"].append(float(sub.observables["rel_error"][0, -1]))
        out.setdefault("l1_M", []).append(sub.final["M"][0])
        out["l2"].append(float(gd.observables["rel_error"][0, -1]))
    # Ma & Fattahi's dense Gaussian noise model: a fraction p of the measurements carries Gaussian noise; here
    # half of them, ten times a clean measurement, at k = r
    dense = sim.Problem.random(n, n, r, m=m, kappa=2.0, symmetric=True, operator="symmetric", outliers=0.5,
                               seed=ctx.seed)
    sub = sim.simulate(dense, 1e-3, "subgradient", k=r, loss="l1", lr=0.3, decay=q, steps=steps,
                       t_eval=[0, steps], **kw)
    out["dense"] = float(sub.observables["rel_error"][0, -1])
    return out


@claim(id="matrix_sensing.robust_subgradient", kind="simulation",
       formula=r"\min_X \frac1m\sum_i |\langle A_i, XX^\top\rangle - y_i|,\quad "
               r"X_{t+1} = X_t - \eta_0 q^t g_t:\ X_TX_T^\top \to M^*",
       source=f"{MA}, Thms 1-2 (outlier and dense Gaussian noise, small initialisation, over-estimated rank)",
       statement="With 20 % grossly corrupted measurements, the sub-gradient method on the l1 loss from a small start "
                 "recovers M* whatever the over-estimated rank (k = r, 2r, n), where GD on the l2 loss does not; it "
                 "still recovers M* when half the measurements carry the Gaussian noise (their dense noise model).",
       space=Space((Param("outliers", 0.05, 0.3, doc="fraction of grossly corrupted measurements"),
                    Param("kappa", 1.0, 5.0, doc="condition number of M*")), key="outliers"))
def robust_subgradient(ctx: Context) -> Evidence:
    d = robust_runs(ctx)
    l1, l2 = np.array(d["l1"]), np.array(d["l2"])
    M_star = d["problem"].M_star
    # the headline, M*: the sub-gradient limits' distance to f M*, over the best l2 error
    score = lambda f: max(float(np.linalg.norm(M - f * M_star) / np.linalg.norm(f * M_star))  # noqa: E731
                          for M in d["l1_M"]) / float(l2.min())
    return Evidence(
        score=score, false_alarm=0.0,
        predicted="l1 error << l2 error", observed=[float(f"{x:.3g}") for x in l1],
        quantity="relative error of the sub-gradient method, per k", unit="ratio",
        error=score(1.0), tolerance=1e-2,
        error_measure="worst l1 sub-gradient error over k divided by the best l2 GD error over k",
        tolerance_reason="recovery means at least 100 times closer to M* than the l2 fit, whose error is set by the "
                         "outliers (20 % of the measurements, ten times a clean one): the l2 error is O(1), so this "
                         "asks for l1 errors of order 1e-2 or less",
        conditions={**{f"k = {k}: the l1 error is below 1e-2": bool(e < 1e-2) for k, e in zip(d["ks"], l1)},
                    "half the measurements corrupted (dense noise), k = r: the l1 error is below 1e-2":
                        d["dense"] < 1e-2},
        details={"k": list(d["ks"]), "l1_error": l1, "l2_error": l2, "decay": d["q"], "dense_error": d["dense"]},
        note=(f"k = r reaches {l1[0]:.2g}; for k > r the error stops at a floor set by the step decay, not by alpha "
              f"(measured: halving 1 - q halves it), so 'agnostic to the rank' holds to that floor"),
    )
