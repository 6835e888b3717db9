"""Tarzanagh, Li, Thrampoulidis & Oymak 2023: correlation of the attention weights with the Att-SVM direction.

Their setting: n = 6 sequences of T = 8 unit-norm tokens in d = 10, the query the first token, a fixed head.
Normalised GD on W (against the Frobenius-norm SVM of the tokens it selects) and on K Q^T (against the
nuclear-norm SVM), from ||W_0|| = 0.01.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims.lsa import softmax as soft
from solvable.theory import lsa as th

__all__ = ["compute", "draw", "SIZE"]

#: Figure size in inches (width, height).
SIZE = (6, 4)


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    """Correlation against iteration for W and K Q^T, and the limits' singular values."""
    n, T, d = (4, 5, 6) if quick else (6, 8, 10)
    steps, lr_w, lr_kq = (5000, 0.05, 0.002) if quick else (50000, 0.01, 0.002)
    problem = soft.Problem.random(n, T, d, seed=seed)
    rec = np.unique(np.geomspace(1, steps, 60).astype(int))
    out: dict[str, Any] = {"steps": rec, "n": n, "T": T, "d": d, "not_converged": []}
    for par, norm, lr in (("W", "fro", lr_w), ("KQ", "nuc", lr_kq)):
        traj = soft.simulate(problem, 0.01, "ngd", lr=lr, steps=steps, parameterisation=par, t_eval=rec, seed=seed,
                             backend=backend, device=device)
        sel = traj.observables["attention"][0, -1].argmax(axis=1)
        svm = {k: th.att_svm(problem.X, problem.z, sel, k) for k in ("fro", "nuc")}
        out[par] = {"corr": soft.correlation(traj.observables["W"][0], svm[norm].x),
                    "corr_other": soft.correlation(traj.observables["W"][0], svm["nuc" if norm == "fro" else "fro"].x),
                    "sv": np.linalg.svd(traj.final["W"][0], compute_uv=False),
                    "sv_svm": {k: np.linalg.svd(v.x, compute_uv=False) for k, v in svm.items()}}
    return out


def draw(fig: Any, data: dict[str, Any]) -> None:
    """Correlation against iteration (log x)."""
    ax = fig.add_subplot(1, 1, 1)
    ax.semilogx(data["steps"], data["W"]["corr"], "C0", label="$W$ vs Frobenius Att-SVM")
    ax.semilogx(data["steps"], data["W"]["corr_other"], "C0:", label="$W$ vs nuclear Att-SVM")
    ax.semilogx(data["steps"], data["KQ"]["corr"], "C1", label=r"$KQ^\top$ vs nuclear Att-SVM")
    ax.semilogx(data["steps"], data["KQ"]["corr_other"], "C1:", label=r"$KQ^\top$ vs Frobenius Att-SVM")
    ax.set_xlabel("iteration (normalised GD)")
    ax.set_ylabel("correlation coefficient")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"n = {data['n']}, T = {data['T']}, d = {data['d']} (Tarzanagh et al. 2023)", fontsize=8)
    ax.legend(fontsize=7)
