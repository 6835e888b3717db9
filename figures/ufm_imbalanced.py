"""Dang et al. 2023, Fig. 2 style: the synthetic imbalanced experiment with predicted vs simulated class lengths.

n = [200, 100, 50, 50], d = 64, lambda = 1e-3, depth 1 and 6 (quick: n = [20, 10, 5, 5], d = 8, depth 1 and 3):
squared norms of the end-to-end classifier rows and of the class means
at the end of gradient flow (bars) against the global minimiser's (markers).

The deep head starts from entries of standard deviation 1/sqrt(d), layers of spectral norm about 2 (0.125
at d = 64). The start matters at depth 6: from 0.6 (this figure's old full-size start) the initial loss is
about 9e7 and the flow is so stiff that the integrator spends its 200 000 steps by t = 0.008 (status
max_steps: lengths near 0 and class means 10-20 times too long, drawn as if a result); from 0.07 (about
PyTorch's default scale) it ends in a local minimum where the two minority classes have collapsed (z = 0 is a
local minimum of the per-class objective for M >= 2). From 1/sqrt(d) it reaches the global minimiser: the
lengths match to 4 digits and the objective to 1e-12.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import ufm as sim
from solvable.theory import ufm as th


__all__ = ["compute", "draw", "SIZE"]


#: Figure size in inches (width, height).
SIZE = (8, 5)


def compute(quick: bool = False, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    n, d, depths = ((20, 10, 5, 5), 8, (1, 3)) if quick else ((200, 100, 50, 50), 64, (1, 6))
    lam = 5e-3 if quick else 1e-3
    out: dict[str, Any] = {"n": n, "depths": depths, "not_converged": []}
    for M in depths:
        problem = sim.Problem(n=n, d=d, loss="mse", lambda_W=lam, lambda_H=lam, depth=M)
        traj = sim.simulate(problem, alpha=[d**-0.5 if M > 1 else 0.1], t_max=2e4, rtol=1e-8, grad_tol=1e-8,
                            record_metrics=False, backend=backend, device=device)
        W, H = traj.final["W"][0], traj.final["H"][0]
        bounds = np.concatenate([[0], np.cumsum(n)])
        means = np.stack([H[:, bounds[k] : bounds[k + 1]].mean(1) for k in range(len(n))], 1)
        geo = th.mse_geometry(n, lam, lam, depth=M)
        status = str(traj.status[0])
        value, pred_value = float(traj.observables["loss"][0, -1]), _value(n, lam, M, geo.z)
        out[M] = {"w": np.sum(W**2, 1), "h": np.sum(means**2, 0), "w_pred": geo.w_norms_sq, "h_pred": geo.h_norms_sq,
                  "status": status, "value": value, "predicted_value": pred_value}
        if status != "converged":
            out["not_converged"].append(f"depth {M}: the flow stopped with status {status} at t = "
                                        f"{traj.stop_time[0]:.3g} (objective {value:.4g}, global minimum "
                                        f"{pred_value:.4g}); its bars are hatched, not a result")
    return out


def _value(n: tuple[int, ...], lam: float, M: int, z: np.ndarray) -> float:
    """The global minimum of the objective (Dang et al.'s per-class reduction, see theory.ufm.mse_geometry)."""
    N = sum(n)
    c = (M + 1) / 2 * (lam**M * lam) ** (1 / (M + 1))
    return float(np.sum((np.sqrt(n) - z) ** 2 / (2 * N) + c * z ** (2 / (M + 1))))


def draw(fig: Any, data: dict[str, Any]) -> None:
    K = len(data["n"])
    for i, M in enumerate(data["depths"]):
        for j, (key, label) in enumerate((("w", "||w_k||^2"), ("h", "||mean_k||^2"))):
            ax = fig.add_subplot(len(data["depths"]), 2, 2 * i + j + 1)
            done = data[M]["status"] == "converged"
            ax.bar(np.arange(K), data[M][key], color="C0" if done else "0.8", alpha=0.6, hatch=None if done else "//",
                   label="gradient flow" if done else f"gradient flow, {data[M]['status']} (not a result)")
            ax.plot(np.arange(K), data[M][key + "_pred"], "o", color="C3", label="global minimiser")
            ax.set_xticks(np.arange(K), [f"n={k}" for k in data["n"]], fontsize=7)
            ax.set_title(f"depth {M}: {label}", fontsize=8)
            ax.set_xlabel("class (size)", fontsize=7)
            ax.set_ylabel(label, fontsize=7)
            if (i == 0 and j == 0) or not done:
                ax.legend(fontsize=7)
    fig.suptitle("Imbalanced MSE neural collapse (Dang et al. 2023)", fontsize=9)
