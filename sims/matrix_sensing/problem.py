"""The matrix-sensing problem: a frozen, validated dataclass (operator, ground truth, noise, outliers) and the option lists."""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine._validate import choice, nonneg_float, positive_int, real_array, shown
from ..engine.backend import check_seed
from ..engine.driver import ALGORITHMS as DRIVER_ALGORITHMS

__all__ = ["Problem"]

OPERATORS = ("gaussian", "symmetric", "completion", "population")
FACTORISATIONS = ("symmetric", "asymmetric", "deep")
LOSSES = ("l2", "l1")
INITS = ("random", "aligned")
#: The driver's algorithms plus ScaledGD(lambda) (``damping``) and the sub-gradient method (``decay``).
ALGORITHMS = DRIVER_ALGORITHMS + ("scaledgd", "subgradient")
#: Largest dense operator Problem.random builds, in entries (3.2 GB in float64).
MAX_ENTRIES = 4 * 10**8
#: Size of a gross outlier, in units of the typical clean measurement ||M*||_F / sqrt(m).
OUTLIER_SCALE = 10.0


@dataclass(frozen=True, eq=False)
class Problem:
    r"""A matrix-sensing problem: ground truth, operator and measurements.

    Attributes
    ----------
    M_star : ndarray (n1, n2)
        The ground truth.
    operator : {"gaussian", "symmetric", "completion", "population"}
    A : ndarray (m, n1, n2) or None
        Measurement matrices (``gaussian``: i.i.d. :math:`N(0, 1/m)` entries;
        ``symmetric``: :math:`(G + G^\top)/2` of such a :math:`G`).
    mask : bool ndarray (n1, n2) or None
        Observed entries (``completion``).
    y : ndarray (m,) or None
        Measurements :math:`\mathcal A(M^*)` + noise; for completion the observed entries in
        ``np.flatnonzero(mask)`` order, scaled by :math:`1/\sqrt p` like the operator; ``None``
        for the population operator (the loss is the distance to ``M_star``).
    noise : float
        Standard deviation of the dense Gaussian noise added to ``y``.
    outliers : float in [0, 1)
        Fraction of grossly corrupted measurements (provenance; ``corrupted`` says which).
    corrupted : bool ndarray (m,) or None
    symmetric : bool
        ``M_star`` is PSD and a symmetric factorisation ``X X^T`` may fit it.
    """

    M_star: np.ndarray
    operator: str = "population"
    A: np.ndarray | None = None
    mask: np.ndarray | None = None
    y: np.ndarray | None = None
    noise: float = 0.0
    outliers: float = 0.0
    corrupted: np.ndarray | None = None
    symmetric: bool = False

    def __post_init__(self) -> None:
        M = real_array("M_star", self.M_star, 2)
        object.__setattr__(self, "M_star", M)
        op = choice("operator", self.operator, OPERATORS)
        n1, n2 = M.shape
        if not isinstance(self.symmetric, (bool, np.bool_)):
            raise TypeError(f"symmetric must be a bool; got {type(self.symmetric).__name__}")
        if self.symmetric:
            if n1 != n2 or not np.allclose(M, M.T, atol=1e-12 * max(1.0, np.abs(M).max())):
                raise ValueError("symmetric=True needs a square symmetric M_star")
            if np.linalg.eigvalsh(M)[0] < -1e-10 * max(1.0, np.abs(M).max()):
                raise ValueError("symmetric=True needs a positive semi-definite M_star (it is fitted by X X^T)")
        if op in ("gaussian", "symmetric"):
            A = real_array("A", self.A, 3)
            if A.shape[1:] != (n1, n2):
                raise ValueError(f"A must have shape (m, n1={n1}, n2={n2}); got {A.shape}")
            if op == "symmetric" and not np.allclose(A, np.transpose(A, (0, 2, 1))):
                raise ValueError("operator='symmetric' needs symmetric measurement matrices A_i")
            object.__setattr__(self, "A", A)
            m = A.shape[0]
        elif self.A is not None:
            raise ValueError(f"A is only for the gaussian and symmetric operators, not {shown(op)}")
        if op == "completion":
            mask = np.asarray(self.mask)
            if mask.dtype != bool or mask.shape != (n1, n2):
                raise ValueError(f"mask must be a boolean array of shape ({n1}, {n2})")
            if not mask.any():
                raise ValueError("mask must observe at least one entry")
            object.__setattr__(self, "mask", mask)
            m = int(mask.sum())
        elif self.mask is not None:
            raise ValueError(f"mask is only for operator='completion', not {shown(op)}")
        if op == "population":
            if self.y is not None:
                raise ValueError("the population operator has no measurements y (the loss is the distance to M_star)")
        else:
            y = real_array("y", self.y, 1)
            if y.shape[0] != m:
                raise ValueError(f"y must have one entry per measurement (m={m}); got {y.shape[0]}")
            object.__setattr__(self, "y", y)
        object.__setattr__(self, "noise", nonneg_float("noise", self.noise))
        out = nonneg_float("outliers", self.outliers)
        if out >= 1:
            raise ValueError(f"outliers must lie in [0, 1); got {out}")
        object.__setattr__(self, "outliers", out)
        if op == "population" and (self.noise or out):
            raise ValueError("the population operator measures M_star exactly: noise and outliers must be 0")

    @property
    def n1(self) -> int:
        return int(self.M_star.shape[0])

    @property
    def n2(self) -> int:
        return int(self.M_star.shape[1])

    @property
    def m(self) -> int:
        """Number of measurements (``n1 n2`` for the population operator)."""
        if self.A is not None:
            return int(self.A.shape[0])
        if self.mask is not None:
            return int(self.mask.sum())
        return self.n1 * self.n2

    @property
    def singular_values(self) -> np.ndarray:
        """Singular values of ``M_star`` (decreasing)."""
        return np.linalg.svd(self.M_star, compute_uv=False)

    @property
    def rank(self) -> int:
        s = self.singular_values
        return int(np.sum(s > s[0] * max(self.n1, self.n2) * np.finfo(float).eps)) if s[0] > 0 else 0

    @property
    def kappa(self) -> float:
        """Condition number :math:`\\sigma_1/\\sigma_r` of ``M_star``."""
        s = self.singular_values[: max(self.rank, 1)]
        return float(s[0] / s[-1]) if s[-1] > 0 else math.inf

    def measure(self, M: np.ndarray) -> np.ndarray:
        """:math:`\\mathcal A(M)` for host matrices ``(..., n1, n2)`` (completion: the scaled observed entries)."""
        M = np.asarray(M, dtype=float)
        if self.A is not None:
            return M.reshape(M.shape[:-2] + (-1,)) @ self.A.reshape(self.m, -1).T
        if self.mask is not None:
            return M[..., self.mask] / math.sqrt(self.m / (self.n1 * self.n2))
        return M.reshape(M.shape[:-2] + (-1,))

    def digest(self) -> str:
        """A short stable hash of the data, for provenance in results (computed once: a dense operator is
        hundreds of MB, and every simulate call records it)."""
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        h = hashlib.sha256(self.operator.encode())
        for a in (self.M_star, self.A, self.mask, self.y):
            if a is not None:
                h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]

    @classmethod
    def random(cls, n1: int, n2: int, rank: int, m: int | None = None, kappa: float = 1.0, symmetric: bool = False,
               noise: float = 0.0, outliers: float = 0.0, operator: str = "gaussian", seed: int = 0,
               singular_values: Any = None) -> "Problem":
        r"""A random rank-``rank`` ground truth and its measurements.

        :math:`M^* = U\operatorname{diag}(\sigma)V^\top` with Haar-random orthonormal
        :math:`U, V` (:math:`V = U` when ``symmetric``) and singular values
        ``singular_values``, or by default geometric from :math:`\sigma_1 = 1` to
        :math:`\sigma_r = 1/\kappa`. ``operator``: ``gaussian`` (:math:`A_i` with
        i.i.d. :math:`N(0, 1/m)` entries), ``symmetric`` (their symmetrisation
        :math:`(G_i + G_i^\top)/2`, which needs ``symmetric=True``), ``completion`` (``m``
        entries observed uniformly without replacement), ``population`` (``m`` must be
        ``None``). ``noise``: i.i.d. :math:`N(0, \text{noise}^2)` added to every
        measurement; ``outliers``: that fraction of the measurements (chosen at random)
        further gets :math:`N(0, (10\|M^*\|_F/\sqrt m)^2)`, ten times a typical clean one.
        """
        n1 = positive_int("n1", n1, 1, 10**5)
        n2 = positive_int("n2", n2, 1, 10**5)
        rank = positive_int("rank", rank, 1, min(n1, n2))
        operator = choice("operator", operator, OPERATORS)
        if not isinstance(symmetric, (bool, np.bool_)):
            raise TypeError(f"symmetric must be a bool; got {type(symmetric).__name__}")
        if symmetric and n1 != n2:
            raise ValueError(f"symmetric=True needs n1 == n2; got {n1} and {n2}")
        if operator == "symmetric" and not symmetric:
            raise ValueError("operator='symmetric' needs symmetric=True")
        if singular_values is None:
            kappa = float(real_array("kappa", kappa, 0))
            if not 1 <= kappa <= 1e12:
                raise ValueError(f"kappa must lie in [1, 1e12]; got {kappa}")
            sigma = kappa ** (-np.arange(rank) / max(rank - 1, 1))
        else:
            sigma = real_array("singular_values", singular_values, 1)
            if sigma.shape[0] != rank or np.any(sigma <= 0):
                raise ValueError(f"singular_values must be {rank} numbers > 0")
            sigma = np.sort(sigma)[::-1]
        rng = np.random.default_rng(check_seed(seed))
        U = np.linalg.qr(rng.standard_normal((n1, rank)))[0]
        V = U if symmetric else np.linalg.qr(rng.standard_normal((n2, rank)))[0]
        M = (U * sigma) @ V.T
        if symmetric:
            M = (M + M.T) / 2
        if operator == "population":
            if m is not None:
                raise ValueError("m must be None for operator='population' (it measures every entry exactly)")
            return cls(M_star=M, operator="population", symmetric=bool(symmetric))
        if m is None:
            raise ValueError(f"m (the number of measurements) is required for operator={shown(operator)}")
        m = positive_int("m", m, 1, n1 * n2 if operator == "completion" else None)
        noise, outliers = nonneg_float("noise", noise), nonneg_float("outliers", outliers)
        A = mask = None
        if operator in ("gaussian", "symmetric"):
            if m * n1 * n2 > MAX_ENTRIES:
                raise ValueError(f"m * n1 * n2 must be at most {MAX_ENTRIES:.0e} entries; got {m * n1 * n2}")
            A = rng.standard_normal((m, n1, n2)) / math.sqrt(m)
            if operator == "symmetric":
                A = (A + np.transpose(A, (0, 2, 1))) / 2
            clean = A.reshape(m, -1) @ M.reshape(-1)
        else:
            mask = np.zeros(n1 * n2, dtype=bool)
            mask[rng.choice(n1 * n2, size=m, replace=False)] = True
            mask = mask.reshape(n1, n2)
            clean = M[mask] / math.sqrt(m / (n1 * n2))
        y = clean + noise * rng.standard_normal(m)
        corrupted = np.zeros(m, dtype=bool)
        if outliers:
            corrupted[rng.choice(m, size=int(round(outliers * m)), replace=False)] = True
            y = y + corrupted * rng.standard_normal(m) * OUTLIER_SCALE * np.linalg.norm(M) / math.sqrt(m)
        return cls(M_star=M, operator=operator, A=A, mask=mask, y=y, noise=noise, outliers=outliers,
                   corrupted=corrupted, symmetric=bool(symmetric))
