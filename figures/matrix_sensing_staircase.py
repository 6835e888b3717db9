"""Jin et al. 2023, Fig. 1 style: the incremental staircase of singular values under small initialisation.

Gradient flow on population symmetric matrix sensing (M* of rank 4 with eigenvalues 1, 1/2, 1/4, 1/8)
from a random start at three scales alpha, over-parameterised (k = 6) and under-parameterised (k = 2).
Each eigenvalue is learned in turn; dotted lines mark the closed-form learning times
(2 ln(1/alpha) + C_i) / (4 sigma_i) of the commuting case, the offset C_i read from the run at the
largest alpha (so the lines at smaller alpha are a prediction of the shift, 1/(2 sigma_i) per unit of ln(1/alpha)).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import matrix_sensing as sim
from solvable.sims.matrix_sensing.measure import crossing_times
from solvable.theory import matrix_sensing as th

__all__ = ["compute", "draw", "SIZE"]

#: Figure size in inches (width, height).
SIZE = (10, 3.6)


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    """Singular values against time, for k = r + 2 and k = r - 2, at three alphas."""
    n = 12 if quick else 30
    sigma = 1.0 / 2.0 ** np.arange(4)
    problem = sim.Problem.random(n, n, 4, symmetric=True, operator="population", singular_values=sigma, seed=seed)
    alphas = np.array([1e-2, 1e-4, 1e-6])
    t_max = 1.2 * float(th.learning_time(sigma[-1], alphas[-1] ** 2))
    t = np.linspace(0, t_max, 800 if quick else 3000)
    panels, not_converged = [], []
    for k in (6, 2):
        traj = sim.simulate(problem, alphas, k=k, t_max=t_max, t_eval=t, rtol=1e-8, loss_tol=0.0, seed=seed,
                            backend=backend, device=device)
        modes = min(k, 4)
        times = np.array([crossing_times(t, traj.observables["sv"][b], sigma[:modes]) for b in range(alphas.size)])
        offset = times[0] * 4 * sigma[:modes] - 2 * np.log(1 / alphas[0])
        predicted = (2 * np.log(1 / alphas)[:, None] + offset[None, :]) / (4 * sigma[None, :modes])
        panels.append({"k": k, "sv": traj.observables["sv"][:, :, :4], "predicted": predicted})
        not_converged += [f"k = {k}, alpha = {a:g}: diverged" for a, st in zip(alphas, traj.status) if st == "diverged"]
    return {"t": t, "sigma": sigma, "alpha": alphas, "panels": panels, "n": n, "not_converged": not_converged}


def draw(fig: Any, data: dict[str, Any]) -> None:
    """One panel per width: singular values against time, three alphas (line styles)."""
    styles = ("-", "--", ":")
    for p, panel in enumerate(data["panels"]):
        ax = fig.add_subplot(1, 2, p + 1)
        for b, a in enumerate(data["alpha"]):
            for i in range(panel["sv"].shape[2]):
                ax.plot(data["t"], panel["sv"][b, :, i], styles[b], color=f"C{i}", lw=1.2,
                        label=rf"$\alpha$ = {a:g}" if i == 0 else None)
            for i, tp in enumerate(panel["predicted"][b]):
                ax.axvline(tp, color=f"C{i}", lw=0.6, alpha=0.5)
        for i, s in enumerate(data["sigma"]):
            ax.axhline(s, color="0.8", lw=0.5)
        ax.set_xlabel("$t$")
        ax.set_ylabel(r"singular values of $XX^\top$")
        ax.set_title(f"k = {panel['k']} ({'over' if panel['k'] > 4 else 'under'}-parameterised, r = 4)", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"Incremental learning, n = {data['n']} (Jin et al. 2023); vertical lines: learning times "
                 f"shifted by 1/(2 sigma_i) per unit of ln(1/alpha)", fontsize=9)
