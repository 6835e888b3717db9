"""Reproduced paper figures: one module per figure, each with ``compute(quick)``, ``draw(fig, data)`` and ``SIZE``.

``compute`` runs the simulations and predictions and returns plain data (with
``not_converged``: a line per run that did not converge, which ``draw`` marks
and :func:`make` states on the figure, so that no such run reads as a result);
``draw`` puts them on a matplotlib figure; ``SIZE`` is the figure's size in
inches. ``names()`` lists the figures; ``make(name, out_dir, quick)`` computes,
draws and saves one as ``<out_dir>/<name>.png`` and returns the paths written.

A figure whose simulations go through the driver takes ``backend`` and
``device`` in ``compute`` (and ``make``), as ``simulate`` does; the others
(:func:`on_backends` leaves them out) compute on the host with NumPy.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from ._style import figure

__all__ = ["FIGURES", "caption", "make", "names", "on_backends", "stamp"]

#: Figure modules under ``figures/``, by model family.
FIGURES = ("diagonal_alpha", "diagonal_saddle", "diagonal_stepsize", "diagonal_phase", "deep_linear_saxe", "deep_linear_eos",
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


def on_backends() -> list[str]:
    """The figures that take ``backend`` and ``device``: those whose ``compute`` runs its simulations through
    the driver (``simulate``). The others compute on the host with NumPy."""
    return [name for name in FIGURES if _takes_backend(_module(name))]


def _takes_backend(module) -> bool:
    return "backend" in inspect.signature(module.compute).parameters


def _module(name: str):
    if name not in FIGURES:
        raise ValueError(f"unknown figure {name!r}; one of {list(FIGURES)}")
    return importlib.import_module(f"solvable.figures.{name}")


def make(name: str, out_dir: str | Path, quick: bool = False, backend: str = "numpy",
         device: str | None = None, store: str | Path | None = None) -> list[Path]:
    """Draw figure ``name`` into ``out_dir``; return the files written.

    ``backend`` and ``device`` choose where its simulations run, as in ``simulate``; only the figures of
    :func:`on_backends` take them. A figure computed as a sweep (its ``compute`` takes ``store``) keeps its
    points in ``store``, by default ``<out_dir>/stores/<name>`` (``<name>-quick`` when quick): a rerun resumes
    there, and a store computed elsewhere on the same grid is drawn without computing again.

    Raises
    ------
    ValueError
        If ``name`` is no figure; if ``backend`` or ``device`` is given (other than NumPy's default) to a
        figure that computes on the host; if ``device`` names no device of ``backend``.
    ImportError
        If ``backend``'s library is not installed.
    """
    module = _module(name)
    takes = _takes_backend(module)
    if not takes and (backend != "numpy" or device is not None):
        raise ValueError(f"figure {name!r} computes on the host with NumPy (its simulations do not go through the "
                         f"driver), so backend and device do not apply; they apply to {on_backends()}")
    if takes:
        from solvable.sims.engine.backend import namespace, resolve_device

        resolve_device(namespace(backend), device)  # one clear error before minutes of simulation
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    kw: dict = {"backend": backend, "device": device} if takes else {}
    if "store" in inspect.signature(module.compute).parameters:
        kw["store"] = Path(store) if store is not None else out / "stores" / (name + ("-quick" if quick else ""))
    elif store is not None:
        raise ValueError(f"figure {name!r} is not computed as a sweep, so store does not apply")
    with figure(path, module.SIZE) as fig:
        data = module.compute(quick=quick, **kw)
        module.draw(fig, data)
        stamp(fig, quick)
        caption(fig, data.get("not_converged", []))
    return [path]
