"""Saxe, McClelland & Ganguli 2014, Fig. 3 style: mode strengths of a two-layer linear network over time.

Simulated modes (dots) from a small balanced start aligned with the target, on
the exact sigmoidal solutions u(t) (lines), one curve per singular value: the
stronger a mode, the earlier and faster it is learned (learning time ~ ln(s/u0)/s).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import deep_linear as sim
from solvable.theory import deep_linear as th


__all__ = ["compute", "draw", "SIZE"]


#: Figure size in inches (width, height).
SIZE = (6, 4)


def compute(quick: bool = False, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    s = np.array([3.0, 2.0, 1.5, 1.0, 0.5])
    problem = sim.Problem.random(6, 5, (5,), singular_values=s, seed=0)
    t = np.linspace(0, 12, 49 if quick else 121)
    traj = sim.simulate(problem, 1e-3, t_max=12.0, t_eval=t, backend=backend, device=device)
    pred = np.stack([th.saxe_mode(t, si, 1e-3) for si in s], axis=1)
    return {"t": t, "s": s, "sim": traj.observables["modes"][0], "pred": pred}


def draw(fig: Any, data: dict[str, Any]) -> None:
    ax = fig.add_subplot(1, 1, 1)
    for i, si in enumerate(data["s"]):
        ax.plot(data["t"], data["pred"][:, i], "-", color=f"C{i}", alpha=0.6)
        ax.plot(data["t"][::3], data["sim"][::3, i], "o", ms=3, color=f"C{i}", label=f"$s$ = {si:g}")
    ax.set_xlabel("$t$")
    ax.set_ylabel("mode strength $u(t)$")
    ax.set_title("Deep linear network modes: simulation (dots) on Saxe et al.'s solution (lines)", fontsize=8)
    ax.legend(fontsize=7)
