"""Pesme & Flammarion 2023: saddle-to-saddle dynamics of the vanishing-initialisation limit."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvable.sims import diagonal as sim
from solvable.theory import diagonal as th

from ..framework import power
from ..framework.registry import Context, Evidence, OutOfReach, claim, measurement
from ..framework.space import Param, Space

__all__ = ["SaddleRun", "saddle_run", "saddle_to_saddle"]


PESME_FLAMMARION = "Pesme & Flammarion 2023, Saddle-to-Saddle Dynamics in Diagonal Linear Networks"


#: The saddle-to-saddle runs' scales (ln(1/alpha) from 23 to 69).
SADDLE_ALPHAS = np.array([1e-10, 1e-20, 1e-30])
#: How close Woodworth et al.'s exact limit at the smallest alpha must be to min-l1 for alpha -> 0 to be in reach.
SADDLE_REACH = 1e-3
#: Relative loss gap between consecutive plateaus below which a jump's 1/ln(1/alpha) law is not yet clean here.
SADDLE_GAP = 0.1


def _require_small_alpha(problem: sim.Problem, algo: th.SaddleToSaddle, alpha: float) -> None:
    """Raise :class:`OutOfReach` when ``alpha`` is not small for this problem.

    Pesme & Flammarion's path is the alpha -> 0 limit; how small alpha must be depends on the problem. An
    independent measure is Woodworth et al.'s exact limit at that alpha, argmin Q_alpha (a convex solve, no
    simulation): the path's end, min-l1, is reached only once argmin Q_alpha is. Where another interpolator
    has nearly the same l1 norm the approach is like 1/ln(1/alpha) over that gap, out of reach of any
    float64 alpha. The search found (n = 8, d = 42, k = 2, seed 2026): argmin Q_alpha is 19% from min-l1
    at alpha = 1e-30 (26% at 1e-10), and the flow, even at alpha = 1e-120, ends 5% from it.
    """
    limit = th.implicit_bias(problem.X, problem.y, alpha)
    gap = float(np.linalg.norm(limit.x - algo.saddles[-1]) / np.linalg.norm(algo.saddles[-1]))
    if gap > SADDLE_REACH:
        raise OutOfReach(f"alpha = {alpha:g} is not small for this problem: the exact finite-alpha limit argmin "
                         f"Q_alpha (Woodworth et al., Thm 1) is still {gap:.2g} (relative) from min-l1, above "
                         f"{SADDLE_REACH:g}, so no alpha the simulation reaches shows the alpha -> 0 path")


@dataclass(frozen=True)
class SaddleRun:
    problem: sim.Problem
    alphas: np.ndarray
    tau: np.ndarray  # rescaled output times
    w: np.ndarray  # (B, T, d) at the rescaled times
    loss: np.ndarray  # (B, T)
    algo: th.SaddleToSaddle


@measurement
def saddle_run(ctx: Context) -> SaddleRun:
    """alpha in {1e-10, 1e-20, 1e-30} in one batched flow, observed on a common rescaled-time grid."""
    sizes = (20, 40, 3) if ctx.quick else (40, 80, 5)
    sizes = (int(ctx.param("n", sizes[0])), int(ctx.param("d", sizes[1])), int(ctx.param("k", sizes[2])))
    problem = sim.Problem.random(*sizes, seed=ctx.seed)
    algo = th.saddle_to_saddle(problem.X, problem.y)
    _require_small_alpha(problem, algo, SADDLE_ALPHAS[-1])
    # ln(1/alpha) from 23 to 69: the search found (n = 22, d = 27, k = 5) with nearly equal plateaus
    # whose jump errors are still pre-asymptotic over alpha in {1e-4, 1e-8, 1e-12} (slope -0.25); the
    # rescaled flow is as cheap at 1e-30, and there the 1/ln(1/alpha) law is clean (slope -0.99)
    alphas = SADDLE_ALPHAS
    # every segment between jumps gets its share of the grid: the jumps can spread over orders of magnitude
    # (the search found a last plateau at loss 6e-8 left at tau = 1081, after six jumps within tau < 3)
    edges = np.append(algo.times, 1.5 * algo.times[-1])
    per = max((1200 if ctx.quick else 3000) // (len(edges) - 1), 50)
    tau = np.unique(np.concatenate([np.linspace(a, b, per + 1) for a, b in zip(edges[:-1], edges[1:])]))[1:]
    w, loss, _ = sim.simulate_rescaled(problem, alphas, tau, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
    return SaddleRun(problem, alphas, tau, w, loss, algo)


def _crossing(tau: np.ndarray, loss: np.ndarray, level: float) -> float:
    """First rescaled time at which a decreasing loss curve falls below ``level`` (linear interpolation)."""
    below = np.nonzero(loss < level)[0]
    if below.size == 0:
        return float("nan")
    j = below[0]
    if j == 0:
        return float(tau[0])
    return float(np.interp(level, [loss[j], loss[j - 1]], [tau[j], tau[j - 1]]))


def _draw_saddle(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 1, 1)
    for b, a in enumerate(d["alpha"]):
        ax.plot(d["tau"], d["loss"][b], label=f"flow, alpha = {a:.0e}")
    grid = np.linspace(0, d["tau"][-1], 2000)
    times, losses = d["algorithm_times"], d["algorithm_losses"]
    idx = np.clip(np.searchsorted(times, grid, side="right") - 1, 0, len(losses) - 1)
    ax.plot(grid, losses[idx], "k--", label="Algorithm 1 (alpha -> 0)")
    ax.set_yscale("log")
    plateaus = np.asarray(losses)[np.asarray(losses) > 0]  # the last saddle interpolates: loss 0, off a log axis
    ax.set_ylim(bottom=max(float(plateaus.min()) / 100, 1e-12) if plateaus.size else 1e-12)
    ax.set_xlabel("rescaled time t / ln(1/alpha)")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=7)


@claim(id="diagonal.saddle_to_saddle", kind="simulation", figure=_draw_saddle, resolves=(0.1, 0.1),
       resolves_reason="times f x Algorithm 1's are rejected once (f - 1) t no longer shrinks below the O(1/ln(1/alpha)) "
                       "correction, 1/69 of a jump's O(1) real time at alpha = 1e-30, the smallest alpha in both modes: "
                       "measured 3.3-5.0 % (full seed 0, quick seeds 0-2); the problem's size does not change it",
       formula=r"\tilde t = \frac{t}{\ln(1/\alpha)}:\quad w(\tilde t) \to \text{Algorithm 1's saddles } \beta_k "
               r"\text{ on } [\tilde t_k, \tilde t_{k+1})",
       precision=(1e-10, "the saddle-to-saddle runs (alpha down to 1e-30, rtol 1e-10)"),
       source=f"{PESME_FLAMMARION}, Algorithm 1 and Theorem 1 (time constants derived for w = u^2 - v^2)",
       statement="As alpha -> 0, gradient flow in rescaled time t/ln(1/alpha) jumps between the saddles of Algorithm 1 "
                 "at its jump times (errors shrinking like 1/ln(1/alpha)) and ends at the min-l1 interpolator.",
       space=Space((Param("n", 5, 40, integer=True, doc="samples"), Param("d", 10, 80, integer=True, doc="dimension"),
                    Param("k", 1, 5, integer=True, doc="non-zeros of the teacher")),
                   constraints=(("n < d (the last saddle interpolates)", lambda p: p["n"] < p["d"]),
                                ("k < n", lambda p: p["k"] < p["n"])), key="n"))
def saddle_to_saddle(ctx: Context) -> Evidence:
    s = saddle_run(ctx)
    algo = s.algo
    scale = np.log(1 / s.alphas)
    # Simulated jump k: the loss crosses halfway between the plateau losses on either side.
    levels = 0.5 * (algo.losses[:-1] + algo.losses[1:])
    sim_jumps = np.array([[_crossing(s.tau, s.loss[b], lv) for lv in levels] for b in range(len(s.alphas))])

    # Jumps between plateaus whose losses differ by less than GAP (relative) stay pre-asymptotic far below these
    # alphas (quick seed 9: plateaus 0.0787 and 0.0752, a jump error of 0.072 at both 1e-20 and 1e-30, shrinking
    # like 1/ln(1/alpha) only below 1e-60): they are held to shrinking errors, the rest to the 1/ln(1/alpha) law.
    gaps = (algo.losses[:-1] - algo.losses[1:]) / algo.losses[:-1]
    # a jump is clean when the plateau it leaves and the one it enters both stand SADDLE_GAP above the next (quick
    # seed 1: the jump into a plateau 1.6 % above the following one kept an error of 0.14-0.12 over these alphas)
    clean = (gaps >= SADDLE_GAP) & (np.append(gaps[1:], 1.0) >= SADDLE_GAP)
    clean = clean if clean.any() else np.ones_like(clean)

    def error_slope(f: float) -> float:
        """The fitted slope of log(max jump-time error) against log ln(1/alpha), for jump times f x Algorithm 1's."""
        err = np.max(np.abs(sim_jumps - f * algo.times[1:])[:, clean], axis=1)
        return float(np.polyfit(np.log(scale), np.log(err), 1)[0])

    jump_err = np.max(np.abs(sim_jumps - algo.times[1:])[:, clean], axis=1)
    close_err = np.abs(sim_jumps - algo.times[1:])[:, ~clean]
    slope = error_slope(1.0)
    # Plateaus: the closest approach to each saddle shrinks as alpha decreases.
    norms = np.maximum(np.linalg.norm(algo.saddles, axis=1), 1e-3)
    closest = np.array([[np.min(np.linalg.norm(s.w[b] - beta, axis=1)) / nb for beta, nb in zip(algo.saddles, norms)]
                        for b in range(len(s.alphas))])
    plateau_growth = float(np.max(closest[1:] - closest[:-1]))
    # End point: the last saddle is the LP's min-l1 interpolator.
    lp = th.min_l1_interpolator(s.problem.X, s.problem.y)
    end_gap = float(np.linalg.norm(algo.saddles[-1] - lp.x) / np.linalg.norm(lp.x))
    # Each criterion over its tolerance: slope in [-1.5, -0.5]; plateaus non-increasing up to 1e-6;
    # end point within 100 x the LP's certificate (its accuracy).
    end_tol = max(100 * lp.kkt_residual, 1e-6)
    ratios = {"jump_time_slope": abs(slope + 1) / 0.5, "plateau_growth": max(plateau_growth, 0) / 1e-6,
              "end_point": end_gap / end_tol}
    # the headline: the jump times; times off by a constant factor leave an error that does not shrink (slope ~ 0)
    score = power.worst(lambda f: abs(error_slope(f) + 1) / 0.5, power.fixed(max(ratios["plateau_growth"],
                                                                                  ratios["end_point"])))

    return Evidence(
        predicted=[round(float(t), 5) for t in algo.times[1:]], observed=[round(float(t), 5) for t in sim_jumps[-1]],
        quantity="rescaled jump times (Algorithm 1; the alpha = 1e-30 run)",
        error=score(1.0), tolerance=1.0, score=score, false_alarm=0.0,
        error_measure="worst of three normalised criteria: |fitted slope of log(max jump-time error) against "
                      "log ln(1/alpha) + 1| / 0.5; the largest growth of a saddle's closest approach as alpha "
                      "decreases / 1e-6; the last saddle's distance to the LP solution / (100 x LP certificate) "
                      "(predicted/observed: jump times of Algorithm 1 and of the alpha = 1e-30 run)",
        tolerance_reason="the leading correction to the rescaled jump times is O(1/ln(1/alpha)) (the jumps take O(1) "
                         "real time), so the error slope is -1 up to O(1/ln(1/alpha)) ~ 0.01-0.04 here (ln(1/alpha) from "
                         f"23 to 69), for jumps that leave and enter plateaus each at least {SADDLE_GAP:.0%} above the next "
                         "in loss (next to closer ones the jumps are pre-asymptotic at these alphas and are held to "
                         "shrinking errors); closest "
                         "approaches are compared across alpha, 1e-6 is far below the integrator's resolution of "
                         "them; the LP is accurate to its certificate",
        details={"alpha": s.alphas, "jump_time_error": jump_err, "error_times_log": jump_err * scale,
                 "slope": slope, "closest_approach": closest, "end_point_gap": end_gap, "plateau_gaps": gaps,
                 "jump_times_simulated": sim_jumps, "n_saddles": len(algo.times), **{k: v for k, v in ratios.items()},
                 "tau": s.tau[::4], "loss": s.loss[:, ::4], "algorithm_times": algo.times,
                 "algorithm_losses": algo.losses},
        conditions={"every run crosses every plateau": bool(np.all(np.isfinite(sim_jumps))),
                    f"the jumps next to plateaus less than {SADDLE_GAP:.0%} apart in loss come nearer Algorithm 1's "
                    "times as alpha decreases": bool(np.all(np.diff(close_err, axis=0) <= 1e-9))},
    )
