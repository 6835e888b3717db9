"""A phase diagram of the diagonal network under GD: the limit's distance to the sparse teacher over the initial
scale alpha x the step size, thousands of runs computed as a resumable sweep.

Each row of the diagram (one step size, one seed) is one point of the sweep task ``diagonal.gd_phase``: one
batched GD run of every alpha at once. The points are stored as they finish (:mod:`sims.sweep`), so an
interrupted figure resumes where it stopped, and a store computed elsewhere (``solvable sweep
examples/sweeps/diagonal_phase.toml`` on a cluster, the same grid) is drawn by
``solvable figure diagonal_phase --store DIR`` without computing anything again.

What it shows (Even, Pesme, Gunasekar & Flammarion 2023, Sec. 3): small alpha recovers the sparse teacher
(Woodworth et al. 2020); as the step grows GD's effective scale shrinks unevenly and the limit moves away from it,
then GD leaves its stability region (diverged: the top right) or settles into oscillation without converging.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from solvable.sims import sweep

__all__ = ["GRID", "QUICK_GRID", "compute", "draw", "SIZE"]

#: Figure size in inches (width, height).
SIZE = (7, 4.5)

#: The full diagram: 30 step sizes x 3 seeds = 90 points of 40 alphas each (3600 runs); the same grid as
#: examples/sweeps/diagonal_phase.toml, so that the two share a store.
GRID = {"fixed": {"n": 10, "d": 20, "sparsity": 2, "steps": 20000,
                  "alphas": [float(a) for a in np.round(np.geomspace(1e-3, 1.0, 40), 12)]},
        "grid": {"lr_scale": [float(x) for x in np.round(np.geomspace(0.1, 8.0, 30), 12)], "seed": [0, 1, 2]}}
#: Quick: 8 step sizes x 1 seed, 12 alphas, fewer steps (96 runs).
QUICK_GRID = {"fixed": {"n": 10, "d": 20, "sparsity": 2, "steps": 5000,
                        "alphas": [float(a) for a in np.round(np.geomspace(1e-2, 1.0, 12), 12)]},
              "grid": {"lr_scale": [float(x) for x in np.round(np.geomspace(0.1, 8.0, 8), 12)], "seed": [0]}}


def points(quick: bool = False) -> list[dict[str, Any]]:
    """The sweep's points: every (lr_scale, seed) of the grid with the fixed parameters."""
    g = QUICK_GRID if quick else GRID
    return [{**g["fixed"], **p} for p in sweep.grid(**g["grid"])]


def compute(quick: bool = False, seed: int = 0, backend: str = "numpy", device: str | None = None,
            store: str | Path | None = None, n_jobs: int = 1) -> dict[str, Any]:
    """Run (or resume) the sweep into ``store`` (``None``: a temporary directory) and gather the diagram:
    per step size, the median over seeds of the distance to the teacher at each alpha, and the share of runs that
    diverged or did not converge. ``seed`` is the grid's (the diagram's seeds are its own axis)."""
    pts = [dict(p, backend=backend, device=device) if (backend, device) != ("numpy", None) else p
           for p in points(quick)]
    with tempfile.TemporaryDirectory() as tmp:
        table = sweep.run("diagonal.gd_phase", pts, Path(store) if store is not None else Path(tmp),
                          executor="sequential" if n_jobs == 1 else "loky", n_jobs=n_jobs, progress=False)
    failed = table[table["sweep_status"] != "ok"]
    if len(failed):
        raise RuntimeError(f"{len(failed)} sweep points failed: {failed['sweep_error'].iloc[0]}")
    alphas = np.array(pts[0]["alphas"])
    scales = np.array(sorted(set(table["lr_scale"])))
    dist = np.full((scales.size, alphas.size), np.nan)
    diverged, unfinished = np.zeros_like(dist), np.zeros_like(dist)
    for i, s in enumerate(scales):
        rows = table[table["lr_scale"] == s]
        status = np.array(list(rows["status"]))
        d = np.array(list(rows["distance"]), dtype=float)
        diverged[i] = np.mean(status == "diverged", axis=0)
        unfinished[i] = np.mean(status == "out_of_time", axis=0)
        ok = status == "converged"
        with np.errstate(all="ignore"):
            dist[i] = [np.median(d[ok[:, j], j]) if ok[:, j].any() else np.nan for j in range(alphas.size)]
    lr = {float(s): float(np.median(table[table["lr_scale"] == s]["lr"])) for s in scales}
    return {"alphas": alphas, "scales": scales, "distance": dist, "diverged": diverged, "unfinished": unfinished,
            "runs": int(len(table) * alphas.size), "points": int(len(table)), "lr": lr,
            "steps": int(pts[0]["steps"])}


def draw(fig: Any, data: dict[str, Any]) -> None:
    from matplotlib.colors import ListedColormap, LogNorm

    ax = fig.add_subplot(1, 1, 1)
    a, s = data["alphas"], data["scales"]
    mesh = ax.pcolormesh(a, s, data["distance"], norm=LogNorm(vmin=1e-2, vmax=2.0), shading="nearest",
                         cmap="viridis")
    fig.colorbar(mesh, ax=ax, label=r"$\|w - w^\star\|$ of the converged runs (median over seeds)")
    # cells where most runs diverged (red) or ran out of steps (grey): never read as a distance
    for share, colour in ((data["unfinished"], "0.75"), (data["diverged"], "C3")):
        ax.pcolormesh(a, s, np.where(share >= 0.5, 1.0, np.nan), shading="nearest", cmap=ListedColormap([colour]))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"initial scale $\alpha$")
    ax.set_ylabel(r"step size $\times\ \lambda_{\max}(X^\top X / n)$")
    ax.set_title(f"GD on a diagonal network: {data['runs']} runs in {data['points']} sweep points "
                 f"(red: diverged; grey: not converged in {data['steps']} steps)", fontsize=8)
