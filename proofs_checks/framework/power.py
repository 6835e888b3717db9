"""Scores: a check's error as a function of its headline prediction, for :attr:`Evidence.score`.

A claim's *resolution* is the smallest relative change of its headline prediction that its evidence rejects
(:func:`~proofs_checks.framework.registry.resolution`). To compute it without rerunning anything, a check hands the
evidence ``score(f)``: the error it would report had the theory predicted ``f`` times what it does, computed
from the stored observations. The builders here cover the checks' common error measures; each returns a
function of ``f`` whose value at ``f = 1`` is the check's error, and :func:`worst` combines the parts of an
error that is the worst of several (the parts the headline does not enter stay fixed).

Each builder's denominator (budget, standard error, tolerance) is held fixed as ``f`` moves, except where it is
a relative measure's own norm of the prediction: a budget is a property of the simulation, not of the theory.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

__all__ = ["Score", "absolute", "fixed", "relative", "standard_errors", "worst"]

Score = Callable[[float], float]


def _max(values: Any) -> float:
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return 0.0
    return float(np.nan if np.isnan(arr).any() else np.max(arr))


def worst(*parts: Score) -> Score:
    """``f -> max(part(f) for part in parts)``: an error that is the worst of several budget ratios."""
    return lambda f: max(float(p(f)) for p in parts)


def fixed(value: float) -> Score:
    """A part of the error the headline prediction does not enter."""
    value = float(value)
    return lambda f: value


def relative(observed: Any, predicted: Any, budget: Any = 1.0, *, axis: int | tuple[int, ...] | None = None,
             scale: Any = None) -> Score:
    """``f -> max_i ||obs_i - f pred_i|| / (f ||pred_i||) / budget_i``: relative distances in units of budgets.

    ``axis``: the axes the norm runs over (None: the whole array, one distance); the remaining leading axis
    indexes the cases ``i``, each with its own budget. ``scale``: fixed norms in place of ``||pred_i||`` (a
    distance relative to another quantity than the prediction, e.g. a relative error of a departure measured
    against the prediction's size).
    """
    obs = np.asarray(observed, dtype=float)
    pred = np.asarray(predicted, dtype=float)
    budget = np.asarray(budget, dtype=float)
    base = None if scale is None else np.asarray(scale, dtype=float)

    def score(f: float) -> float:
        dist = np.linalg.norm(obs - f * pred, axis=axis) if axis is not None else np.linalg.norm(obs - f * pred)
        size = base if base is not None else abs(f) * (np.linalg.norm(pred, axis=axis) if axis is not None
                                                       else np.linalg.norm(pred))
        return _max(dist / size / budget)

    return score


def absolute(observed: Any, predicted: Any, tolerance: Any = 1.0) -> Score:
    """``f -> max_i |obs_i - f pred_i| / tol_i``: entrywise differences in units of their tolerances."""
    obs = np.asarray(observed, dtype=float)
    pred = np.asarray(predicted, dtype=float)
    tol = np.asarray(tolerance, dtype=float)
    return lambda f: _max(np.abs(obs - f * pred) / tol)


def standard_errors(mean: Any, se: Any, predicted: Any, z: float = 1.0) -> Score:
    """``f -> max_i |mean_i - f pred_i| / se_i / z``: Monte Carlo means against a prediction, in units of ``z``
    standard errors."""
    return absolute(mean, predicted, np.asarray(se, dtype=float) * z)
