"""Xiong, Ding & Du 2023, Fig. 1 style: error against iteration for exact and over-parameterisation.

Population matrix sensing, GD with eta = 0.1 on the library's loss (1/2)||XX^T - M*||^2, rank 3, kappa = 2.
Symmetric k = r converges linearly (dashed: the predicted rate 1 - 4 s eta sigma_r per step); symmetric
k > r only as 1/T^2 (dotted: p/(8 s eta T)^2); asymmetric k > r linearly again, at a rate that shrinks like
alpha^2 (from F0 = alpha F, G0 = alpha/3 G). Full size: n = 50 as in the paper; quick: n = 20.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import matrix_sensing as sim
from solvable.sims.matrix_sensing.measure import linear_rate
from solvable.theory import matrix_sensing as th

__all__ = ["compute", "draw", "SIZE"]

#: Figure size in inches (width, height).
SIZE = (10, 3.8)


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    """Squared errors against iterations for the four set-ups."""
    n, r, lr = (20 if quick else 50), 3, 0.1
    steps = 20_000 if quick else 100_000
    t_eval = np.unique(np.geomspace(1, steps, 300).astype(int))
    sym = sim.Problem.random(n, n, r, symmetric=True, operator="population", kappa=2.0, seed=seed)
    asym = sim.Problem.random(n, n, r, operator="population", kappa=2.0, seed=seed)
    kw = dict(lr=lr, steps=steps, t_eval=t_eval, record_sv=False, loss_tol=0.0, seed=seed, backend=backend,
              device=device)
    norm2 = float(np.sum(sym.M_star**2))
    curves = {}
    for label, problem, k, extra in (("symmetric, k = r", sym, r, {}), ("symmetric, k = r + 2", sym, r + 2, {}),
                                     ("asymmetric, k = r + 2, alpha = 0.1", asym, r + 2, {"beta": 0.1 / 3}),
                                     ("asymmetric, k = r + 2, alpha = 0.05", asym, r + 2, {"beta": 0.05 / 3})):
        alpha = 0.05 if "0.05" in label else 0.1
        traj = sim.simulate(problem, alpha, "gd", k=k, **extra, **kw)
        err2 = traj.observables["rel_error"][0] ** 2 * norm2
        curves[label] = {"err2": err2, "status": str(traj.status[0]),
                         "rate": linear_rate(traj.times, np.sqrt(err2), 1e-12, 1e-4)[0]}
    sigma_r = float(sym.singular_values[r - 1])
    T = t_eval.astype(float)
    # the predicted linear rate, drawn through the k = r curve where its error first falls below 1e-8
    exact = curves["symmetric, k = r"]["err2"]
    j = int(np.argmax(exact < 1e-8))
    linear = exact[j] * (1 - lr * th.exact_rate(sigma_r)) ** (2 * (T - T[j]))
    return {"T": T, "curves": curves, "n": n, "r": r, "lr": lr,
            "linear": np.where(T >= T[j] / 2, linear, np.nan),
            "tail": th.overparam_tail(2, T * lr),
            "not_converged": [f"{k}: {c['status']}" for k, c in curves.items() if c["status"] == "diverged"]}


def draw(fig: Any, data: dict[str, Any]) -> None:
    """Left: log-log (the 1/T^2 tail); right: semi-log (the linear rates)."""
    for p, scale in enumerate(("loglog", "semilogy")):
        ax = fig.add_subplot(1, 2, p + 1)
        plot = getattr(ax, scale)
        for i, (label, c) in enumerate(data["curves"].items()):
            rate = f" (fitted rate {c['rate']:.2e}/step)" if np.isfinite(c["rate"]) and "asym" in label else ""
            plot(data["T"], np.maximum(c["err2"], 1e-30), color=f"C{i}", label=label + rate)
        plot(data["T"], data["tail"], "k:", lw=1, label=r"$p / (8 s \eta T)^2$")
        plot(data["T"], data["linear"], "k--", lw=1, label=r"$k = r$ predicted: $(1 - 4 s \eta \sigma_r)^{2T}$")
        ax.set_ylim(1e-26, 1e2)
        ax.set_xlabel("iteration $T$")
        ax.set_ylabel(r"$\|M_T - M^\star\|_F^2$")
        ax.set_title("log-log" if p == 0 else "semi-log", fontsize=9)
        if p == 1:
            ax.ticklabel_format(axis="x", style="sci", scilimits=(0, 0))
        if p == 1:
            ax.legend(fontsize=6)
    fig.suptitle(f"Over-parameterisation slows GD down (Xiong, Ding & Du 2023); population, n = {data['n']}, "
                 f"r = {data['r']}, eta = {data['lr']}", fontsize=9)
