"""Levi, Beck & Bar-Sinai 2024, Fig. 1: grokking in a linear teacher-student model.

Training and test accuracy (fraction of points with squared error below eps)
of gradient descent, for lambda = d_in/N_tr in {0.1, 0.9, 1.5}, d_in = 1000,
d_out = 1, eta = 0.01, eps = 1e-3: simulation (solid) over the
Marchenko-Pastur predictions (dashed). Test accuracy lags training accuracy;
for lambda > 1 it never arrives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import deep_linear as sim
from solvable.theory import deep_linear as th


__all__ = ["compute", "draw", "SIZE"]


#: Figure size in inches (width, height).
SIZE = (10, 3.4)


def compute(quick: bool = False) -> dict[str, Any]:
    d_in, eta, eps = (200 if quick else 1000), 0.01, 1e-3
    steps = 3000 if quick else 40000
    t = np.unique(np.geomspace(1, steps, 150).astype(int))
    out: dict[str, Any] = {"t": t, "lams": [0.1, 0.9, 1.5], "eps": eps}
    for lam in out["lams"]:
        traj = sim.simulate_teacher_student(d_in, lam, eta, steps, record_at=t, seed=0)
        tr, te = th.grokking_losses(t, lam, eta)
        out[lam] = {"sim_train": th.grokking_accuracy(traj.observables["train_loss"][0], eps),
                    "sim_test": th.grokking_accuracy(traj.observables["test_loss"][0], eps),
                    "pred_train": th.grokking_accuracy(tr, eps), "pred_test": th.grokking_accuracy(te, eps)}
    return out


def draw(fig: Any, data: dict[str, Any]) -> None:
    for i, lam in enumerate(data["lams"]):
        ax = fig.add_subplot(1, 3, i + 1)
        d = data[lam]
        ax.semilogx(data["t"], d["sim_train"], color="C0", label="train (sim)")
        ax.semilogx(data["t"], d["sim_test"], color="C3", label="test (sim)")
        ax.semilogx(data["t"], d["pred_train"], "--", color="C0", lw=1, label="train (MP)")
        ax.semilogx(data["t"], d["pred_test"], "--", color="C3", lw=1, label="test (MP)")
        ax.set_title(rf"$\lambda$ = {lam}", fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(rf"accuracy ($\epsilon$ = {data['eps']:g})")
        if i == 0:
            ax.legend(fontsize=6)
    fig.suptitle("Grokking in linear estimators (Levi et al. 2024, Fig. 1)", fontsize=9)
