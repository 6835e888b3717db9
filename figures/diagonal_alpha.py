"""Woodworth et al. 2020, Fig. 1 style: where the diagonal network's gradient flow ends, as a function of alpha.

Three panels against the initial scale alpha: the relative distance of the
limit to the minimum-l1 and the minimum-l2 interpolators, and the excess test
error :math:`\\|w - w^*\\|^2` (the population risk above the noise floor for
isotropic Gaussian inputs). Gradient-flow limits (dots, one batched
simulation) lie on the prediction :math:`\\arg\\min Q_\\alpha` (lines, convex
programs on a finer grid).

Full size follows the paper's sparse-regression set-up: d = 1000, n = 100, a
5-sparse teacher with entries 1/sqrt(5), label-noise variance 0.01.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import diagonal as sim
from solvable.theory import diagonal as th


__all__ = ["compute", "draw", "SIZE"]


#: Figure size in inches (width, height).
SIZE = (10, 3.4)


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    """Simulated and predicted limits over an alpha grid."""
    if quick:
        problem = sim.Problem.random(30, 80, 3, noise=0.1, seed=seed)
        sim_alphas, pred_alphas = np.geomspace(1e-2, 10, 4), np.geomspace(1e-2, 10, 9)
    else:
        problem = sim.Problem.random(100, 1000, 5, noise=0.1, seed=seed)
        sim_alphas, pred_alphas = np.geomspace(1e-3, 10, 9), np.geomspace(1e-3, 10, 33)
    # rtol 1e-12: at alpha = 10 the limit sits ~1e-7 from min-l2, and w = u^2 - v^2 carries an
    # absolute error ~ 2 rtol alpha^2 from the integration of u and v.
    traj = sim.simulate(problem, sim_alphas, t_max=3e5, rtol=1e-12, backend=backend, device=device)
    l1 = th.min_l1_interpolator(problem.X, problem.y).x
    l2 = th.min_l2_interpolator(problem.X, problem.y).x
    pred = np.array([th.implicit_bias(problem.X, problem.y, a).x for a in pred_alphas])

    def summary(w: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "to_l1": np.linalg.norm(w - l1, axis=-1) / np.linalg.norm(l1),
            "to_l2": np.linalg.norm(w - l2, axis=-1) / np.linalg.norm(l2),
            "test_error": np.sum((w - problem.w_star) ** 2, axis=-1),
        }

    return {"sim_alpha": sim_alphas, "pred_alpha": pred_alphas, "sim": summary(traj.final["w"]),
            "pred": summary(pred), "status": traj.status, "n": problem.n, "d": problem.d,
            "not_converged": [f"alpha = {a:.3g}: {st} (open marker)" for a, st in zip(sim_alphas, traj.status)
                              if st != "converged"]}


def draw(fig: Any, data: dict[str, Any]) -> None:
    """Draw the three panels on ``fig``."""
    titles = {"to_l1": r"distance to min-$\ell_1$", "to_l2": r"distance to min-$\ell_2$", "test_error": "excess test error"}
    for i, key in enumerate(("to_l1", "to_l2", "test_error")):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.loglog(data["pred_alpha"], np.maximum(data["pred"][key], 1e-16), "-", color="C0",
                  label=r"$\arg\min\, Q_\alpha$ (prediction)")
        done = np.asarray(data["status"]) == "converged"
        values = np.maximum(data["sim"][key], 1e-16)
        ax.loglog(data["sim_alpha"][done], values[done], "o", color="C3", label="gradient flow")
        if not done.all():
            ax.loglog(data["sim_alpha"][~done], values[~done], "o", mfc="none", color="0.5",
                      label="not converged (not a result)")
        ax.set_xlabel(r"initial scale $\alpha$")
        ax.set_ylabel(r"$\|w - w^\star\|^2$" if key == "test_error" else "relative distance")
        ax.set_title(titles[key], fontsize=9)
        if i == 0:
            ax.legend(fontsize=7)
    fig.suptitle(f"Diagonal linear network, n={data['n']}, d={data['d']} (Woodworth et al. 2020, Fig. 1 style)",
                 fontsize=9)
