"""The unconstrained feature model: a frozen, validated dataclass (class sizes, widths, depth, loss, regularisation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine._validate import choice, nonneg_float, positive_float, positive_int, real_array

__all__ = ["Problem"]

LOSSES = ("mse", "ce")
INITS = ("random", "collapsed", "aligned")


@dataclass(frozen=True, eq=False)
class Problem:
    r"""An unconstrained feature model.

    Attributes
    ----------
    n : tuple of int
        Class sizes ``n_1..n_K`` (K >= 2).
    d : int
        Feature dimension (and the width of hidden classifier layers).
    loss : {"mse", "ce"}
    lambda_W, lambda_H : float > 0
        Weight decay on every classifier layer and on the features.
    lambda_b : float >= 0 or None
        None: no bias; 0: an unregularised bias; > 0: a regularised one.
    depth : int
        Number of classifier layers M (Dang et al. 2023's deep linear head).
    relu : bool
        Apply ReLU to the features before the classifier.
    anchor : ndarray (d, N), optional
        Features the regulariser pulls toward: :math:`\frac{\lambda_H}{2}\|H - H_0\|^2`
        instead of :math:`\frac{\lambda_H}{2}\|H\|^2` (Tirer, Huang & Niles-Weed 2023's
        perturbation model: features that cannot move far from given ones).
    """

    n: tuple[int, ...]
    d: int
    loss: str = "mse"
    lambda_W: float = 5e-3
    lambda_H: float = 5e-3
    lambda_b: float | None = None
    depth: int = 1
    relu: bool = False
    anchor: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.n, (str, bytes)) or not hasattr(self.n, "__iter__"):
            raise TypeError("n must be a sequence of class sizes")
        n = tuple(positive_int("n (class size)", k, 1, 100_000) for k in self.n)
        if len(n) < 2:
            raise ValueError("n must hold at least two class sizes")
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "d", positive_int("d", self.d, 1, 100_000))
        object.__setattr__(self, "loss", choice("loss", self.loss, LOSSES))
        object.__setattr__(self, "lambda_W", positive_float("lambda_W", self.lambda_W))
        object.__setattr__(self, "lambda_H", positive_float("lambda_H", self.lambda_H))
        if self.lambda_b is not None:
            object.__setattr__(self, "lambda_b", nonneg_float("lambda_b", self.lambda_b))
        object.__setattr__(self, "depth", positive_int("depth", self.depth, 1, 50))
        if not isinstance(self.relu, (bool, np.bool_)):
            raise TypeError("relu must be a bool")
        if sum(n) * self.d > 10**8:
            raise ValueError("N * d must be at most 1e8 entries")
        if self.anchor is not None:
            a = real_array("anchor", self.anchor, 2)
            if a.shape != (self.d, sum(n)):
                raise ValueError(f"anchor must have shape (d, N) = ({self.d}, {sum(n)}); got {a.shape}")
            object.__setattr__(self, "anchor", a)

    @property
    def K(self) -> int:
        return len(self.n)

    @property
    def N(self) -> int:
        return int(sum(self.n))

    def labels(self) -> np.ndarray:
        """One-hot ``Y`` (K x N)."""
        return np.repeat(np.eye(self.K), self.n, axis=1)
