"""Dohmatob, Feng & Kempe 2024 style: test error of least squares trained on the n-th self-trained generator.

Monte Carlo means with two-standard-error bars over the linear prediction
sigma^2 d/(T - d - 1) + n sigma0^2 d/(T0 - d - 1), for two synthetic-data sizes T0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sims import deep_linear as sim
from theory import deep_linear as th

from ._style import figure

__all__ = ["compute", "draw", "make"]


def compute(quick: bool = False) -> dict[str, Any]:
    d, T, sigma, sigma0, gens = 10, 40, 1.0, 0.5, 8
    trials = 200 if quick else 2000
    out: dict[str, Any] = {"gens": np.arange(gens + 1), "T0s": [20, 60]}
    for T0 in out["T0s"]:
        errs = sim.model_collapse(d, T, sigma, T0, sigma0, gens, n_trials=trials, seed=0)
        out[T0] = {"mean": errs.mean(0), "se": errs.std(0, ddof=1) / np.sqrt(trials),
                   "pred": np.array([th.model_collapse_error(n, d, T, sigma, T0, sigma0) for n in range(gens + 1)])}
    return out


def draw(fig: Any, data: dict[str, Any]) -> None:
    ax = fig.add_subplot(1, 1, 1)
    for i, T0 in enumerate(data["T0s"]):
        d = data[T0]
        ax.errorbar(data["gens"], d["mean"], yerr=2 * d["se"], fmt="o", color=f"C{i}", label=f"simulation, T0 = {T0}")
        ax.plot(data["gens"], d["pred"], "-", color=f"C{i}", alpha=0.6, label="prediction")
    ax.set_xlabel("generation n")
    ax.set_ylabel("test error ||w_n - w*||^2")
    ax.legend(fontsize=7)
    ax.set_title("Model collapse in regression (Dohmatob et al. 2024)", fontsize=9)


def make(out_dir: str | Path, quick: bool = False) -> Path:
    path = Path(out_dir) / "deep_linear_collapse.png"
    with figure(path, (6, 4)) as fig:
        draw(fig, compute(quick))
    return path
