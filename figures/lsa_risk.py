"""Zhang, Frei & Bartlett 2024, Thm 4.2 / Cor. 4.3: the trained LSA's prediction error against test prompt length M.

For training lengths N, the flow's limit (ZFB's reduced coordinates on the population loss) is tested on fresh
prompts of length M (Monte Carlo, points with standard-error bars) beside the exact closed form
(``theory.lsa.test_risk``, lines) and ordinary least squares on the same test prompt (minimum-norm; it
interpolates the noiseless labels once M >= d, so its error drops to 0 there).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import lsa as sim
from solvable.theory import lsa as th

__all__ = ["compute", "draw", "SIZE"]

#: Figure size in inches (width, height).
SIZE = (6, 4)


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    """Risk curves (predicted), Monte Carlo risk of the trained LSA and of least squares, per N and M."""
    Lam = sim.rotated_covariance([2.0, 1.0, 0.5], seed)
    Ns = [5, 20] if quick else [5, 20, 100]
    Ms = np.array([1, 2, 5, 10, 30, 100]) if quick else np.array([1, 2, 3, 5, 10, 20, 50, 100, 200])
    P = 2000 if quick else 20000
    rng = np.random.default_rng(seed)
    root = np.linalg.cholesky(Lam)
    curves, bad = {}, []
    for N in Ns:
        traj = sim.simulate(sim.Problem(Lambda=Lam, N=N), 0.1, t_max=1e4, grad_tol=1e-9, seed=seed, backend=backend,
                            device=device)
        if traj.status[0] != "converged":
            bad.append(f"N = {N}: flow {traj.status[0]}")
        A = traj.final["A"][0]
        mc, se, ols = [], [], []
        for M in Ms:
            X = rng.standard_normal((P, M, 3)) @ root.T
            xq = rng.standard_normal((P, 3)) @ root.T
            w = rng.standard_normal((P, 3))
            y = np.einsum("pnd,pd->pn", X, w)
            h = np.einsum("pn,pnd->pd", y, X) / M
            err = (np.einsum("pd,de,pe->p", xq, A, h) - np.einsum("pd,pd->p", xq, w)) ** 2
            mc.append(err.mean())
            se.append(err.std() / np.sqrt(P))
            w_ls = np.einsum("pdn,pn->pd", np.linalg.pinv(X), y)
            ols.append(np.mean(np.einsum("pd,pd->p", xq, w_ls - w) ** 2))
        curves[N] = {"mc": np.array(mc), "se": np.array(se), "ols": np.array(ols),
                     "M_fine": np.unique(np.geomspace(1, Ms[-1], 60).astype(int)),
                     "predicted": None}
        curves[N]["predicted"] = np.array([th.test_risk(A, Lam, int(m)) for m in curves[N]["M_fine"]])
    return {"Ms": Ms, "curves": curves, "not_converged": bad}


def draw(fig: Any, data: dict[str, Any]) -> None:
    """Risk against M, log-log, one colour per training length N."""
    ax = fig.add_subplot(1, 1, 1)
    for i, (N, c) in enumerate(data["curves"].items()):
        ax.loglog(c["M_fine"], c["predicted"], color=f"C{i}", lw=1, label=f"$N$ = {N}: closed form")
        ax.errorbar(data["Ms"], c["mc"], yerr=2 * c["se"], fmt="o", color=f"C{i}", ms=4, label=f"$N$ = {N}: simulated")
    ols = data["curves"][next(iter(data["curves"]))]["ols"]
    keep = ols > 1e-12
    ax.loglog(data["Ms"][keep], ols[keep], "k^--", ms=4, lw=1, label=r"least squares on the prompt (0 for $M \geq d$)")
    ax.set_xlabel("test prompt length $M$")
    ax.set_ylabel(r"$\mathbb{E}\,(\hat y - \langle w, x_q\rangle)^2$")
    ax.set_title("trained LSA: prediction error against M (d = 3, Zhang-Frei-Bartlett Thm 4.2)", fontsize=8)
    ax.legend(fontsize=6)
