"""Argument checks the diagonal predictions share."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..convex import check_matrix
from .._format import shown

__all__ = []


#: alpha^2 must be a normal float64 number: alpha in [ALPHA_MIN, ALPHA_MAX].
ALPHA_MIN, ALPHA_MAX = 1e-150, 1e150


def _as_real(name: str, x: Any, allowed_ndim: tuple[int, ...]) -> np.ndarray:
    """A finite real array of one of ``allowed_ndim`` dimensions (scalars are 0-D)."""
    try:
        ndim = np.ndim(x) if not isinstance(x, (str, bytes)) else -1
    except ValueError as exc:  # ragged nested lists
        raise TypeError(f"{name} must be a real array: {exc}") from exc
    if ndim < 0:
        raise TypeError(f"{name} must be a real number or array; got {type(x).__name__}")
    if ndim not in allowed_ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, allowed_ndim))} dimension(s); got {ndim}")
    return check_matrix(name, x, ndim=ndim)


def _check_alpha(alpha: Any, d: int | None = None) -> np.ndarray:
    a = _as_real("alpha", alpha, (0, 1))
    if np.any(a < ALPHA_MIN) or np.any(a > ALPHA_MAX):
        raise ValueError(f"alpha must lie in [{ALPHA_MIN:g}, {ALPHA_MAX:g}] (alpha^2 a normal float); got {shown(alpha)}")
    if d is not None and a.ndim == 1 and a.shape[0] != d:
        raise ValueError(f"per-coordinate alpha must have length d={d}; got {a.shape[0]}")
    return a
