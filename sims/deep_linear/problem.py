"""The deep linear regression problem: a frozen, validated dataclass (Saxe et al. 2014; Arora et al. 2018)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine._validate import positive_array, positive_int, real_array
from ..engine.backend import host_rng

__all__ = ["Problem"]

INITS = ("aligned", "random", "balanced")


@dataclass(frozen=True, eq=False)
class Problem:
    """A target matrix (or data) and the hidden widths of the network that fits it.

    Attributes
    ----------
    target : ndarray, shape (d_out, d_in)
        :math:`\\Phi`, the input-output correlation of whitened data; computed as
        :math:`Y^\\top X/n` when data are given.
    hidden : tuple of int
        Hidden widths :math:`h_1, \\dots, h_{N-1}`; the depth is ``len(hidden) + 1``.
    X, Y : ndarray, shape (n, d_in) and (n, d_out), optional
        Training data: the loss is then the mean squared error on them (see the
        module docstring) and SGD draws its mini-batches from the ``n`` samples.
    """

    target: np.ndarray | None = None
    hidden: tuple[int, ...] = ()
    X: np.ndarray | None = None
    Y: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.X is None) != (self.Y is None):
            raise ValueError("X and Y come together (the inputs and outputs of the same samples)")
        if self.X is not None:
            X, Y = real_array("X", self.X, 2), real_array("Y", self.Y, 2)
            if X.shape[0] != Y.shape[0]:
                raise ValueError(f"X and Y must have the same number of rows (samples); got {X.shape[0]} and {Y.shape[0]}")
            if X.size + Y.size > 10**7:
                raise ValueError("X and Y must have at most 1e7 entries together")
            phi = Y.T @ X / X.shape[0]
            if self.target is not None:
                given = real_array("target", self.target, 2)
                if given.shape != phi.shape or not np.allclose(given, phi, rtol=1e-12, atol=1e-12 * float(np.abs(phi).max())):
                    raise ValueError("target must equal Y^T X / n when data are given (or be left out)")
            object.__setattr__(self, "X", X)
            object.__setattr__(self, "Y", Y)
            object.__setattr__(self, "target", phi)
        elif self.target is None:
            raise ValueError("give a target matrix or data X, Y")
        t = real_array("target", self.target, 2)
        object.__setattr__(self, "target", t)
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            raise TypeError("hidden must be a tuple of integers >= 1 (the hidden widths)")
        object.__setattr__(self, "hidden", tuple(positive_int("hidden width", h, 1, 10_000) for h in self.hidden))
        if t.size > 10**6:
            raise ValueError("target must have at most 1e6 entries")

    @property
    def depth(self) -> int:
        return len(self.hidden) + 1

    @property
    def widths(self) -> tuple[int, ...]:
        """``(d_in, h_1, ..., h_{N-1}, d_out)``."""
        return (self.target.shape[1],) + self.hidden + (self.target.shape[0],)

    def svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``U, s, V`` with ``target = U diag(s) V^T`` (thin)."""
        u, s, vt = np.linalg.svd(self.target, full_matrices=False)
        return u, s, vt.T

    @property
    def n(self) -> int | None:
        """Number of samples (``None`` for a target-only problem)."""
        return None if self.X is None else self.X.shape[0]

    @property
    def input_covariance(self) -> np.ndarray | None:
        """:math:`\\Sigma_{xx} = X^\\top X/n` (``None`` for a target-only problem: whitened, the identity)."""
        return None if self.X is None else self.X.T @ self.X / self.X.shape[0]

    def digest(self) -> str:
        parts = [self.target.tobytes(), repr(self.hidden).encode()]
        if self.X is not None:
            parts += [self.X.tobytes(), self.Y.tobytes()]
        return hashlib.sha256(b"".join(parts)).hexdigest()[:16]

    @classmethod
    def from_data(cls, X: Any, Y: Any, hidden: tuple[int, ...] = ()) -> "Problem":
        """Fit data ``X (n, d_in)``, ``Y (n, d_out)`` by mean squared error."""
        return cls(hidden=tuple(hidden), X=X, Y=Y)

    @classmethod
    def random(cls, d_in: int, d_out: int, hidden: tuple[int, ...], singular_values: Any = None,
               seed: int = 0) -> "Problem":
        """A target ``U diag(s) V^T`` with Haar-random ``U, V`` and singular values ``s``
        (default: ``r`` values evenly spaced from 3 down to 1, ``r = min(d_in, d_out)``)."""
        d_in, d_out = positive_int("d_in", d_in, 1, 1000), positive_int("d_out", d_out, 1, 1000)
        r = min(d_in, d_out)
        s = np.linspace(3.0, 1.0, r) if singular_values is None else positive_array("singular_values", singular_values, 1)
        if s.shape[0] != r:
            raise ValueError(f"singular_values must have min(d_in, d_out) = {r} entries; got {s.shape[0]}")
        rng = host_rng(seed)
        u, _ = np.linalg.qr(rng.standard_normal((d_out, r)))
        v, _ = np.linalg.qr(rng.standard_normal((d_in, r)))
        return cls(target=(u * s) @ v.T, hidden=tuple(hidden))

    @classmethod
    def scalar(cls, depth: int, y: float = 1.0) -> "Problem":
        """The scalar network :math:`f = w_1\\cdots w_D` fitting ``y`` (Kreisler et al. 2023)."""
        depth = positive_int("depth", depth, 1, 1000)
        y = float(real_array("y", y, 0))
        if y == 0:
            raise ValueError("y must be non-zero")
        return cls(target=np.array([[y]]), hidden=(1,) * (depth - 1))
