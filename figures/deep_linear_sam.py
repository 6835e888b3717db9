"""Agarwala & Dauphin 2023 style: where unnormalised SAM ends, against rho.

For a fixed step eta, SAM on the scalar network f = w1 w2 w3 w4 (from a start
whose flow solution is sharp) ends at sharpness (sqrt(1 + 8 rho/eta) - 1)/(2 rho),
the SAM edge, below GD's 2/eta, until the edge falls below the flattest
minimum (D y^(2 - 2/D) = 4) and no SAM-stable minimum is left.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import deep_linear as sim
from solvable.theory import deep_linear as th


__all__ = ["compute", "draw", "SIZE"]

START = np.array([0.3, 0.4, 0.5, 2.5])


#: Figure size in inches (width, height).
SIZE = (6, 4)


def compute(quick: bool = False, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    problem = sim.Problem.scalar(4, 1.0)
    eta = 0.3
    rhos = np.linspace(0.005, 0.14, 4 if quick else 10)
    finals = []
    for rho in rhos:
        traj = sim.simulate(problem, layers=[START[j].reshape(1, 1, 1) for j in range(4)], algorithm="sam", lr=eta,
                            rho=float(rho), sam_normalized=False, steps=3000 if quick else 10000, record_sharpness=True, sharpness_iters=4,
                            t_eval=[0, 3000 if quick else 10000], backend=backend, device=device)
        finals.append(traj.observables["sharpness"][0, -1] if traj.status[0] != "diverged" else np.nan)
    grid = np.linspace(rhos.min(), rhos.max(), 200)
    return {"eta": eta, "rhos": rhos, "final": np.array(finals), "grid": grid, "edge": th.sam_edge(eta, grid),
            "gfs": th.gfs_sharpness(START, 1.0)}


def draw(fig: Any, data: dict[str, Any]) -> None:
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(data["grid"], data["edge"], "-", label=r"SAM edge $(\sqrt{1 + 8\rho/\eta} - 1)/(2\rho)$")
    ax.plot(data["rhos"], data["final"], "o", label="final sharpness, SAM")
    ax.axhline(2 / data["eta"], color="k", ls=":", label=r"GD edge $2/\eta$")
    ax.axhline(data["gfs"], color="gray", ls="--", label="flow solution's sharpness")
    ax.axhline(4.0, color="gray", ls="-.", label="flattest minimum")
    ax.set_xlabel(r"$\rho$")
    ax.set_ylabel("sharpness")
    ax.legend(fontsize=7)
    ax.set_title(rf"Unnormalised SAM at $\eta$ = {data['eta']} (Agarwala & Dauphin 2023)", fontsize=9)
