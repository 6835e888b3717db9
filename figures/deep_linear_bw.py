"""Bréchet et al. 2023's generative deep linear network: learning a covariance with the Bures-Wasserstein loss.

A depth-3 generator of rank at most k = 3 fitted to a 6 x 6 target covariance from a small random start,
by gradient flow on B^2(S0, WW^T) (tau = 0): the covariance's components on the target's eigenvectors
(solid) rise one after the other to the kept eigenvalues lambda_1..lambda_k (dashed) and the others stay
at zero, the top-k truncation of theory.deep_linear.bw; the loss (right) rests at the saddles of the
top-j truncations, j = 0 (W = 0), 1, ..., k - 1 (dotted), on its way to the minimum. This library's figure (the
paper's text could not be read; see the claims deep_linear.bw_critical_points and bw_convergence).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims.deep_linear import bw as sim
from solvable.theory.deep_linear import bw as th

__all__ = ["compute", "draw", "SIZE"]

#: Figure size in inches (width, height).
SIZE = (9, 3.6)


def compute(quick: bool = False, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    d, k = 6, 3
    problem = sim.Problem.random(d, hidden=(k, k + 1), latent=d, seed=0)
    t_max = 40.0
    t = np.linspace(0, t_max, 81 if quick else 401)
    traj = sim.simulate(problem, 1e-4, t_max=t_max, t_eval=t, rtol=1e-8 if quick else 1e-10, backend=backend,
                        device=device)
    lam, _ = problem.eigh()
    # the saddles a small start visits: the top-j truncations, j = 0 (W = 0) .. k, at loss sum_{i > j} lambda_i
    path = [c.loss for j in range(k + 1) for c in th.bw_critical_points(problem.covariance, k)
            if c.support == tuple(range(j))]
    return {"t": traj.times, "spectrum": traj.observables["spectrum"][0], "loss": traj.observables["loss"][0],
            "eigenvalues": lam, "k": k, "path": path,
            "minimum": th.bw_minimiser(problem.covariance, k).loss}


def draw(fig: Any, data: dict[str, Any]) -> None:
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, lam in enumerate(data["eigenvalues"]):
        left.plot(data["t"], data["spectrum"][:, i], color=f"C{i}", label=rf"$\lambda_{{{i + 1}}}$ = {lam:.2f}")
        left.axhline(lam if i < data["k"] else 0.0, color=f"C{i}", ls="--", lw=0.7)
    left.set_xlabel("$t$")
    left.set_ylabel(r"$v_i^\top W W^\top v_i$")
    left.set_title(f"covariance on the target's eigenvectors (k = {data['k']})", fontsize=8)
    left.legend(fontsize=6)
    right.plot(data["t"], data["loss"], "k-")
    for j, v in enumerate(data["path"][:-1]):
        right.axhline(v, color="C7", ls=":", lw=0.7)
        right.annotate(f"top-{j}", (data["t"][-1], v), fontsize=6, ha="right", va="bottom", color="C7")
    right.axhline(data["minimum"], color="C3", ls="--", lw=0.8, label=r"$L^\star$ (top-$k$ truncation)")
    right.set_xlabel("$t$")
    right.set_ylabel(r"$B^2(S_0, WW^\top)$")
    right.set_title("loss; dotted: the saddles at the top-j truncations", fontsize=8)
    right.legend(fontsize=7)
