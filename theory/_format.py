"""How values appear in error messages: NumPy scalars and small arrays as plain Python numbers and lists."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["shown"]


def shown(v: Any) -> str:
    """``repr`` of ``v`` with ``np.float64(-0.1)`` shown as ``-0.1`` and small arrays as lists."""
    if isinstance(v, np.generic):
        v = v.item()
    elif isinstance(v, np.ndarray):
        v = v.tolist() if v.size <= 12 else f"<array of shape {v.shape}>"
    return v if isinstance(v, str) and v.startswith("<array") else repr(v)
