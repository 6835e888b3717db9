"""Reproduced paper figures: one module per figure, each with ``compute(quick)``, ``draw(fig, data)`` and ``SIZE``.

``compute`` runs the simulations and predictions and returns plain data (with
``not_converged``: a line per run that did not converge, which ``draw`` marks
and :func:`make` states on the figure, so that no such run reads as a result);
``draw`` puts them on a matplotlib figure; ``SIZE`` is the figure's size in
inches. ``names()`` lists the figures; ``make(name, out_dir, quick)`` computes,
draws and saves one as ``<out_dir>/<name>.png`` and returns the paths written.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from ._style import figure

__all__ = ["FIGURES", "caption", "make", "names", "stamp"]

#: Figure modules under ``figures/``, by model family.
FIGURES = ("diagonal_alpha", "diagonal_saddle", "diagonal_stepsize", "deep_linear_saxe", "deep_linear_eos",
           "deep_linear_sam", "deep_linear_grokking", "deep_linear_collapse", "deep_linear_bw", "matrix_sensing_staircase",
           "matrix_sensing_overparam", "matrix_sensing_scaledgd", "matrix_sensing_nuclear", "ufm_nc", "ufm_imbalanced",
           "ufm_minority", "lsa_risk", "lsa_gamma", "lsa_svm_correlation", "lsa_svm_rank")


def names() -> list[str]:
    """The figure names accepted by :func:`make` and ``solvable figure``."""
    return list(FIGURES)


def stamp(fig: object, quick: bool) -> None:
    """Say "quick mode" on a quick figure itself, so that it is never mistaken for the paper's setting."""
    if quick:
        fig.text(0.995, 0.005, "quick mode (small sizes, not the paper's setting)", ha="right", va="bottom",
                 fontsize=7, color="C3")


def caption(fig: object, not_converged: list[str]) -> None:
    """Say on the figure which runs did not converge (their figures mark them, never as results)."""
    if not_converged:
        fig.text(0.005, 0.005, "Not converged: " + "; ".join(not_converged), ha="left", va="bottom", fontsize=6,
                 color="C3", wrap=True)


def make(name: str, out_dir: str | Path, quick: bool = False) -> list[Path]:
    """Draw figure ``name`` into ``out_dir``; return the files written."""
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; one of {list(FIGURES)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    module = importlib.import_module(f"solvable.figures.{name}")
    path = out / f"{name}.png"
    with figure(path, module.SIZE) as fig:
        data = module.compute(quick=quick)
        module.draw(fig, data)
        stamp(fig, quick)
        caption(fig, data.get("not_converged", []))
    return [path]
