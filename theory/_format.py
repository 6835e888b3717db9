"""How values appear in error messages: NumPy scalars and small arrays as plain Python numbers and lists."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["shown"]


def shown(v: Any) -> str:
    """``repr`` for messages: NumPy scalars as Python numbers (``-0.1``, not ``np.float64(-0.1)``), arrays as lists.

    (theory and sims each keep this one-liner: neither layer imports the other.)
    """
    v = v.item() if isinstance(v, np.generic) else v
    return repr(v.tolist()) if isinstance(v, np.ndarray) and v.size <= 12 else repr(v)
