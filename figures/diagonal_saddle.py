"""Pesme & Flammarion 2023, Fig. 1 style: saddle-to-saddle dynamics in rescaled time.

The coordinates of gradient flow from u = v = alpha, for alpha in {1e-4, 1e-8,
1e-12}, against rescaled time t / ln(1/alpha), over the piecewise-constant
prediction of Algorithm 1 (the alpha -> 0 limit; see
:func:`theory.diagonal.saddle_to_saddle`). As alpha shrinks the curves sharpen
onto the predicted plateaus and jump times.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import diagonal as sim
from solvable.theory import diagonal as th


__all__ = ["compute", "draw", "SIZE"]


#: Figure size in inches (width, height).
SIZE = (10, 3.6)


def compute(quick: bool = False, seed: int = 2) -> dict[str, Any]:
    problem = sim.Problem.random(20, 40, 3, seed=seed) if quick else sim.Problem.random(40, 80, 5, seed=seed)
    algo = th.saddle_to_saddle(problem.X, problem.y)
    alphas = np.array([1e-4, 1e-8, 1e-12])
    tau = np.linspace(0, 1.4 * algo.times[-1], 600 if quick else 2000)[1:]
    w, loss, _ = sim.simulate_rescaled(problem, alphas, tau)
    shown = np.nonzero(np.any(np.abs(algo.saddles) > 1e-9, axis=0))[0]
    return {"alphas": alphas, "tau": tau, "w": w, "loss": loss, "algo": algo, "shown": shown}


def draw(fig: Any, data: dict[str, Any]) -> None:
    algo, tau = data["algo"], data["tau"]
    grid = np.linspace(0, tau[-1], 2000)
    steps = algo.at(grid)
    ax = fig.add_subplot(1, 2, 1)
    styles = [":", "--", "-"]
    for i, coord in enumerate(data["shown"]):
        ax.plot(grid, steps[:, coord], color=f"C{i}", lw=3, alpha=0.35)
        for b, style in enumerate(styles):
            ax.plot(tau, data["w"][b, :, coord], style, color=f"C{i}", lw=1)
    ax.set_xlabel(r"rescaled time $t / \ln(1/\alpha)$")
    ax.set_ylabel("coordinates $w_i$")
    ax.set_title(r"thick: Algorithm 1; dotted/dashed/solid: $\alpha = 10^{-4}, 10^{-8}, 10^{-12}$", fontsize=7)
    ax = fig.add_subplot(1, 2, 2)
    idx = np.clip(np.searchsorted(algo.times, grid, side="right") - 1, 0, len(algo.losses) - 1)
    ax.plot(grid, algo.losses[idx], "k", lw=3, alpha=0.35, label="Algorithm 1")
    for b, style in enumerate(styles):
        ax.plot(tau, data["loss"][b], style, label=rf"$\alpha$ = {data['alphas'][b]:.0e}")
    ax.set_yscale("log")
    ax.set_ylim(bottom=max(float(np.nanmin(data["loss"])) / 10, 1e-12))
    ax.set_xlabel(r"rescaled time $t / \ln(1/\alpha)$")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=7)
    fig.suptitle("Saddle-to-saddle dynamics (Pesme & Flammarion 2023, Fig. 1 style)", fontsize=9)
