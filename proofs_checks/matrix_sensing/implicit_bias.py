"""Implicit low-rank bias: the nuclear norm for commuting measurements (Gunasekar et al. 2017) and depth (Arora et al.
2019).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from solvable.sims import matrix_sensing as sim
from solvable.theory import matrix_sensing as th

from ..framework import power
from ..framework.registry import Context, Evidence, OutOfReach, claim, measurement
from ..framework.space import Param, Space
from .common import ARORA, GUNASEKAR, RTOL

__all__ = ["commuting_runs", "depth_low_rank", "depth_runs", "nuclear_norm_bias"]


@measurement
def commuting_runs(ctx: Context) -> dict:
    """Diagonal (commuting) measurements A_i = diag(a_i), m = n/2 < n, from X0 = alpha I, by gradient flow."""
    n = int(ctx.param("n", 8 if ctx.quick else 16))
    m = int(ctx.param("m", n // 2))
    rng = np.random.default_rng(ctx.seed)
    a = rng.standard_normal((m, n))
    w_star = np.sort(rng.uniform(0.2, 1.0, n))[::-1]  # distinct: M*'s eigenvectors are the axes
    A = np.stack([np.diag(row) for row in a])
    problem = sim.Problem(M_star=np.diag(w_star), operator="symmetric", A=A, y=a @ w_star, symmetric=True)
    alphas = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    traj = sim.simulate(problem, alphas, k=n, init="aligned", t_max=1e6, rtol=RTOL, record_sv=False, seed=ctx.seed,
                        backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
    limits = [th.commuting_limit(a, problem.y, al) for al in alphas]
    trace_min = th.min_nuclear_norm(A, problem.y, psd=True)
    return {"problem": problem, "a": a, "alphas": alphas, "traj": traj, "limits": limits, "trace_min": trace_min}


def _draw_nuclear(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 1, 1)
    ax.loglog(d["alpha"], d["to_limit"], "o", label="flow vs exact commuting limit")
    ax.loglog(d["alpha"], d["budget"], "-", label="error budget")
    ax.loglog(d["alpha"], d["to_trace_min"], "s-", label="flow vs minimum nuclear norm")
    ax.set_xlabel("alpha")
    ax.set_ylabel("relative distance")
    ax.set_title("commuting measurements: the limit is an entropic trace minimiser", fontsize=8)
    ax.legend(fontsize=7)


@claim(id="matrix_sensing.nuclear_norm_bias", kind="simulation", figure=_draw_nuclear,
       precision=(RTOL, "the flow limits (rtol 1e-10)"),
       formula=r"M_\infty = \arg\min_{\mathcal A(M) = y,\ M\succeq 0} \sum_j w_j\ln\frac{w_j}{\alpha^2} - w_j "
               r"\ \xrightarrow[\alpha\to0]{}\ \arg\min_{\mathcal A(M) = y,\ M \succeq 0} \|M\|_*",
       source=f"{GUNASEKAR}, Sec. 4 (commuting measurements); the finite-alpha limit is derived in "
              f"theory.matrix_sensing.commuting_limit",
       statement="With commuting measurements the small-initialisation flow limit is the minimum nuclear-norm "
                 "solution: exactly an entropy-regularised trace minimiser at each alpha, tending to the minimum "
                 "trace as alpha -> 0.",
       space=Space((Param("n", 3, 16, integer=True, doc="M* is n x n diagonal"),
                    Param("m", 1, 15, integer=True, doc="commuting measurements A_i = diag(a_i)")),
                   constraints=(("m < n (under-determined: the bias picks the solution)", lambda p: p["m"] < p["n"]),),
                   key="m"))
def nuclear_norm_bias(ctx: Context) -> Evidence:
    d = commuting_runs(ctx)
    traj, a, y = d["traj"], d["a"], d["problem"].y
    M = traj.final["M"]
    w = np.diagonal(M, axis1=1, axis2=2)
    off = np.max(np.abs(M - np.stack([np.diag(v) for v in w])), axis=(1, 2))
    pred = np.array([lim.x for lim in d["limits"]])
    to_limit = np.linalg.norm(w - pred, axis=1) / np.linalg.norm(pred, axis=1)
    # Budget: integration (relative error N rtol on x, 2 N rtol on w = x^2) + the distance still to travel at the
    # stop, first order in the residual r: ||r|| sqrt(max w / lambda_min(a diag(w) a^T)) (mirror-flow metric w).
    r = np.einsum("mj,bj->bm", a, w) - y
    lam = np.array([max(np.linalg.eigvalsh((a * wb) @ a.T)[0], 1e-300) for wb in w])
    travel = np.linalg.norm(r, axis=1) * np.sqrt(w.max(axis=1) / lam)
    budget = (2 * traj.stop_step * RTOL * np.linalg.norm(w, axis=1) + travel) / np.linalg.norm(pred, axis=1) + 1e-12
    trace_min = np.diag(d["trace_min"].x)
    to_trace = np.linalg.norm(w - trace_min, axis=1) / np.linalg.norm(trace_min)
    score = power.relative(w, pred, budget, axis=1)
    return Evidence(
        predicted=[float(f"{lim.x.sum():.8g}") for lim in d["limits"]],
        observed=[float(f"{x:.8g}") for x in w.sum(axis=1)],
        quantity="trace of the limit, per alpha",
        error=score(1.0), tolerance=1.0, score=score, false_alarm=0.0,
        error_measure="worst ratio, over alpha, of ||diag(M_flow) - w_alpha|| / ||w_alpha|| to that run's budget "
                      "(w_alpha: the entropic minimiser; predicted/observed show the traces)",
        tolerance_reason="a-posteriori budget per run: integration (local rtol 1e-10 on x, doubled for w = x^2, "
                         "accumulating over the steps) + the first-order distance still to travel at the stopping "
                         "residual in the mirror-flow metric diag(w)",
        conditions={"every run converged": bool(np.all(traj.status == "converged")),
                    "the flow stays diagonal (off-diagonal entries < 1e-12)": bool(np.all(off < 1e-12)),
                    # below the runs' own budgets the distance is not resolved: the search found it flat at 1.7e-7
                    # (budget 2e-6) between alpha = 1e-3 and 1e-4 (n = 15, m = 11)
                    "the distance to the minimum-trace solution shrinks as alpha decreases (to within the runs' "
                    "budgets)": bool(np.all(np.diff(to_trace) < budget[1:] + budget[:-1])),
                    "the minimum-trace solution is certified (KKT residual < 1e-6)":
                        d["trace_min"].kkt_residual < 1e-6},
        details={"alpha": d["alphas"], "to_limit": to_limit, "budget": budget, "to_trace_min": to_trace,
                 "off_diagonal": off, "kkt_trace_min": d["trace_min"].residuals},
    )


@measurement
def depth_runs(ctx: Context) -> dict:
    """Arora et al.'s completion setting: depth 2, 3, 4 by GD from a small start, and the nuclear-norm solution.

    Full: 100 x 100, rank 5, 2000 observed entries (about twice the 975 degrees of freedom); quick: 20 x 20,
    rank 2, 160 entries (the same ratio). Arora et al. train with an adaptive step; we use plain GD with a
    constant step (0.5 for depth 2, 0.3 for depths 3 and 4) from end-to-end scale alpha = 1e-4 for a fixed
    budget (full: 10 000 steps, quick: 15 000) and report the final point.
    """
    n, r, m, steps = (20, 2, 160, 15_000) if ctx.quick else (100, 5, 2000, 10_000)
    if ctx.point:  # a point of the claim's space: size, rank, and entries as a multiple of r (2n - r)
        n, r = int(ctx.param("n", n)), int(ctx.param("r", r))
        m = int(round(float(ctx.param("oversampling", 2.05)) * r * (2 * n - r)))
    # Completion's identifiability hypothesis: every row and column observed at least r times (without it no
    # method recovers M*; the search found a 12 x 12 rank-1 mask of 34 entries missing rows, where the deep
    # models fit the entries and err by 1.6). The mask is uniform conditioned on it: redrawn until it holds.
    for attempt in range(1000):
        problem = sim.Problem.random(n, n, r, m=m, operator="completion", seed=ctx.seed + 7919 * attempt)
        if min(problem.mask.sum(axis=0).min(), problem.mask.sum(axis=1).min()) >= r:
            break
    else:
        raise ValueError(f"no mask of {m} entries in 1000 draws observes every row and column {r} times")
    nuclear = th.min_nuclear_norm(mask=problem.mask, y=problem.M_star[problem.mask])
    nuclear_error = float(np.linalg.norm(nuclear.x - problem.M_star) / np.linalg.norm(problem.M_star))
    if nuclear_error < 1e-3:  # the search found 13 x 13, rank 1, 3x oversampling recovered to 1e-8
        raise OutOfReach(f"the minimum nuclear-norm solution already recovers M* (relative error {nuclear_error:.1e}): "
                         f"not the few-entries regime the statement is about, where it does not")
    finals = {}
    for depth in (2, 3, 4):
        traj = sim.simulate(problem, 1e-4, "gd", k=n, factorisation="deep", depth=depth, lr=0.5 if depth == 2 else 0.3,
                            steps=steps, t_eval=[0, steps], record_sv=False, loss_tol=1e-14, seed=ctx.seed,
                            backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
        finals[depth] = (traj.final["M"][0], str(traj.status[0]), float(traj.observables["loss"][0, -1]))
    # depth 2 from smaller starts: the finding that depth 2 is not the nuclear-norm solution, at every alpha
    # (escaping a start at alpha takes steps ~ ln(1/alpha): three times the budget reaches 1e-12)
    smaller = np.array([1e-8]) if ctx.quick else np.array([1e-8, 1e-12])
    more = 1 + smaller.size  # ln(1/alpha) grows by this factor at the smallest start
    sweep = sim.simulate(problem, smaller, "gd", k=n, factorisation="deep", depth=2, lr=0.5, steps=more * steps,
                         t_eval=[0, more * steps], record_sv=False, loss_tol=1e-14, seed=ctx.seed, backend=ctx.backend,
                         dtype=ctx.dtype, device=ctx.device)
    depth2 = {1e-4: finals[2][0], **{float(a): sweep.final["M"][b] for b, a in enumerate(smaller)}}
    return {"problem": problem, "nuclear": nuclear, "finals": finals, "n": n, "r": r, "m": m, "mask_draws": attempt + 1,
            "depth2": depth2, "depth2_status": [str(x) for x in sweep.status]}


def _draw_depth(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 2, 1)
    labels = ["nuclear"] + [f"depth {k}" for k in d["depths"]]
    ax.bar(labels, [d["nuclear_error"]] + list(d["errors"]))
    ax.set_yscale("log")
    ax.set_xlabel("solution")
    ax.set_ylabel("||M - M*||_F / ||M*||_F")
    ax.set_title("reconstruction error", fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    ax.bar(labels, [d["nuclear_rank"]] + list(d["ranks"]))
    ax.set_xlabel("solution")
    ax.set_ylabel("effective rank")
    ax.set_title("effective rank (Roy & Vetterli)", fontsize=8)


def _deep_over_nuclear(d: dict) -> float:
    """The larger of depth 3's and depth 4's reconstruction error over the nuclear-norm solution's."""
    M = d["problem"].M_star
    nuc = np.linalg.norm(d["nuclear"].x - M)
    return float(max(np.linalg.norm(d["finals"][k][0] - M) for k in (3, 4)) / nuc)


