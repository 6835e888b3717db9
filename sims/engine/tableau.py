r"""Butcher tableaux of explicit embedded Runge-Kutta pairs, checked on construction.

A tableau holds the nodes :math:`c`, the stage matrix :math:`a` (strictly
lower triangular, given by rows), the propagated weights :math:`b`, the error
weights :math:`e = b - \hat b` (difference with the embedded solution), and
optionally the coefficients of a continuous extension. ``__post_init__``
checks what every consistent pair satisfies (as diffrax's tableaux do): the
row sums :math:`\sum_j a_{ij} = c_i`, :math:`\sum_i b_i = 1`,
:math:`\sum_i e_i = 0`, the second-order condition
:math:`\sum_i b_i c_i = 1/2`, and that the dense output reproduces :math:`b`
at the end of the step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ._validate import shown

__all__ = ["ButcherTableau", "DOPRI5"]


@dataclass(frozen=True)
class ButcherTableau:
    """An explicit embedded Runge-Kutta pair.

    Attributes
    ----------
    c : tuple of float, length s
        Nodes (``c[0] = 0``).
    a : tuple of tuples
        Row ``i`` holds :math:`a_{i0} \\dots a_{i,i-1}` (row 0 is empty).
    b : tuple of float, length s
        Weights of the propagated solution.
    e : tuple of float, length s or s + 1
        Error weights :math:`b - \\hat b`; one more entry than ``b`` for a
        first-same-as-last pair, whose extra stage is the slope at the new point.
    dense : tuple of tuples, optional
        Row ``i``: coefficients of :math:`\\theta, \\theta^2, \\dots` multiplying
        stage ``i`` in the continuous extension
        :math:`y(t + \\theta h) = y + h \\sum_i p_i(\\theta) k_i`.
    order, error_order : int
        Order of the propagated solution and of the embedded one.
    name : str
    """

    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    e: tuple[float, ...]
    order: int
    error_order: int
    dense: tuple[tuple[float, ...], ...] = ()
    name: str = ""

    def __post_init__(self) -> None:
        s = len(self.c)
        tol = 1e-14
        if len(self.a) != s or len(self.b) != s:
            raise ValueError(f"{self.name}: c, a and b must have one entry per stage ({s})")
        if self.c[0] != 0 or self.a[0]:
            raise ValueError(f"{self.name}: an explicit method starts with c[0] = 0 and an empty first row")
        for i, row in enumerate(self.a):
            if len(row) != i:
                raise ValueError(f"{self.name}: row {i} of a must have {i} entries; got {len(row)}")
            if abs(math.fsum(row) - self.c[i]) > tol:
                raise ValueError(f"{self.name}: row {i} of a sums to {shown(math.fsum(row))}, not c[{i}] = {shown(self.c[i])}")
        if abs(math.fsum(self.b) - 1) > tol:
            raise ValueError(f"{self.name}: the weights b must sum to 1; got {shown(math.fsum(self.b))}")
        if abs(math.fsum(bi * ci for bi, ci in zip(self.b, self.c)) - 0.5) > tol:
            raise ValueError(f"{self.name}: sum b_i c_i must be 1/2 (second-order condition)")
        if len(self.e) not in (s, s + 1) or abs(math.fsum(self.e)) > tol:
            raise ValueError(f"{self.name}: the error weights must have {s} or {s + 1} entries summing to 0")
        if self.dense:
            if len(self.dense) != len(self.e):
                raise ValueError(f"{self.name}: the dense output needs one row per stage ({len(self.e)})")
            at_one = [math.fsum(row) for row in self.dense]
            want = list(self.b) + [0.0] * (len(self.e) - s)
            if max(abs(x - y) for x, y in zip(at_one, want)) > 1e-12:
                raise ValueError(f"{self.name}: the dense output at theta = 1 must equal the weights b")
        if not (1 <= self.error_order < self.order):
            raise ValueError(f"{self.name}: error_order must lie in [1, order)")

    @property
    def stages(self) -> int:
        """Number of slope evaluations per step, counting a first-same-as-last stage."""
        return len(self.e)

    @property
    def fsal(self) -> bool:
        """Whether the last stage is the slope at the new point (reused as the next step's first)."""
        return len(self.e) == len(self.c) + 1

    def a_matrix(self) -> np.ndarray:
        """The stage matrix as a dense ``(s, s)`` array."""
        out = np.zeros((len(self.c), len(self.c)))
        for i, row in enumerate(self.a):
            out[i, :i] = row
        return out


#: Dormand & Prince 1980's 5(4) pair with Shampine 1986's 4th-order dense
#: output (Hairer, Norsett & Wanner, *Solving ODEs I*, Sec. II.5-II.6; the
#: coefficients of scipy's RK45, which a test compares).
DOPRI5 = ButcherTableau(
    name="dopri5",
    c=(0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0),
    a=(
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    ),
    b=(35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    e=(71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40),
    order=5,
    error_order=4,
    dense=(
        (1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
        (0.0, 0.0, 0.0, 0.0),
        (0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
        (0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
        (0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632),
        (0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
        (0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423),
    ),
)
