"""Dohmatob, Feng & Kempe 2024 style: model collapse in regression, and adaptive ridge against it.

Left: Monte Carlo means (two-standard-error bars) of least squares trained on the
n-th self-trained generator, over the linear law sigma^2 d/(T - d - 1) + n sigma0^2 d/(T0 - d - 1),
for two synthetic-data sizes T0. Right (their Fig. 1(a), isotropic): the ridge
predictor's test error against lambda for several n, Monte Carlo over the
deterministic-equivalent curves, with the predicted optimum lambda*(n) marked;
it moves right as synthetic generations accumulate and stays below ``||w*||^2 = 1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from solvable.sims import deep_linear as sim
from solvable.theory import deep_linear as th


__all__ = ["compute", "draw", "SIZE"]

RIDGE = {"d": 50, "T": 100, "sigma": 1.0, "T0": 100, "sigma0": 0.5}
RIDGE_GENERATIONS = (0, 2, 8)


#: Figure size in inches (width, height).
SIZE = (10, 4)


def compute(quick: bool = False) -> dict[str, Any]:
    d, T, sigma, sigma0, gens = 10, 40, 1.0, 0.5, 8
    trials = 200 if quick else 2000
    out: dict[str, Any] = {"gens": np.arange(gens + 1), "T0s": [20, 60]}
    for T0 in out["T0s"]:
        errs = sim.model_collapse(d, T, sigma, T0, sigma0, gens, n_trials=trials, seed=0)
        out[T0] = {"mean": errs.mean(0), "se": errs.std(0, ddof=1) / np.sqrt(trials),
                   "pred": np.array([th.model_collapse_error(n, d, T, sigma, T0, sigma0) for n in range(gens + 1)])}

    p = RIDGE
    lams = np.geomspace(0.05, 50, 7 if quick else 13)
    curve = np.geomspace(0.03, 80, 120)
    errs = sim.model_collapse(p["d"], p["T"], p["sigma"], p["T0"], p["sigma0"], max(RIDGE_GENERATIONS),
                              n_trials=100 if quick else 1000, seed=0, ridge=lams)
    out["ridge"] = {"lams": lams, "curve": curve, "mean": errs.mean(0), "se": errs.std(0, ddof=1) / np.sqrt(len(errs))}
    for n in RIDGE_GENERATIONS:
        out["ridge"][n] = {
            "pred": np.array([th.model_collapse_ridge_error(n, p["d"], p["T"], p["sigma"], p["T0"], p["sigma0"], x)
                              for x in curve]),
            "star": th.model_collapse_optimal_ridge(n, p["d"], p["T"], p["sigma"], p["T0"], p["sigma0"]),
        }
    return out


def draw(fig: Any, data: dict[str, Any]) -> None:
    ax = fig.add_subplot(1, 2, 1)
    for i, T0 in enumerate(data["T0s"]):
        d = data[T0]
        ax.errorbar(data["gens"], d["mean"], yerr=2 * d["se"], fmt="o", color=f"C{i}", label=f"simulation, $T_0$ = {T0}")
        ax.plot(data["gens"], d["pred"], "-", color=f"C{i}", alpha=0.6, label="prediction")
    ax.set_xlabel("generation $n$")
    ax.set_ylabel(r"test error $\|w_{\rm pred} - w^\star\|^2$")
    ax.legend(fontsize=7)
    ax.set_title("Least squares: linear collapse (d = 10, T = 40)", fontsize=9)

    r = data["ridge"]
    ax = fig.add_subplot(1, 2, 2)
    for i, n in enumerate(RIDGE_GENERATIONS):
        ax.errorbar(r["lams"], r["mean"][n], yerr=2 * r["se"][n], fmt="o", ms=3, color=f"C{i}", label=f"$n$ = {n}")
        ax.plot(r["curve"], r[n]["pred"], "-", color=f"C{i}", alpha=0.6)
        ax.axvline(r[n]["star"], color=f"C{i}", ls=":", lw=0.8)
    ax.axhline(1.0, color="k", lw=0.6, ls="--", label="zero predictor")
    ax.set_xscale("log")
    ax.set_xlabel(r"ridge $\lambda$ (dotted: predicted optimum)")
    ax.set_ylabel("test error")
    ax.legend(fontsize=7)
    ax.set_title("Adaptive ridge (d = 50, T = T0 = 100)", fontsize=9)
