"""Dang et al. 2023, Fig. 2 style: the synthetic imbalanced experiment with predicted vs simulated class lengths.

n = [200, 100, 50, 50], d = 64, depth 1 and 6 (quick: n = [20, 10, 5, 5], d = 8, depth 1 and 3):
squared norms of the end-to-end classifier rows and of the class means
at the end of gradient flow (bars) against the global minimiser's (markers).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import ufm as sim
from solvable.theory import ufm as th


__all__ = ["compute", "draw", "SIZE"]


#: Figure size in inches (width, height).
SIZE = (8, 5)


def compute(quick: bool = False) -> dict[str, Any]:
    n, d, depths = ((20, 10, 5, 5), 8, (1, 3)) if quick else ((200, 100, 50, 50), 64, (1, 6))
    lam = 5e-3 if quick else 1e-3
    out: dict[str, Any] = {"n": n, "depths": depths}
    for M in depths:
        problem = sim.Problem(n=n, d=d, loss="mse", lambda_W=lam, lambda_H=lam, depth=M)
        traj = sim.simulate(problem, alpha=[0.6 if M > 1 else 0.1], t_max=2e4, rtol=1e-8, grad_tol=1e-8,
                            record_metrics=False)
        W, H = traj.final["W"][0], traj.final["H"][0]
        bounds = np.concatenate([[0], np.cumsum(n)])
        means = np.stack([H[:, bounds[k] : bounds[k + 1]].mean(1) for k in range(len(n))], 1)
        geo = th.mse_geometry(n, lam, lam, depth=M)
        out[M] = {"w": np.sum(W**2, 1), "h": np.sum(means**2, 0), "w_pred": geo.w_norms_sq, "h_pred": geo.h_norms_sq}
    return out


def draw(fig: Any, data: dict[str, Any]) -> None:
    K = len(data["n"])
    for i, M in enumerate(data["depths"]):
        for j, (key, label) in enumerate((("w", "||w_k||^2"), ("h", "||mean_k||^2"))):
            ax = fig.add_subplot(len(data["depths"]), 2, 2 * i + j + 1)
            ax.bar(np.arange(K), data[M][key], color="C0", alpha=0.6, label="gradient flow")
            ax.plot(np.arange(K), data[M][key + "_pred"], "o", color="C3", label="global minimiser")
            ax.set_xticks(np.arange(K), [f"n={k}" for k in data["n"]], fontsize=7)
            ax.set_title(f"depth {M}: {label}", fontsize=8)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.suptitle("Imbalanced MSE neural collapse (Dang et al. 2023)", fontsize=9)
