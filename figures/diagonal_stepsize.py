"""Even, Pesme, Gunasekar & Flammarion 2023, Fig. 1 style: recovery against the step size, GD vs SGD.

A sparse regression problem, initial scale alpha; for a grid of step sizes up
to just below GD's stability limit, the excess test error ||w - w*||^2 of the
limit of GD and of SGD (batch size one), with gradient flow as the reference.
Large steps help SGD (its effective scale alpha_inf shrinks roughly uniformly)
and hurt GD (its shrinkage concentrates on the coordinates with large
gradients): see :func:`theory.diagonal.effective_alpha`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import diagonal as sim
from solvable.theory import diagonal as th


__all__ = ["compute", "draw", "SIZE"]


#: Figure size in inches (width, height).
SIZE = (6, 4)


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    problem = sim.Problem.random(20, 40, 3, seed=seed) if quick else sim.Problem.random(40, 100, 5, seed=seed)
    alpha = 0.1
    flow = sim.simulate(problem, alpha, t_max=3e5, backend=backend, device=device)
    u, v = flow.final["u"][0], flow.final["v"][0]
    # Each algorithm up to its own linear-stability limit at the flow's minimum (Wu & Su 2023):
    # 2 / lambda_max(H) for GD, 2 / tr(H) for SGD with batch size one.
    edges = {"gd": 2 / th.hessian_top(problem.X, u, v), "sgd": 2 / th.hessian_trace(problem.X, u, v)}
    fractions = np.linspace(0.1, 0.9, 4 if quick else 9)
    out: dict[str, Any] = {"fractions": fractions, "edges": edges,
                           "flow": float(np.sum((flow.final["w"][0] - problem.w_star) ** 2))}
    for name, kw in (("gd", {}), ("sgd", {"batch_size": 1})):
        traj = sim.simulate(problem, alpha, algorithm=name, lr=fractions * edges[name],
                            steps=60_000 if quick else 400_000, seed=seed, **kw, backend=backend, device=device)
        err = np.sum((traj.final["w"] - problem.w_star) ** 2, axis=1)
        out[name] = np.where(traj.status == "diverged", np.nan, err)
    return out


def draw(fig: Any, data: dict[str, Any]) -> None:
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(data["fractions"], data["gd"], "s-", label="GD")
    ax.plot(data["fractions"], data["sgd"], "o-", label="SGD (batch 1)")
    ax.axhline(data["flow"], color="k", ls="--", label="gradient flow")
    ax.set_xlabel(rf"step size / stability limit (GD: $2/\lambda_{{\max}}$ = {data['edges']['gd']:.3g}; "
                  rf"SGD: $2/\mathrm{{tr}}\, H$ = {data['edges']['sgd']:.3g})", fontsize=8)
    ax.set_ylabel(r"excess test error $\|w - w^\star\|^2$")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("Large steps help SGD, hurt GD (Even et al. 2023, Fig. 1 style)", fontsize=9)