@claim(id="matrix_sensing.depth_low_rank", kind="simulation", backends="any", figure=_draw_depth,
       resolves=None, resolves_reason="an inequality between two solutions' reconstruction errors (Arora et al.'s "
                                      "empirical finding), not a predicted value: the evidence is the ratio of the "
                                      "errors, shown with its margin",
       formula=r"\text{depth } N \ge 3:\ \operatorname{erank}(W_N\cdots W_1) < \operatorname{erank}(M_{\|\cdot\|_*}),"
               r"\ \ \|W_N\cdots W_1 - M^*\| < \|M_{\|\cdot\|_*} - M^*\|",
       source=f"{ARORA}, Sec. 4 and Fig. 1 (matrix completion, 100 x 100, rank 5)",
       statement="With few observed entries, deep matrix factorisations (depth 3 and 4) trained from a small start "
                 "reach lower effective rank and lower reconstruction error than the minimum nuclear-norm solution.",
       space=Space((Param("n", 12, 30, integer=True, doc="M* is n x n"),
                    Param("r", 2, 3, integer=True, doc="rank (from 2: at rank 1 the search found depth 4 interpolating "
                                                       "the entries 1.3 from M*, the nuclear norm 0.53; README, "
                                                       "Findings)"),
                    Param("oversampling", 2.0, 3.0, doc="observed entries / degrees of freedom r (2n - r): 'few "
                                                        "entries', where the nuclear norm does not yet recover M*, "
                                                        "from Arora et al.'s 2.05 up. At 1.5 the search found depth 3 "
                                                        "worse than the nuclear norm (README, Findings)")),
                   key="oversampling"))
