"""Zhang, Frei & Bartlett 2024, Thm 4.1: the learned W^KQ block against its prediction ||Gamma^-1||_F^(-1/2) Gamma^-1.

The full one-layer LSA (every parameter of W^PV's last row and of W^KQ) is trained by GD on sampled prompts
from ZFB's initialisation; its top-left W^KQ block and the predicted block are drawn side by side, with the
parameters ZFB's flow keeps at zero (the last row and column) shown too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import lsa as sim
from solvable.theory import lsa as th

from .lsa_risk import _rotated

__all__ = ["compute", "draw", "SIZE"]

#: Figure size in inches (width, height).
SIZE = (8, 3.4)


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy") -> dict[str, Any]:
    """Train the full LSA on prompts with a rotated covariance; return learned and predicted W^KQ."""
    d, N, P, steps = (3, 5, 3000, 2000) if quick else (4, 10, 40000, 4000)
    Lam = _rotated([2.0, 1.0, 0.5] if quick else [3.0, 1.5, 1.0, 0.5], seed)
    problem = sim.Problem.random(d, N, n_prompts=P, Lambda=Lam, seed=seed)
    traj = sim.simulate(problem, 0.1, "gd", architecture="full", lr=0.05, steps=steps, t_eval=[0, steps], seed=seed,
                        backend=backend)
    u, U = th.flow_limit(Lam, N)
    K_pred = np.zeros((d + 1, d + 1))
    K_pred[:d, :d] = U
    bad = [] if traj.status[0] != "diverged" else ["GD diverged"]
    # the pair is defined up to r -> c r, W^KQ -> W^KQ / c; GD from ZFB's balanced start keeps them balanced
    return {"learned": traj.final["W_KQ"][0], "predicted": K_pred, "u_learned": float(traj.final["W_PV"][0, d, d]),
            "u_predicted": u, "d": d, "N": N, "P": P, "not_converged": bad}


def draw(fig: Any, data: dict[str, Any]) -> None:
    """Two heat maps on one colour scale."""
    axes = fig.subplots(1, 2)
    vmax = float(np.abs(data["predicted"]).max())
    for ax, key, title in ((axes[0], "learned", f"learned W^KQ (GD, P = {data['P']} prompts)"),
                           (axes[1], "predicted", "||Gamma^-1||^(-1/2) Gamma^-1 block (Thm 4.1)")):
        im = ax.imshow(data[key], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    fig.suptitle(f"d = {data['d']}, N = {data['N']}: W^PV_22 learned {data['u_learned']:.4f}, "
                 f"predicted {data['u_predicted']:.4f}", fontsize=8)
