"""Jin et al. 2023: incremental learning from a small initialisation (the commuting case in closed form), and the
greedy low-rank path (Li, Luo & Lyu 2021).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from solvable.sims import matrix_sensing as sim
from solvable.sims.matrix_sensing.measure import crossing_times
from solvable.theory import matrix_sensing as th

from ..framework import power
from ..framework.registry import Context, Evidence, claim, measurement
from ..framework.space import Param, Space
from .common import C, JIN, LI, RTOL, _runs_converged

__all__ = ["Staircase", "greedy_low_rank", "greedy_runs", "incremental_learning", "staircase"]


@dataclass(frozen=True)
class Staircase:
    problem: sim.Problem
    sigma: np.ndarray
    alphas: np.ndarray
    t: np.ndarray
    runs: dict  # name -> (k, init, trajectory, unit-scale factor norm^2)


@measurement
def staircase(ctx: Context) -> Staircase:
    """Population symmetric sensing, geometric spectrum (ratio 2), gradient flow from three scales.

    Runs: aligned k = r (the commuting case), random k = r + 2 and random k = r - 1.
    Quick: n = 10, sigma = (1, 1/2, 1/4); full: n = 30, sigma = (1, 1/2, 1/4, 1/8).
    """
    n, sigma = (10, np.array([1.0, 0.5, 0.25])) if ctx.quick else (30, 1.0 / 2.0 ** np.arange(4))
    if ctx.point:  # a point of the claim's space: n, the rank and the ratio of the geometric spectrum
        n = int(ctx.param("n", n))
        sigma = 1.0 / float(ctx.param("ratio", 2.0)) ** np.arange(int(ctx.param("r", sigma.size)))
    r = sigma.size
    problem = sim.Problem.random(n, n, r, symmetric=True, operator="population", singular_values=sigma, seed=ctx.seed)
    alphas = np.array([1e-3, 1e-5, 1e-7])
    t_max = 1.25 * float(th.learning_time(sigma[-1], alphas[-1] ** 2))
    t = np.linspace(0.0, t_max, 4001)
    runs = {}
    for name, k, init in (("aligned k = r", r, "aligned"), ("random k = r + 2", r + 2, "random"),
                          ("random k = r - 1", r - 1, "random")):
        traj = sim.simulate(problem, alphas, k=k, init=init, t_max=t_max, t_eval=t, rtol=RTOL, loss_tol=0.0,
                            seed=ctx.seed, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
        unit = sim.initial_state(problem, 1.0, k=k, init=init, seed=ctx.seed)[0][0]
        runs[name] = (k, init, traj, float(np.linalg.norm(unit, 2) ** 2))
    return Staircase(problem, sigma, alphas, t, runs)


def _draw_staircase(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 1, 1)
    for i, s in enumerate(d["sigma"]):
        ax.plot(d["t"], d["sv"][:, i], color=f"C{i}", label=f"sigma_{i + 1} = {s:g}")
        ax.axvline(d["predicted_times"][i], color=f"C{i}", ls=":", lw=1)
    ax.set_xlabel("t")
    ax.set_ylabel("singular values of X X^T")
    ax.set_title(f"random start, k = r + 2, alpha = {d['alpha']:g}; dotted: (2 ln(1/alpha) + C_i)/(4 sigma_i)",
                 fontsize=8)
    ax.legend(fontsize=7)


@claim(id="matrix_sensing.incremental_learning", kind="simulation", figure=_draw_staircase,
       precision=(RTOL, "the learning times (rtol 1e-10)"),
       formula=r"t_i = \frac{1}{4\sigma_i}\ln\!\Big(\frac{\sigma_i}{\alpha^2} - 1\Big),\qquad "
               r"\frac{d t_i}{d\ln(1/\alpha)} = \frac{1}{2\sigma_i}",
       source=f"{JIN}, Sec. 3 (incremental learning); closed form of the commuting case (theory.matrix_sensing)",
       statement="From a small start gradient flow learns the eigenvalues of M* one at a time, in decreasing order: "
                 "exactly at t_i = ln(sigma_i/alpha^2 - 1)/(4 sigma_i) in the commuting case, and with "
                 "dt_i/dln(1/alpha) = 1/(2 sigma_i) from a random start, over- (k > r) or under- (k < r) parameterised.",
       space=Space((Param("n", 5, 20, integer=True, doc="M* is n x n (PSD)"),
                    Param("r", 2, 4, integer=True, doc="rank of M*"),
                    Param("ratio", 2.0, 4.0, doc="sigma_i / sigma_(i+1) of the geometric spectrum (1, 1/ratio, ...); "
                                                 "at 1.5 the search found the rank-(r - 1) run still 1e-6 away from "
                                                 "the best approximation at t_max = 1.25 t_r: its last approach goes "
                                                 "at the rate of the gap sigma_(r-1) - sigma_r")),
                   constraints=(("r + 2 <= n (the over-parameterised run has k = r + 2 columns)",
                                 lambda p: p["r"] + 2 <= p["n"]),), key="ratio"))
def incremental_learning(ctx: Context) -> Evidence:
    s = staircase(ctx)
    parts, conditions, rows = [], {}, {}
    L = np.log(1 / s.alphas)
    for name, (k, init, traj, unit) in s.runs.items():
        modes = min(k, s.sigma.size)
        sig = s.sigma[:modes]
        times = np.array([crossing_times(s.t, traj.observables["sv"][b], sig) for b in range(s.alphas.size)])
        conditions[f"{name}: no run diverged"] = bool(np.all(traj.status != "diverged"))
        conditions[f"{name}: modes learned in decreasing order"] = bool(np.all(np.diff(times, axis=1) > 0))
        # Integration error of a crossing time: relative error N rtol on x, 2 N rtol on s = x^2, over
        # the slope ds/dt = C sigma^2 / 4 at s = sigma/2: dt = 4 N rtol / (C sigma).
        dt = 4 * traj.stop_step[:, None] * RTOL / (C * sig[None, :])
        if init == "aligned":
            pred = th.learning_time(sig[None, :], s.alphas[:, None] ** 2)
            err = np.abs(times - pred)
            parts.append(power.absolute(times, pred, dt))
            rows[name] = {"predicted": pred, "observed": times, "relative_error": err / pred, "budget": dt / pred}
        else:
            slopes = np.diff(times, axis=0) / np.diff(L)[:, None]
            pred = th.learning_slope(sig)
            rel = np.abs(slopes / pred - 1)
            # Neglected terms of t_i = (2 ln(1/alpha) + C_i)/(4 sigma_i), in units of ln: O(s0/sigma_i) with
            # s0 <= alpha^2 ||X0/alpha||^2 (the expansion of ln(sigma/s0 - 1), the cubic term of the linear
            # phase), and the coupling between modes: when mode j saturates, mode j + 1 has gathered energy
            # alpha^(2(1 - sigma_(j+1)/sigma_j)) ||X0/alpha||^2, which tilts the learned directions and so the
            # offsets C_i of every later mode; the slowest of these, g = min_j (1 - sigma_(j+1)/sigma_j), bounds
            # them all. In slope units divided by 2 dL; plus the two crossings' integration errors.
            g = float(np.min(1 - s.sigma[1:] / s.sigma[:-1]))
            a = s.alphas[:-1, None]
            neglected = unit * (a**2 / sig[None, :] + a ** (2 * g))
            budget = (neglected + 2 * C * sig[None, :] * np.maximum(dt[:-1], dt[1:]) / 2) / (2 * np.diff(L)[:, None])
            parts.append(lambda f, slopes=slopes, pred=pred, budget=budget:
                         float(np.max(np.abs(slopes / (f * pred) - 1) / budget)))
            rows[name] = {"predicted_slope": pred, "observed_slope": slopes, "relative_error": rel, "budget": budget}
            if k < s.sigma.size:
                best = th.greedy_low_rank(s.problem.M_star, max_rank=k).M[-1]
                dist = np.linalg.norm(traj.final["M"] - best, axis=(1, 2)) / np.linalg.norm(best)
                conditions[f"{name}: ends at the best rank-{k} approximation (distance < 1e-6)"] = bool(
                    np.all(dist < 1e-6))
    k_over, _, traj_over, _ = s.runs["random k = r + 2"]
    over = rows["random k = r + 2"]
    alpha = float(s.alphas[-1])
    t_last = crossing_times(s.t, traj_over.observables["sv"][-1], s.sigma)
    offsets = t_last * C * s.sigma - 2 * np.log(1 / alpha)
    score = power.worst(*parts)
    return Evidence(
        score=score, false_alarm=0.0,
        predicted=[float(f"{x:.6g}") for x in over["predicted_slope"]],
        observed=[float(f"{x:.6g}") for x in over["observed_slope"][-1]],
        quantity="dt_i/dln(1/alpha) per mode (random start, k = r + 2)",
        error=score(1.0), tolerance=1.0,
        error_measure="worst ratio to its budget of: |t_i - closed form| (aligned start, every mode and alpha), and "
                      "|slope/prediction - 1| of t_i against ln(1/alpha) (random starts, every mode and alpha pair)",
        tolerance_reason="budgets per number: integration (local error rtol = 1e-10 accumulating over the steps, through "
                         "ds/dt at the crossing), and for the slopes the neglected orders of the small-alpha "
                         "expansion: s0/sigma_i and the coupling alpha^(2 g), g = min_j (1 - sigma_(j+1)/sigma_j), "
                         "through which a mode's energy tilts the directions learned before it; "
                         "the logit interpolation is exact for a logistic mode",
        conditions=conditions,
        details={"sigma": s.sigma, "alpha": alpha, "t": s.t, "sv": traj_over.observables["sv"][-1][:, : s.sigma.size],
                 "predicted_times": (2 * np.log(1 / alpha) + offsets) / (C * s.sigma), "rows": rows},
    )


@measurement
def greedy_runs(ctx: Context) -> tuple:
    """GD on a symmetric Gaussian operator from four scales, with M recorded every other step."""
    n, m, sigma = (10, 400, np.array([1.0, 0.5, 0.25])) if ctx.quick else (16, 1000, 1.0 / 2.0 ** np.arange(4))
    n, m = int(ctx.param("n", n)), int(ctx.param("m", m))
    problem = sim.Problem.random(n, n, sigma.size, m=m, symmetric=True, operator="symmetric", singular_values=sigma,
                                 seed=ctx.seed)
    alphas = np.array([1e-2, 1e-4, 1e-6, 1e-8])
    lr = 0.02
    steps = int(1.1 * th.learning_time(sigma[-1], alphas[-1] ** 2) / lr)
    traj = sim.simulate(problem, alphas, "gd", k=sigma.size + 2, lr=lr, steps=steps,
                        t_eval=np.arange(0, steps + 1, 2), record_M=True, record_sv=False, seed=ctx.seed,
                        backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
    stages = th.greedy_low_rank(A=problem.A, y=problem.y, max_rank=sigma.size)
    return problem, alphas, traj, stages


def _draw_greedy(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 1, 1)
    for i, dist in enumerate(d["distance"]):
        ax.loglog(d["alpha"], dist, "o-", label=f"stage {i + 1}")
    ax.set_xlabel("alpha")
    ax.set_ylabel("min_t ||X X^T - GLRL stage|| / ||M*||")
    ax.set_title("GD passes ever closer to each greedy low-rank stage as alpha -> 0", fontsize=8)
    ax.legend(fontsize=7)


@claim(id="matrix_sensing.greedy_low_rank", kind="simulation", figure=_draw_greedy,
       formula=r"\alpha \to 0:\quad \min_t \|X_tX_t^\top - \hat M_i\|_F \to 0,\quad "
               r"\hat M_i = \text{GLRL stage } i",
       source=f"{LI}, Algorithm 1 and Thm 5.3; {JIN}, Thm 3.2",
       statement="With small initialisation, GD on a Gaussian sensing problem passes near each stage of greedy "
                 "low-rank learning (rank 1, 2, ...), ever closer as alpha decreases.",
       space=Space((Param("n", 6, 16, integer=True, doc="M* is n x n (PSD, spectrum 1, 1/2, 1/4)"),
                    Param("m", 100, 1000, integer=True, doc="Gaussian measurements")),
                   constraints=(("m >= 8 n r: many more measurements than the n r degrees of freedom (Li et al.'s "
                                 "RIP hypothesis, Thm 5.3)", lambda p: p["m"] >= 8 * 3 * p["n"]),), key="m"))
def greedy_low_rank(ctx: Context) -> Evidence:
    problem, alphas, traj, stages = greedy_runs(ctx)
    M = traj.observables["M"]
    norm = np.linalg.norm(problem.M_star)
    intermediate = stages.M[:-1]  # the last stage is M* itself, reached at the end
    dist = np.array([np.nanmin(np.linalg.norm(M - S, axis=(2, 3)), axis=1) / norm for S in intermediate])
    neighbours = np.concatenate([np.zeros((1,) + stages.M.shape[1:]), stages.M])
    gaps = np.array([min(np.linalg.norm(neighbours[i + 1] - neighbours[j]) for j in range(len(neighbours))
                         if j != i + 1) / norm for i in range(len(intermediate))])
    monotone = np.all(np.diff(dist, axis=1) < 0, axis=1)
    last = M[-1]  # the smallest alpha's path

    def score(f: float) -> float:
        """The closest approach of the smallest alpha's path to f x each stage, in units of the stage gap."""
        return max(float(np.nanmin(np.linalg.norm(last - f * S, axis=(1, 2)))) / norm / g
                   for S, g in zip(intermediate, gaps))

    return Evidence(
        predicted=0.0, observed=[float(f"{x:.3g}") for x in dist[:, -1]],
        quantity=f"min over t of the distance to GLRL stages 1..{len(intermediate)} at alpha = {alphas[-1]:g}",
        unit="fraction of the stage gap",
        error=score(1.0), tolerance=0.1, score=score, false_alarm=0.0,
        error_measure="worst, over the intermediate stages, of the closest approach at the smallest alpha divided by "
                      "the distance from that stage to its nearest other stage (0 and M* included)",
        tolerance_reason="passing a stage means coming closer to it than a tenth of what separates it from any other "
                         "stage; the approach closes slowly (a power of alpha set by the eigen-gaps, about alpha^(1/3) "
                         "here), which is why the smallest alpha is 1e-8",
        conditions={**{f"stage {i + 1}: the closest approach shrinks with every decrease of alpha": bool(ok)
                       for i, ok in enumerate(monotone)},
                    "every GLRL stage converged (L-BFGS)": bool(np.all(stages.converged)),
                    **_runs_converged(traj, "GD")},
        details={"alpha": alphas, "distance": dist, "gap": gaps, "stage_loss": stages.loss},
    )