def depth_low_rank(ctx: Context) -> Evidence:
    if ctx.point:
        # An empirical statement (Arora et al. report the typical instance) is judged at a point of its space on
        # the median of three draws of the instance: single draws can fail (the search found depth 4 at 1.1 from
        # M* on one 18 x 18 rank-2 draw in five, the nuclear norm at 0.38; README, Findings)
        draws = [depth_runs(dataclasses.replace(ctx, seed=ctx.seed + 1000 * k)) for k in range(3)]
        scores = [_deep_over_nuclear(x) for x in draws]
        d = draws[int(np.argsort(scores)[1])]
    else:
        d, scores = depth_runs(ctx), None
    M_star = d["problem"].M_star
    norm = np.linalg.norm(M_star)
    nuc_err = float(np.linalg.norm(d["nuclear"].x - M_star) / norm)
    nuc_rank = th.effective_rank(d["nuclear"].x)
    depths = (2, 3, 4)
    errors = np.array([np.linalg.norm(d["finals"][k][0] - M_star) / norm for k in depths])
    ranks = np.array([th.effective_rank(d["finals"][k][0]) for k in depths])
    deep = np.array(depths) >= 3
    ratio = errors[deep] / nuc_err
    to_nuclear = float(np.linalg.norm(d["finals"][2][0] - d["nuclear"].x) / np.linalg.norm(d["nuclear"].x))
    sweep = {a: (float(np.linalg.norm(M - M_star) / norm),
                 float(np.linalg.norm(M - d["nuclear"].x) / np.linalg.norm(d["nuclear"].x))) for a, M in d["depth2"].items()}
    to_star = [sweep[a][0] for a in sorted(sweep, reverse=True)]
    smallest = sweep[min(sweep)]
    return Evidence(
        alternatives={"depth 2 tends to the minimum nuclear-norm solution as alpha -> 0 (Gunasekar et al.'s "
                      f"conjecture): distance to it over distance to M*, alpha = {min(sweep):g}":
                      smallest[1] / smallest[0]},
        predicted=f"< {nuc_err:.3g} (nuclear norm)", observed=[float(f"{x:.3g}") for x in errors],
        quantity="reconstruction error, depth 2, 3, 4", unit="ratio",
        error=float(ratio.max()), tolerance=1.0,
        # no sampling: the inequality is read off one deterministic instance, whose solutions are certified
        false_alarm=0.0,
        error_measure="largest, over depths 3 and 4, of the reconstruction error divided by that of the minimum "
                      "nuclear-norm solution",
        tolerance_reason="the statement is the inequality itself (error below the nuclear-norm solution's); the "
                         "nuclear-norm solution is certified by its KKT residuals",
        conditions={**{f"depth {k}: effective rank below the nuclear-norm solution's ({nuc_rank:.3g})":
                       bool(rk < nuc_rank) for k, rk in zip(np.array(depths)[deep], ranks[deep])},
                    **{f"depth {k}: did not diverge": d["finals"][k][1] != "diverged" for k in depths},
                    f"depth 2's distance to M* shrinks as alpha falls ({', '.join(f'{a:g}' for a in sorted(sweep, reverse=True))})":
                        bool(np.all(np.diff(to_star) < 0)),
                    f"at alpha = {min(sweep):g} depth 2 is nearer M* than the minimum nuclear-norm solution": bool(
                        smallest[0] < smallest[1]),
                    "nuclear-norm solution certified (KKT residual < 1e-6)": d["nuclear"].kkt_residual < 1e-6},
        details={"depths": list(depths), "errors": errors, "ranks": ranks, "nuclear_error": nuc_err,
                 "draw_ratios": scores,
                 "nuclear_rank": nuc_rank, "status": [d["finals"][k][1] for k in depths],
                 "distance_depth2_to_nuclear": to_nuclear,
                 "depth2_alpha_sweep": {f"{a:g}": {"to_M_star": v[0], "to_nuclear": v[1]} for a, v in sweep.items()}},
        note=(f"depth 2 ends {errors[0]:.3g} from M* and {to_nuclear:.3g} (relative) from the nuclear-norm solution at "
              f"alpha = 1e-4; from smaller starts it ends " + ", ".join(
                  f"{v[0]:.3g} from M* and {v[1]:.3g} from the nuclear-norm solution at alpha = {a:g}"
                  for a, v in sorted(sweep.items(), reverse=True) if a < 1e-4)
              + f": it tends to M*, not to the nuclear-norm solution (itself {nuc_err:.3g} from M*), as Li et al. 2021 "
              "report (greedy rank minimisation); depth 3 and 4's advantage at alpha = 1e-4 is one of speed at that "
              "alpha, which depth 2 makes up from smaller starts"),
    )
