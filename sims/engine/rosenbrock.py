r"""Rosenbrock-W methods: the tableau, checked on construction, and one linearly implicit step of a batch.

A Rosenbrock method for :math:`y' = f(y)` (Hairer & Wanner, *Solving ODEs II*,
Sec. IV.7, eq. (7.4)) takes ``s`` stages

.. math:: (I - h\gamma J)\,k_i = h f\Big(y + \sum_{j<i}\alpha_{ij}k_j\Big) + hJ\sum_{j<i}\gamma_{ij}k_j,
          \qquad y_1 = y + \sum_i b_i k_i ,

one linear solve with the same matrix per stage. A *W-method* keeps its order
when :math:`J` is any approximation of the Jacobian (Steihaug & Wolfbrandt
1979; Hairer & Wanner Sec. IV.7, "W-methods"), which lets an integrator reuse
one Jacobian -- and here one eigendecomposition of it -- over many steps.
The step is computed in the transformed variables :math:`u_i = \sum_{j\le i}
\gamma_{ij} k_j` of Hairer & Wanner (7.4'), which need no product with
:math:`J`:

.. math:: \Big(\frac{I}{h\gamma} - J\Big)u_i = f\Big(y + \sum_{j<i} a_{ij}u_j\Big) + \sum_{j<i}\frac{c_{ij}}{h}u_j,
          \qquad y_1 = y + \sum_i m_i u_i ,

with :math:`(a_{ij}) = (\alpha_{ij})\Gamma^{-1}`,
:math:`(c_{ij}) = \mathrm{diag}(\gamma^{-1}) - \Gamma^{-1}`, :math:`m = b\,\Gamma^{-1}`.

For a symmetric Jacobian :math:`J = Q\Lambda Q^\top` (the reduced gradient
flows of this library: the Hessian of a potential), the solve is
:math:`Q\,\mathrm{diag}(h\gamma/(1 - h\gamma\lambda))\,Q^\top v` -- two
batched matrix-vector products for *any* step size, so the step may change
every step without a new factorisation.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .backend import device_of as _device, xp_of
from .matmul import transpose

__all__ = ["ROS34PW2", "EigenSolver", "RosenbrockTableau", "StageCoefficients", "rosenbrock_step"]


@dataclass(frozen=True)
class RosenbrockTableau:
    r"""A Rosenbrock(-W) method in Hairer & Wanner's form, with an embedded method for the error.

    Attributes
    ----------
    alpha : tuple of tuples, (s, s)
        :math:`\alpha_{ij}`, strictly lower triangular.
    gamma : tuple of tuples, (s, s)
        :math:`\gamma_{ij}`, lower triangular with one constant diagonal :math:`\gamma`.
    b, b_hat : tuple of float, length s
        Weights of the propagated and of the embedded solution.
    order, error_order : int
        Their orders. ``__post_init__`` checks Hairer & Wanner's Table IV.7.1
        conditions up to ``min(order, 3)`` for ``b`` and up to ``error_order``
        for ``b_hat``.
    name : str
    """

    alpha: tuple[tuple[float, ...], ...]
    gamma: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_hat: tuple[float, ...]
    order: int
    error_order: int
    name: str = ""

    def __post_init__(self) -> None:
        al, ga = np.asarray(self.alpha, dtype=float), np.asarray(self.gamma, dtype=float)
        s = al.shape[0]
        if al.shape != (s, s) or ga.shape != (s, s) or len(self.b) != s or len(self.b_hat) != s:
            raise ValueError(f"{self.name}: alpha and gamma must be (s, s) and b, b_hat of length s = {s}")
        if np.any(np.triu(al) != 0) or np.any(np.triu(ga, 1) != 0):
            raise ValueError(f"{self.name}: alpha must be strictly lower triangular and gamma lower triangular")
        g = np.diag(ga)
        if not (g[0] > 0 and np.all(g == g[0])):
            raise ValueError(f"{self.name}: gamma must have one positive constant diagonal")
        if not (1 <= self.error_order < self.order):
            raise ValueError(f"{self.name}: error_order must lie in [1, order)")
        for weights, order, label in ((self.b, self.order, "b"), (self.b_hat, self.error_order, "b_hat")):
            for k, (lhs, rhs) in enumerate(_order_conditions(al, ga, np.asarray(weights, dtype=float))[:order], 1):
                for x, y in zip(lhs, rhs):
                    if abs(x - y) > 1e-10:
                        raise ValueError(f"{self.name}: the weights {label} fail an order-{k} condition "
                                         f"({x:.3g} != {y:.3g})")

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def diagonal(self) -> float:
        """The constant :math:`\\gamma` of the stage matrices :math:`I - h\\gamma J`."""
        return float(self.gamma[0][0])

    def transformed(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(a, c, m, e)`` of the transformed step (module docstring); ``e = m - m_hat`` gives the error."""
        return _transformed(self)


@functools.lru_cache(maxsize=8)
def _transformed(tab: RosenbrockTableau) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    ga = np.asarray(tab.gamma, dtype=float)
    gi = np.linalg.inv(ga)
    a = np.tril(np.asarray(tab.alpha, dtype=float) @ gi, -1)
    c = np.tril(np.diag(1.0 / np.diag(ga)) - gi, -1)
    m = np.asarray(tab.b) @ gi
    return a, c, m, m - np.asarray(tab.b_hat) @ gi


def _order_conditions(al: np.ndarray, ga: np.ndarray, b: np.ndarray) -> list[tuple[list[float], list[float]]]:
    """Hairer & Wanner, Table IV.7.1: for orders 1, 2, 3, the left and right sides of each condition."""
    g = ga[0, 0]
    beta = al + np.tril(ga, -1)
    a_sum, beta_sum = al.sum(axis=1), beta.sum(axis=1)
    return [
        ([b.sum()], [1.0]),
        ([b @ beta_sum], [0.5 - g]),
        ([b @ a_sum**2, b @ beta @ beta_sum], [1.0 / 3.0, 1.0 / 6.0 - g + g * g]),
    ]


