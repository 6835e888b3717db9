"""Argument checks the deep-linear predictions share."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._format import shown

__all__ = []


def _positive(name: str, x: Any) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)) or not math.isfinite(x) or x <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {shown(x)}")
    return float(x)
