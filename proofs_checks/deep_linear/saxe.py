"""Saxe et al. 2014 and Arora et al. 2018: the exact mode dynamics of a deep linear network and the end-to-end flow."""

from __future__ import annotations

import numpy as np

from solvable.sims import deep_linear as sim
from solvable.theory import deep_linear as th

from ..framework import power
from ..framework.registry import Context, Evidence, claim
from ..framework.space import Param, Space
from .common import ARORA, RTOL, SAXE

__all__ = ["end_to_end", "saxe_modes"]


def _mode_budget(traj, s: np.ndarray) -> np.ndarray:
    """Integration budget of a mode strength: local error control at RTOL, linear accumulation over the
    steps, relative to the largest mode (the state's scale)."""
    return traj.stop_step * RTOL * float(np.max(s))


def _draw_saxe(fig, ev: Evidence) -> None:
    d = ev.details
    ax = fig.add_subplot(1, 1, 1)
    for i, si in enumerate(d["singular_values"]):
        ax.plot(d["t"], d["predicted_modes"][:, i], "-", color=f"C{i}", alpha=0.5)
        ax.plot(d["t"], d["simulated_modes"][:, i], ".", color=f"C{i}", label=f"s = {si:g}")
    ax.set_xlabel("t")
    ax.set_ylabel("mode strength u(t)")
    ax.set_title(f"lines: Saxe et al.'s u(t); dots: gradient flow (alpha = {d['alpha'][0]:g})", fontsize=8)
    ax.legend(fontsize=7)


@claim(id="deep_linear.saxe_modes", kind="simulation", figure=_draw_saxe,
       formula=r"u(t) = \frac{s\, e^{2st}}{e^{2st} - 1 + s/u_0}",
       precision=(RTOL, "the mode trajectories (rtol 1e-10)"),
       source=f"{SAXE}, Eqs. 6-7",
       statement="From a small balanced start aligned with the target, each mode of a two-layer linear network follows "
                 "u(t) = s e^{2st} / (e^{2st} - 1 + s/u0).",
       space=Space((Param("alpha", 1e-6, 0.1, log=True, doc="initial scale of the aligned balanced start"),
                    Param("s1", 0.5, 5.0, doc="largest singular value of the target (the others are s1 x "
                                              "[1, 2/3, 1/2, 1/3, 1/6])")),
                   constraints=(("alpha < s1 / 12: the start below half of every target mode (a small start, "
                                 "so that each mode has a learning time to s_i / 2)",
                                 lambda p: p["alpha"] < p["s1"] / 12),), key="alpha"))
