r"""The measurement operators of matrix sensing, applied to a batch of matrices at once.

A measurement operator :math:`\mathcal A: \mathbb{R}^{n_1\times n_2} \to \mathbb{R}^{m}`
enters the loss only through the residual :math:`r = \mathcal A(M) - y` and its
adjoint :math:`\mathcal A^*(r)`, and both are applied to the flattened matrices
of the whole batch of runs, ``(B, n1 n2)``, in one product each:

* ``"gaussian"`` / ``"symmetric"``: :math:`\mathcal A(M)_i = \langle A_i, M\rangle`
  with the ``m`` matrices stacked as one ``(m, n1 n2)`` array :math:`\bar A`:
  :math:`r = M\bar A^\top - y` ``(B, m)`` and :math:`\mathcal A^*(r) = r\bar A`.
  Each product reads :math:`\bar A` once: a step costs :math:`2 m n_1 n_2 B`
  multiply-adds for each of the two products and :math:`8 m n_1 n_2` bytes
  of operator (float64; half in float32), read twice.
* ``"completion"``: the observed entries, scaled by :math:`1/\sqrt p`
  (:math:`p = m / (n_1 n_2)`), kept as a full-size matrix
  :math:`P = \text{mask}/\sqrt p`: :math:`r = P \odot (M - Y)` ``(B, n1 n2)``
  (zero off the mask) and :math:`\mathcal A^*(r) = P\odot r`; no dense
  operator, :math:`O(n_1 n_2 B)` per step.
* ``"population"``: the identity, :math:`r = M - M^*`, :math:`\mathcal A^* = I`.

With these scalings :math:`\mathbb{E}\,\|\mathcal A(M)\|^2 = \|M\|_F^2` for every
operator: the Gaussian entries have variance :math:`1/m` and the mask
probability :math:`p` is divided out, so every operator is near-isometric and
one step size means the same thing on all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.backend import asarray, xp_of

__all__ = ["DeviceOperator", "device_operator"]


@dataclass(frozen=True)
class DeviceOperator:
    """A problem's operator on the backend: ``residual(M_flat, weights) -> r`` and ``adjoint(r) -> (B, n1 n2)``.

    Attributes
    ----------
    kind : str
    A : array (m, n1 n2) or None
        The stacked measurement matrices (``gaussian``, ``symmetric``).
    target : array
        ``y`` (m,) for a dense operator; ``y`` on the observed entries and 0 elsewhere (n1 n2,) for
        completion; :math:`M^*` flattened for the population operator.
    scale : array (n1 n2,) or None
        :math:`P` for completion.
    m : int
        The number of measurements (``n1 n2`` for the population operator).
    """

    kind: str
    A: Any
    target: Any
    scale: Any
    m: int

    def residual(self, M: Any) -> Any:
        """:math:`\\mathcal A(M) - y` for flattened ``M`` ``(B, n1 n2)``."""
        if self.A is not None:
            return xp_of(M).matmul(M, self.A.T) - self.target
        if self.scale is not None:
            return M * self.scale - self.target
        return M - self.target

    def adjoint(self, r: Any) -> Any:
        """:math:`\\mathcal A^*(r)`, flattened ``(B, n1 n2)``."""
        if self.A is not None:
            return xp_of(r).matmul(r, self.A)
        if self.scale is not None:
            return r * self.scale
        return r


def device_operator(problem: Any, xp: Any, dtype: str, device: Any) -> DeviceOperator:
    """Move ``problem``'s operator to the backend (one copy per model, shared by every run)."""
    n = problem.n1 * problem.n2
    if problem.operator in ("gaussian", "symmetric"):
        return DeviceOperator(problem.operator, asarray(problem.A.reshape(problem.m, n), xp, dtype, device),
                              asarray(problem.y, xp, dtype, device), None, problem.m)
    if problem.operator == "completion":
        P = problem.mask.reshape(n) / np.sqrt(problem.m / n)
        Y = np.zeros(n)
        Y[problem.mask.reshape(n)] = problem.y  # y = A(M*) + noise: already scaled by 1/sqrt(p)
        return DeviceOperator("completion", None, asarray(Y, xp, dtype, device), asarray(P, xp, dtype, device),
                              problem.m)
    return DeviceOperator("population", None, asarray(problem.M_star.reshape(n), xp, dtype, device), None, n)
