"""Zhang, Frei & Bartlett 2024, Thm 4.1: the learned W^KQ against Gamma^-1.

The full one-layer LSA (every parameter of W^PV's last row and of W^KQ) is trained by GD on sampled prompts
from ZFB's initialisation. The pair (W^PV, W^KQ) is defined up to r -> c r, W^KQ -> W^KQ / c, so the map is
drawn as W^PV_22 W^KQ (its top-left block is the predictor A^T; Thm 4.1: Gamma^-1), beside the prediction
blockdiag(Gamma^-1, 0); the last row and column are the parameters ZFB's flow keeps at zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import lsa as sim
from solvable.theory import lsa as th

__all__ = ["compute", "draw", "SIZE"]

#: Figure size in inches (width, height).
SIZE = (8, 3.4)


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    """Train the full LSA on prompts with a rotated covariance; return learned and predicted W^KQ."""
    d, N, P, steps = (3, 5, 3000, 2000) if quick else (4, 10, 40000, 4000)
    Lam = sim.rotated_covariance([2.0, 1.0, 0.5] if quick else [3.0, 1.5, 1.0, 0.5], seed)
    problem = sim.Problem.random(d, N, n_prompts=P, Lambda=Lam, seed=seed)
    traj = sim.simulate(problem, 0.1, "gd", architecture="full", lr=0.05, steps=steps, t_eval=[0, steps], seed=seed,
                        backend=backend, device=device)
    K_pred = np.zeros((d + 1, d + 1))
    K_pred[:d, :d] = np.linalg.inv(th.gamma(Lam, N))
    bad = [] if traj.status[0] != "diverged" else ["GD diverged"]
    learned = traj.final["W_PV"][0, d, d] * traj.final["W_KQ"][0]
    err = float(np.linalg.norm(learned - K_pred) / np.linalg.norm(K_pred))
    return {"learned": learned, "predicted": K_pred, "error": err, "d": d, "N": N, "P": P, "not_converged": bad}


def draw(fig: Any, data: dict[str, Any]) -> None:
    """Two heat maps on one colour scale."""
    axes = fig.subplots(1, 2)
    vmax = float(np.abs(data["predicted"]).max())
    for ax, key, title in ((axes[0], "learned", f"learned W^PV_22 W^KQ (GD, P = {data['P']} prompts)"),
                           (axes[1], "predicted", "[[Gamma^-1, 0], [0, 0]] (Thm 4.1)")):
        im = ax.imshow(data[key], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(title, fontsize=8)
        ax.set_xticks(range(data["d"] + 1))
        ax.set_yticks(range(data["d"] + 1))
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    bar = fig.colorbar(im, ax=axes[1], shrink=0.8)
    bar.ax.set_xlabel("entry")
    bar.ax.set_ylabel("value")
    fig.suptitle(f"d = {data['d']}, N = {data['N']}: relative difference {data['error']:.2g} "
                 "(sampling error of the finite prompt set)", fontsize=8)
