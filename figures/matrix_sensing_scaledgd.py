"""Xu, Shen, Ma & Chi 2023, Fig. 2 style: iterations to a fixed error against the condition number.

Symmetric Gaussian sensing, n = 20, rank 3, m = 800, over-parameterised (k = 5), both methods on the
paper's loss (1/4)||A(XX^T) - y||^2 with eta = 0.2 from alpha = 1e-6; ScaledGD(lambda) with
lambda = sigma_r / 10. GD's count grows like kappa (dashed: the commuting closed form), ScaledGD's hardly at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import matrix_sensing as sim
from solvable.sims.matrix_sensing.measure import iterations_to
from solvable.theory import matrix_sensing as th

__all__ = ["compute", "draw", "SIZE"]

#: Figure size in inches (width, height).
SIZE = (6, 4)


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    """Iterations to relative error 1e-3 for GD and ScaledGD(lambda) over a kappa grid."""
    n, r, m = (12, 2, 400) if quick else (20, 3, 800)
    kappas = np.array([1.0, 10.0, 100.0]) if quick else np.geomspace(1, 1000, 7)
    alpha, lr, eps = 1e-6, 0.2, 1e-3
    gd, scaled, predicted, bad = [], [], [], []
    for kappa in kappas:
        problem = sim.Problem.random(n, n, r, m=m, kappa=kappa, symmetric=True, operator="symmetric", seed=seed)
        sigma = problem.singular_values[:r]
        steps = int(3 * th.gd_iterations(sigma, alpha**2, eps * np.linalg.norm(sigma), lr, 0.25)) + 100
        kw = dict(k=r + 2, loss_scale=0.25, record_sv=False, seed=seed, backend=backend, device=device)
        g = sim.simulate(problem, alpha, "gd", lr=lr, steps=steps, t_eval=np.arange(0, steps + 1), **kw)
        s = sim.simulate(problem, alpha, "scaledgd", lr=lr, damping=float(sigma[-1]) / 10, steps=3000,
                         t_eval=np.arange(0, 3001), **kw)
        gd.append(iterations_to(g.times, g.observables["rel_error"][0], eps))
        scaled.append(iterations_to(s.times, s.observables["rel_error"][0], eps))
        predicted.append(th.gd_iterations(sigma, alpha**2 * (r + 2), eps * np.linalg.norm(sigma), lr, 0.25))
        bad += [f"kappa = {kappa:g}, {name}: did not reach {eps:g}" for name, v in (("GD", gd[-1]),
                                                                                 ("ScaledGD", scaled[-1]))
                if not np.isfinite(v)]
    return {"kappa": kappas, "gd": np.array(gd), "scaledgd": np.array(scaled), "predicted": np.array(predicted),
            "n": n, "r": r, "m": m, "eps": eps, "not_converged": bad}


def draw(fig: Any, data: dict[str, Any]) -> None:
    """Iterations against kappa, log-log."""
    ax = fig.add_subplot(1, 1, 1)
    ax.loglog(data["kappa"], data["gd"], "o-", label="GD")
    ax.loglog(data["kappa"], data["predicted"], "k--", lw=1, label="GD: commuting closed form")
    ax.loglog(data["kappa"], data["scaledgd"], "s-", label=r"ScaledGD($\lambda = \sigma_r/10$)")
    ax.set_xlabel(r"condition number $\kappa$")
    ax.set_ylabel(f"iterations to relative error {data['eps']:g}")
    ax.set_title(f"n = {data['n']}, r = {data['r']}, k = r + 2, m = {data['m']} (Xu et al. 2023)", fontsize=9)
    ax.legend(fontsize=7)
