"""Plain JSON values from numbers, arrays and nested containers (one implementation for results and stores)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["jsonable"]


def jsonable(x: Any, *, strict: bool = False) -> Any:
    """Convert ``x`` to JSON types: arrays to lists, NumPy scalars to Python, NaN/inf to strings.

    With ``strict`` anything else raises :class:`TypeError`; otherwise it is written as ``str(x)``.
    """
    if isinstance(x, Mapping):
        return {str(k): jsonable(v, strict=strict) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v, strict=strict) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist(), strict=strict)
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        v = float(x)
        return v if math.isfinite(v) else str(v)
    if x is None or isinstance(x, str):
        return x
    if strict:
        raise TypeError(f"expected numbers, strings or lists; got {type(x).__name__}")
    return str(x)
