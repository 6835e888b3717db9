"""Gunasekar et al. 2017 / Arora et al. 2019 style: how far the small-init limit is from the nuclear-norm solution.

Matrix completion (quick: 20 x 20 rank 2 with 160 entries; full: 50 x 50 rank 3 with 600 entries), GD from
end-to-end scale alpha for depths 2, 3 and 4 (constant steps 0.5, 0.3, 0.3). Left: the relative distance of the
final matrix to the minimum nuclear-norm solution; right: to the ground truth, with the nuclear-norm solution's
own error for reference. Deeper factorisations move away from the nuclear norm and towards M* as alpha shrinks.
Runs that have not converged within the step budget are drawn with open markers (where they stand, not a
limit) and listed on the figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import matrix_sensing as sim
from solvable.theory import matrix_sensing as th

__all__ = ["compute", "draw", "SIZE"]

#: Figure size in inches (width, height).
SIZE = (10, 3.6)


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    """Distances to the nuclear-norm solution and to M* for depths 2-4 over an alpha grid."""
    n, r, m, steps = (20, 2, 160, 15_000) if quick else (50, 3, 600, 30_000)
    problem = sim.Problem.random(n, n, r, m=m, operator="completion", seed=seed)
    nuclear = th.min_nuclear_norm(mask=problem.mask, y=problem.M_star[problem.mask]).x
    alphas = np.array([1e-1, 1e-2, 1e-3, 1e-4])
    out: dict[str, Any] = {"alpha": alphas, "depths": (2, 3, 4), "to_nuclear": {}, "to_truth": {}, "n": n, "r": r,
                           "m": m, "not_converged": []}
    for depth in out["depths"]:
        traj = sim.simulate(problem, alphas, "gd", k=n, factorisation="deep", depth=depth,
                            lr=0.5 if depth == 2 else 0.3, steps=steps, t_eval=[0, steps], record_sv=False,
                            seed=seed, backend=backend, device=device)
        M = traj.final["M"]
        out["to_nuclear"][depth] = np.linalg.norm(M - nuclear, axis=(1, 2)) / np.linalg.norm(nuclear)
        out["to_truth"][depth] = np.linalg.norm(M - problem.M_star, axis=(1, 2)) / np.linalg.norm(problem.M_star)
        out.setdefault("converged", {})[depth] = np.asarray(traj.status) == "converged"
        moving = np.asarray(traj.status) != "converged"
        if moving.any():
            out["not_converged"].append(
                f"depth {depth}, alpha = {', '.join(f'{a:g}' for a in alphas[moving])}: "
                f"{'/'.join(sorted(set(np.asarray(traj.status)[moving])))}, final loss <= "
                f"{traj.observables['loss'][moving, -1].max():.0e} (open markers)")
    out["nuclear_error"] = float(np.linalg.norm(nuclear - problem.M_star) / np.linalg.norm(problem.M_star))
    return out


def draw(fig: Any, data: dict[str, Any]) -> None:
    """Two panels against alpha: distance to the nuclear-norm solution, and to the ground truth."""
    for p, key in enumerate(("to_nuclear", "to_truth")):
        ax = fig.add_subplot(1, 2, p + 1)
        for i, depth in enumerate(data["depths"]):
            values, done = np.maximum(data[key][depth], 1e-16), data["converged"][depth]
            ax.loglog(data["alpha"], values, "-", color=f"C{i}", label=f"depth {depth}")
            ax.loglog(data["alpha"][done], values[done], "o", color=f"C{i}")
            # runs still moving at the end of the budget: where they stand, not a limit
            ax.loglog(data["alpha"][~done], values[~done], "o", mfc="none", color=f"C{i}")
        if key == "to_truth":
            ax.axhline(data["nuclear_error"], color="k", ls="--", lw=1, label="nuclear-norm solution")
        ax.set_xlabel(r"$\alpha$ (end-to-end initial scale)")
        ax.set_ylabel("relative distance")
        ax.set_title("to the minimum nuclear-norm solution" if p == 0 else r"to the ground truth $M^\star$", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"Matrix completion {data['n']} x {data['n']}, rank {data['r']}, {data['m']} entries "
                 f"(Gunasekar et al. 2017; Arora et al. 2019)", fontsize=9)