#: Rang & Angermann 2005 ("New Rosenbrock W-methods of order 3 for partial
#: differential algebraic equations of index 1", BIT 45, Table 4.2): four
#: stages, order 3 for *any* approximation of the Jacobian, L-stable and
#: stiffly accurate, with an embedded order-2 method for the error.
ROS34PW2 = RosenbrockTableau(
    name="ros34pw2",
    alpha=((0.0, 0.0, 0.0, 0.0),
           (8.7173304301691801e-01, 0.0, 0.0, 0.0),
           (8.4457060015369423e-01, -1.1299064236484185e-01, 0.0, 0.0),
           (0.0, 0.0, 1.0, 0.0)),
    gamma=((4.3586652150845900e-01, 0.0, 0.0, 0.0),
           (-8.7173304301691801e-01, 4.3586652150845900e-01, 0.0, 0.0),
           (-9.0338057013044082e-01, 5.4180672388095326e-02, 4.3586652150845900e-01, 0.0),
           (2.4212380706095346e-01, -1.2232505839045147e+00, 5.4526025533510214e-01, 4.3586652150845900e-01)),
    b=(2.4212380706095346e-01, -1.2232505839045147e+00, 1.5452602553351020e+00, 4.3586652150845900e-01),
    b_hat=(3.7810903145819369e-01, -9.6042292212423178e-02, 5.0000000000000000e-01, 2.1793326075422950e-01),
    order=3,
    error_order=2,
)


class EigenSolver:
    r"""Solves :math:`(I/(h\gamma) - J)u = v` for a batch, from :math:`J = Q\Lambda Q^\top` (symmetric).

    Parameters
    ----------
    lam : (B, P) eigenvalues, Q : (B, P, P) eigenvectors (columns), as ``xp.linalg.eigh`` returns them.
    """

    def __init__(self, lam: Any, Q: Any) -> None:
        self.lam, self.Q, self.Qt = lam, Q, transpose(Q)
        self.scale: Any = None

    @classmethod
    def of(cls, jacobian: Any) -> "EigenSolver":
        """The solver of symmetric Jacobians ``(B, P, P)``."""
        lam, Q = xp_of(jacobian).linalg.eigh(jacobian)
        return cls(lam, Q)

    def set_step(self, hg: Any) -> None:
        """Fix :math:`h\\gamma` per run, a ``(B, 1)`` column."""
        self.scale = hg / (1.0 - hg * self.lam)

    def solve(self, v: Any) -> Any:
        xp = xp_of(v)
        w = xp.matmul(self.Qt, v[..., None])[..., 0] * self.scale
        return xp.matmul(self.Q, w[..., None])[..., 0]


class StageCoefficients:
    """A Rosenbrock tableau's transformed coefficients ``(a, c, m, e)`` as arrays of ``like``'s backend,
    dtype and device, made once per integration: a step then moves nothing from the host."""

    def __init__(self, tableau: RosenbrockTableau, like: Any) -> None:
        xp, dev = xp_of(like), _device(like)
        self.tableau = tableau
        self.host = tableau.transformed()
        self.dev = tuple(xp.asarray(np.asarray(v, dtype=np.float64), dtype=like.dtype, device=dev)
                         for v in self.host)
        a, c = self.host[0], self.host[1]
        # which stages combine earlier ones, as Python bools: a traced step (compile=True) reads no host array
        self.uses = (tuple(bool(np.any(a[i, :i])) for i in range(tableau.stages)),
                     tuple(bool(np.any(c[i, :i])) for i in range(tableau.stages)))


def rosenbrock_step(tableau: RosenbrockTableau, f: Callable[[Any], Any], solver: Any, y: Any, h: Any,
                    f0: Any, coefficients: StageCoefficients | None = None) -> tuple[Any, Any]:
    """One step of size ``h`` ((B, 1)) from ``y`` with ``f0 = f(y)`` and ``solver`` (its step already set
    to ``h * gamma``); returns ``(y_new, error_estimate)``. The adaptive loop and the order tests call it.

    The stage solutions ``u_j`` fill one ``(s, B, P)`` buffer, and every combination of them (the stage
    points, the ``c / h`` terms, the solution and the error) is one matrix-vector product over it, as in
    :class:`sims.engine.rk.Stages`: on a GPU, a handful of launches per stage instead of two per coefficient.
    ``coefficients``: the tableau's on ``y``'s device (:class:`StageCoefficients`), made here if None.
    """
    xp = xp_of(y)
    coefs = coefficients if coefficients is not None else StageCoefficients(tableau, y)
    (a_d, c_d, m_d, e_d), (uses_a, uses_c) = coefs.dev, coefs.uses
    s = tableau.stages
    buf = xp.zeros((s,) + tuple(y.shape), dtype=y.dtype, device=_device(y))

    def comb(v: Any, n: int) -> Any:
        return xp.reshape(v[:n] @ xp.reshape(buf[:n, ...], (n, -1)), tuple(y.shape))

    inv_h = 1.0 / h
    for i in range(s):
        if i == 0:
            rhs = f0
        else:
            yi = y + comb(a_d[i, ...], i) if uses_a[i] else y
            rhs = f(yi)
            if uses_c[i]:
                rhs = rhs + inv_h * comb(c_d[i, ...], i)
        buf[i, ...] = solver.solve(rhs)
    return y + comb(m_d, s), comb(e_d, s)
