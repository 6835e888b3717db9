"""Reading matrix-sensing trajectories: when each singular value is learned, rates, iteration counts.

Shared by the claims and the figures, so that both measure a trajectory the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["crossing_times", "iterations_to", "linear_rate", "local_exponents"]


def crossing_times(t: Any, sv: Any, sigma: Any, level: float = 0.5) -> np.ndarray:
    r"""First time each singular value ``sv[:, i]`` reaches ``level * sigma[i]`` (NaN if never).

    Interpolated linearly in the logit :math:`\ln(s/(\sigma - s))`, which is exactly linear in
    time for the logistic mode of the commuting case (:func:`theory.matrix_sensing.mode_energy`):
    there the interpolation adds no error, elsewhere it is second order in the output spacing.
    ``t`` is ``(T,)``, ``sv`` ``(T, n)``, ``sigma`` ``(R,)`` with ``R <= n``.
    """
    t, sv, sigma = np.asarray(t, float), np.asarray(sv, float), np.asarray(sigma, float)
    out = np.full(sigma.shape[0], np.nan)
    target = np.log(level / (1 - level))
    for i, s in enumerate(sigma):
        above = np.nonzero(sv[:, i] >= level * s)[0]
        if above.size == 0 or above[0] == 0:
            continue
        j = above[0]
        a, b = sv[j - 1, i], min(sv[j, i], s * (1 - 1e-15))
        la, lb = np.log(a / (s - a)), np.log(b / (s - b))
        out[i] = t[j - 1] + (target - la) / (lb - la) * (t[j] - t[j - 1])
    return out


def linear_rate(t: Any, err: Any, lo: float, hi: float) -> tuple[float, int]:
    """Least-squares rate ``-d ln(err)/dt`` over the outputs with ``lo <= err <= hi``, and how many there were."""
    t, err = np.asarray(t, float), np.asarray(err, float)
    sel = np.isfinite(err) & (err >= lo) & (err <= hi)
    if sel.sum() < 3:
        return float("nan"), int(sel.sum())
    return float(-np.polyfit(t[sel], np.log(err[sel]), 1)[0]), int(sel.sum())


def iterations_to(t: Any, err: Any, eps: float) -> float:
    """First output time with ``err <= eps`` (NaN if never)."""
    hit = np.nonzero(np.asarray(err, float) <= eps)[0]
    return float(np.asarray(t, float)[hit[0]]) if hit.size else float("nan")


def local_exponents(x: Any, y: Any) -> np.ndarray:
    """Slopes ``d ln y / d ln x`` between neighbouring points."""
    return np.diff(np.log(np.asarray(y, float))) / np.diff(np.log(np.asarray(x, float)))
