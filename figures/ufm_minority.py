"""Fang et al. 2021, Fig. 3 style: minority collapse against the imbalance ratio.

Cross-entropy UFM with two majority and two minority classes: the cosine
between the two minority classifiers from the convex program (line) and from
gradient flow (dots) rises with the ratio n_major / n_minor.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import ufm as sim
from solvable.theory import ufm as th


__all__ = ["compute", "draw", "SIZE"]


def _cos(W: np.ndarray) -> float:
    g = W @ W.T
    return float(g[2, 3] / np.sqrt(g[2, 2] * g[3, 3]))


#: Figure size in inches (width, height).
SIZE = (6, 4)


def compute(quick: bool = False, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    lam = 5e-3
    ratios = [1, 4, 16] if quick else [1, 2, 4, 8, 16, 32, 64, 128]
    grid = np.unique(np.geomspace(1, ratios[-1], 20 if quick else 40).astype(int))
    prog = []
    for r in grid:
        U, s, _ = np.linalg.svd(th.ce_convex_program((2 * r, 2 * r, 2, 2), lam, lam).x, full_matrices=False)
        prog.append(_cos(U * np.sqrt(s)))
    simulated, status = [], []
    for r in ratios:
        problem = sim.Problem(n=(2 * r, 2 * r, 2, 2), d=6, loss="ce", lambda_W=lam, lambda_H=lam)
        traj = sim.simulate(problem, alpha=[0.1], t_max=3e4, grad_tol=1e-8, record_metrics=False, backend=backend,
                            device=device)
        simulated.append(_cos(traj.final["W"][0]))
        status.append(str(traj.status[0]))
    return {"grid": grid, "prog": np.array(prog), "ratios": ratios, "sim": np.array(simulated), "status": status,
            "not_converged": [f"ratio {r}: {st} (open marker)" for r, st in zip(ratios, status) if st != "converged"]}


def draw(fig: Any, data: dict[str, Any]) -> None:
    ax = fig.add_subplot(1, 1, 1)
    ax.semilogx(data["grid"], data["prog"], "-", label="convex program")
    done = np.asarray(data["status"]) == "converged"
    ratios = np.asarray(data["ratios"])
    ax.semilogx(ratios[done], data["sim"][done], "o", label="gradient flow")
    if not done.all():
        ax.semilogx(ratios[~done], data["sim"][~done], "o", mfc="none", color="0.5", label="not converged (not a result)")
    ax.set_xlabel(r"imbalance ratio $n_{\rm major} / n_{\rm minor}$")
    ax.set_ylabel(r"$\cos(w_{\rm minor,1}, w_{\rm minor,2})$")
    ax.legend(fontsize=8)
    ax.set_title("Minority collapse (Fang et al. 2021)", fontsize=9)
