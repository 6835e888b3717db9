"""The diagonal-network regression problem: a frozen, validated dataclass and the grid of initial scales."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine._validate import nonneg_float, positive_int, real_array, scale_array
from ..engine.backend import check_seed

__all__ = ["Problem", "alpha_grid"]

#: Largest design matrix Problem.random builds (a guard against typos such as d=10**9).
MAX_ENTRIES = 10**8


@dataclass(frozen=True, eq=False)
class Problem:
    """A regression problem ``(X, y)`` for a diagonal linear network.

    Attributes
    ----------
    X : ndarray, shape (n, d)
        Design matrix, finite.
    y : ndarray, shape (n,)
        Targets, finite.
    w_star : ndarray, shape (d,), optional
        The teacher, when known (enables the distance-to-teacher observable).
    noise : float
        Standard deviation of the label noise used to make ``y`` (provenance only).
    """

    X: np.ndarray
    y: np.ndarray
    w_star: np.ndarray | None = None
    noise: float = 0.0

    def __post_init__(self) -> None:
        X = real_array("X", self.X, 2)
        y = real_array("y", self.y, 1)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have length n={X.shape[0]} (the rows of X); got {y.shape[0]}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        if self.w_star is not None:
            w = real_array("w_star", self.w_star, 1)
            if w.shape[0] != X.shape[1]:
                raise ValueError(f"w_star must have length d={X.shape[1]} (the columns of X); got {w.shape[0]}")
            object.__setattr__(self, "w_star", w)
        object.__setattr__(self, "noise", nonneg_float("noise", self.noise))

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Number of coordinates."""
        return int(self.X.shape[1])

    @classmethod
    def random(cls, n: int, d: int, sparsity: int, noise: float = 0.0, seed: int = 0) -> "Problem":
        r"""Gaussian design and a sparse teacher (Woodworth et al. 2020, Sec. 6).

        :math:`X_{ij} \sim N(0, 1)`; :math:`w^*` has ``sparsity`` non-zero
        entries equal to :math:`1/\sqrt{\text{sparsity}}` on a random support
        (so :math:`\|w^*\|_2 = 1`); :math:`y = Xw^* + \text{noise}\cdot\xi`,
        :math:`\xi \sim N(0, I_n)`.
        """
        n = positive_int("n", n, 1, MAX_ENTRIES)
        d = positive_int("d", d, 1, MAX_ENTRIES)
        if n * d > MAX_ENTRIES:
            raise ValueError(f"n * d must be at most {MAX_ENTRIES:.0e} entries; got n={n}, d={d}")
        sparsity = positive_int("sparsity", sparsity, 1, d)
        noise = nonneg_float("noise", noise)
        rng = np.random.default_rng(check_seed(seed))
        X = rng.standard_normal((n, d))
        w_star = np.zeros(d)
        w_star[rng.choice(d, size=sparsity, replace=False)] = 1.0 / math.sqrt(sparsity)
        y = X @ w_star + noise * rng.standard_normal(n)
        return cls(X=X, y=y, w_star=w_star, noise=noise)

    def digest(self) -> str:
        """A short stable hash of the data, for provenance in results."""
        h = hashlib.sha256()
        for a in (self.X, self.y) + ((self.w_star,) if self.w_star is not None else ()):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]


def alpha_grid(alpha: Any, d: int) -> np.ndarray:
    """Initial scales as a ``(B, d)`` host array.

    A number gives one run; a 1-D array gives one run per value (the batch);
    a 2-D ``(B, d)`` array gives a per-coordinate scale for each run.
    """
    a = scale_array("alpha", alpha, (0, 1, 2))
    if a.ndim == 0:
        return np.full((1, d), float(a))
    if a.ndim == 1:
        return np.repeat(a[:, None], d, axis=1)
    if a.shape[1] != d:
        raise ValueError(f"a 2-D alpha must have shape (B, d={d}); got {a.shape}")
    return a
