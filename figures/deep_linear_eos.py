"""Cohen et al. 2021, Fig. 1 style, on a scalar network: sharpness climbs to 2/eta and stays; the loss is non-monotone.

Gradient descent on f = w1 w2 w3 w4 fitting y = 1 from an unbalanced start
whose gradient-flow solution is sharper than 2/eta (Kreisler et al. 2023's
edge-of-stability regime). Left: training loss; right: sharpness (top Hessian
eigenvalue, Lanczos on exact HVPs) and the GFS sharpness (closed form), with
the 2/eta line.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import deep_linear as sim
from solvable.theory import deep_linear as th


__all__ = ["compute", "draw", "SIZE"]

START = np.array([0.3, 0.4, 0.5, 2.5])


#: Figure size in inches (width, height).
SIZE = (10, 3.6)


def compute(quick: bool = False, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    problem = sim.Problem.scalar(4, 1.0)
    s_gfs = th.gfs_sharpness(START, 1.0)
    etas = np.array([1.15, 1.35]) * 2 / s_gfs
    steps = 400 if quick else 1500
    t = np.arange(steps + 1)
    traj = sim.simulate(problem, layers=[np.repeat(START[j], 2).reshape(2, 1, 1) for j in range(4)], algorithm="gd",
                        lr=etas, steps=steps, t_eval=t, record_sharpness=True, sharpness_iters=4, record_layers=True,
                        backend=backend, device=device)
    gfs = np.array([[th.gfs_sharpness(w, 1.0) if np.prod(w) > 0 else np.nan for w in traj.observables["params"][b]]
                    for b in range(2)])
    return {"t": t, "etas": etas, "loss": traj.observables["loss"], "sharpness": traj.observables["sharpness"],
            "gfs": gfs}


def draw(fig: Any, data: dict[str, Any]) -> None:
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for b, eta in enumerate(data["etas"]):
        ax1.semilogy(data["t"], data["loss"][b], color=f"C{b}", label=rf"$\eta$ = {eta:.3f}")
        ax2.plot(data["t"], data["sharpness"][b], color=f"C{b}", label=rf"sharpness, $\eta$ = {eta:.3f}")
        ax2.plot(data["t"], data["gfs"][b], "--", color=f"C{b}", lw=1, label="GFS sharpness")
        ax2.axhline(2 / eta, color=f"C{b}", ls=":", lw=1)
    ax1.set_xlabel("step")
    ax1.set_ylabel("training loss")
    ax1.legend(fontsize=7)
    ax2.set_xlabel("step")
    ax2.set_ylabel(r"sharpness (dotted: $2/\eta$)")
    ax2.legend(fontsize=6)
    fig.suptitle("Edge of stability in a scalar network (Cohen et al. 2021; Kreisler et al. 2023)", fontsize=9)