def saxe_modes(ctx: Context) -> Evidence:
    s1 = float(ctx.param("s1", 3.0))
    problem = sim.Problem.random(6, 5, (5,), singular_values=s1 * np.array([1.0, 2 / 3, 0.5, 1 / 3, 1 / 6]),
                                 seed=ctx.seed)
    alphas = np.array([1e-4, 1e-2]) if ctx.quick else np.array([1e-6, 1e-4, 1e-2])
    alphas = np.array([float(ctx.param("alpha", 0.0))]) if ctx.param("alpha", None) is not None else alphas
    t_eval = np.linspace(0, 20, 81)
    # every layer, not the mode ODEs: the claim is that the full network follows Saxe's modes
    traj = sim.simulate(problem, alphas, t_max=20.0, t_eval=t_eval, rtol=RTOL, coordinates="full",
                        backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
    s = problem.svd()[1]
    pred = np.stack([[th.saxe_mode(t_eval, si, a) for si in s] for a in alphas], axis=0).transpose(0, 2, 1)
    err = np.max(np.abs(traj.observables["modes"] - pred), axis=(1, 2))
    budget = _mode_budget(traj, s)
    score = power.absolute(traj.observables["modes"], pred, budget[:, None, None])
    learn = [th.saxe_learning_time(si, alphas[0], si / 2) for si in s]
    sim_modes = traj.observables["modes"][0]  # increasing in t: the crossing of s/2, linear between outputs
    crossed = [float(np.interp(si / 2, sim_modes[:, i], t_eval)) for i, si in enumerate(s)]
    return Evidence(
        predicted=[round(x, 4) for x in learn], observed=[round(x, 4) for x in crossed],
        quantity=f"time at which mode i reaches s_i/2 (alpha = {alphas[0]:g}; simulated: interpolated between outputs)",
        error=score(1.0), tolerance=1.0, score=score, false_alarm=0.0,
        error_measure="worst ratio over initial scales of max_t,i |u_i(t) - u_Saxe(t)| to the integration budget "
                      "(the crossing times shown are a summary; the error is over the whole trajectories)",
        tolerance_reason="integration error: local error control at rtol = 1e-10, accumulating at most linearly over "
                         "the steps, on states of size max(s)",
        details={"alpha": alphas, "max_error": err, "budget": budget, "singular_values": s, "t": t_eval,
                 "predicted_modes": pred[0], "simulated_modes": traj.observables["modes"][0]},
    )


@claim(id="deep_linear.end_to_end", kind="simulation",
       formula=r"\dot\sigma = N\,\sigma^{2 - 2/N}(s - \sigma)",
       precision=(RTOL, "the mode trajectories (rtol 1e-10)"),
       source=f"{ARORA}, Theorem 1 and Eq. 7",
       statement="Under balanced initialisation each mode of the end-to-end matrix of a depth-N network obeys "
                 "sigma' = N sigma^(2 - 2/N) (s - sigma), for N in {3, 4}.",
       space=Space((Param("depth", 2, 6, integer=True, doc="number of layers N"),
                    Param("alpha", 1e-3, 0.3, log=True, doc="initial scale of every layer")), key="depth"))
def end_to_end(ctx: Context) -> Evidence:
    s = np.array([2.0, 1.0, 0.5])
    t_eval = np.linspace(0, 15, 61)
    errors, budgets, ends, parts = [], [], [], []
    alpha = float(ctx.param("alpha", 1e-2))
    depths = (int(ctx.param("depth", 0)),) if ctx.param("depth", None) is not None else (3, 4)
    for depth in depths:
        problem = sim.Problem.random(4, 3, (3,) * (depth - 1), singular_values=s, seed=ctx.seed)
        traj = sim.simulate(problem, alpha, t_max=15.0, t_eval=t_eval, rtol=RTOL, coordinates="full",
                            backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)
        pred = np.stack([th.end_to_end_mode(t_eval, si, alpha, depth) for si in s], axis=1)
        errors.append(float(np.max(np.abs(traj.observables["modes"][0] - pred))))
        mid = len(t_eval) // 4  # mid-learning, where the modes move fastest
        ends.append((pred[mid], traj.observables["modes"][0][mid]))
        budgets.append(float(_mode_budget(traj, s)[0]) + 1e-12)  # + the reference ODE's own accuracy
        parts.append(power.absolute(traj.observables["modes"][0], pred, budgets[-1]))
    score = power.worst(*parts)
    return Evidence(
        predicted=[round(float(x), 6) for e in ends for x in e[0]],
        observed=[round(float(x), 6) for e in ends for x in e[1]],
        quantity=f"sigma_i at t = {t_eval[len(t_eval) // 4]:g} for N = {', then N = '.join(map(str, depths))} "
                 f"(the ODE's solution / the network's)",
        error=score(1.0), tolerance=1.0, score=score, false_alarm=0.0,
        error_measure=f"worst ratio over depths {depths} of max_t,i |sigma_i(t) - ODE solution| to the budget "
                      "(the error is over the whole trajectories)",
        tolerance_reason="integration budget of the network (rtol = 1e-10, linear accumulation) plus 1e-12 for the "
                         "reference solution of the scalar ODE (DOP853 at rtol 1e-13)",
        details={"depth": list(depths), "alpha": alpha, "max_error": errors, "budget": budgets},
    )
