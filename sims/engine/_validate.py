"""Argument checks shared by the simulators: every failure names the argument and the accepted range."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

__all__ = ["DtypeTooCoarse", "shown", "real_array", "positive_int", "positive_float", "nonneg_float", "choice", "positive_array", "scale_array"]


class DtypeTooCoarse(ValueError):
    """The accuracy asked of a simulation (an integrator's rtol) is finer than its dtype resolves.

    A ValueError, so that a direct call fails like any bad argument; the claims' runner reports it as
    "unsupported" under that dtype (as it does a claim's own precision requirement), not as an error.
    """


def real_array(name: str, a: Any, ndim: int | tuple[int, ...], *, allow_empty: bool = False) -> np.ndarray:
    """A finite real float64 array with ``ndim`` dimensions (an int or a tuple of allowed ints)."""
    if a is None or isinstance(a, (str, bytes, dict, set)):
        raise TypeError(f"{name} must be a real array; got {type(a).__name__}")
    try:
        arr = np.asarray(a)
    except Exception as exc:
        raise TypeError(f"{name} must be a real array: {exc}") from exc
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in dims:
        raise ValueError(f"{name} must have {' or '.join(map(str, dims))} dimension(s); got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty; got shape {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def positive_array(name: str, a: Any, ndim: int | tuple[int, ...]) -> np.ndarray:
    """Like :func:`real_array` with every entry > 0."""
    arr = real_array(name, a, ndim)
    if np.any(arr <= 0):
        raise ValueError(f"{name} must be > 0 everywhere; got min {shown(arr.min())}")
    return arr


def scale_array(name: str, a: Any, ndim: int | tuple[int, ...]) -> np.ndarray:
    """Initial scales: > 0 and within [1e-150, 1e150], so that squares and products stay normal floats."""
    arr = positive_array(name, a, ndim)
    if np.any(arr < 1e-150) or np.any(arr > 1e150):
        raise ValueError(f"{name} must lie in [1e-150, 1e150]: squares and products of it must stay normal floats")
    return arr


def positive_int(name: str, v: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """An integer in ``[minimum, maximum]`` (``bool`` refused)."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {type(v).__name__}")
    if v < minimum or (maximum is not None and v > maximum):
        hi = "" if maximum is None else f" and <= {maximum}"
        raise ValueError(f"{name} must be an integer >= {minimum}{hi}; got {v}")
    return int(v)


def _real(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {type(v).__name__}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite; got {v}")
    return v


def positive_float(name: str, v: Any) -> float:
    """A finite real number > 0."""
    v = _real(name, v)
    if v <= 0:
        raise ValueError(f"{name} must be > 0; got {v}")
    return v


def nonneg_float(name: str, v: Any) -> float:
    """A finite real number >= 0."""
    v = _real(name, v)
    if v < 0:
        raise ValueError(f"{name} must be >= 0; got {v}")
    return v


def choice(name: str, v: Any, options: tuple[str, ...]) -> str:
    """One of ``options``."""
    if not isinstance(v, str) or v not in options:
        raise ValueError(f"{name} must be one of {options}; got {shown(v)}")
    return v


def shown(v: Any) -> str:
    """``repr`` for messages: NumPy scalars as Python numbers (``-0.1``, not ``np.float64(-0.1)``), arrays as lists.

    (theory and sims each keep this one-liner: neither layer imports the other.)
    """
    v = v.item() if isinstance(v, np.generic) else v
    return repr(v.tolist()) if isinstance(v, np.ndarray) and v.size <= 12 else repr(v)
