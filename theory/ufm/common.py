"""Argument checks the UFM predictions share: class sizes and regularisation strengths."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._format import shown

__all__ = []


def _counts(n: Any) -> np.ndarray:
    if isinstance(n, (str, bytes)):
        raise TypeError("n must be a sequence of class sizes")
    try:
        arr = np.asarray(n)
    except Exception as exc:
        raise TypeError(f"n must be a sequence of class sizes: {exc}") from exc
    if arr.ndim != 1 or arr.size < 2 or arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr)):
        raise ValueError(f"n must be a 1-D sequence of at least two class sizes; got {shown(n)}")
    if np.any(arr != np.round(arr)) or np.any(arr < 1) or arr.sum() > 10**6:
        raise ValueError(f"class sizes must be integers >= 1 (at most 1e6 in total); got {shown(n)}")
    return arr.astype(np.int64)


def _lam(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {shown(v)}")
    return float(v)
