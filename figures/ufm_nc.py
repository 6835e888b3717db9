"""Papyan, Han & Donoho 2020 Fig. 6-9 style, in the UFM: NC1-NC4 against training time, MSE and cross-entropy.

Balanced classes, gradient flow from a small random start: within-class
variability (NC1), distance of the class means and of the classifier to the
simplex ETF (NC2), self-duality (NC3) and nearest-class-centre disagreement
(NC4) all fall to zero (MSE with an unregularised bias; CE bias-free).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import ufm as sim


__all__ = ["compute", "draw", "SIZE"]


#: Figure size in inches (width, height).
SIZE = (10, 3.6)


def compute(quick: bool = False, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    K, n = (4, 10) if quick else (10, 30)
    t = np.geomspace(0.1, 2e3 if quick else 1e4, 60)
    out: dict[str, Any] = {"t": t}
    for loss, bias in (("mse", 0.0), ("ce", None)):
        problem = sim.Problem(n=(n,) * K, d=K + 4, loss=loss, lambda_W=5e-3, lambda_H=5e-3, lambda_b=bias)
        traj = sim.simulate(problem, alpha=[0.1], t_max=float(t[-1]), t_eval=np.concatenate([[0.0], t]), rtol=1e-8,
                            backend=backend, device=device)
        out[loss] = {k: traj.observables[k][0, 1:] for k in ("nc1", "nc2", "nc2_w", "nc3", "nc4")}
    return out


def draw(fig: Any, data: dict[str, Any]) -> None:
    for i, loss in enumerate(("mse", "ce")):
        ax = fig.add_subplot(1, 2, i + 1)
        for key in ("nc1", "nc2", "nc2_w", "nc3", "nc4"):
            ax.loglog(data["t"], np.maximum(data[loss][key], 1e-17), label=key)
        ax.set_xlabel("time $t$ (gradient flow)")
        ax.set_ylabel("neural-collapse metric")
        ax.set_title(f"{loss.upper()} UFM" + (" (unregularised bias)" if loss == "mse" else ""), fontsize=9)
        if i == 0:
            ax.legend(fontsize=7)
    fig.suptitle("Neural collapse metrics along gradient flow", fontsize=9)
