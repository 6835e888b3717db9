"""When a run stops early: convergence thresholds and the blow-up guards, evaluated per run on the device."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validate import shown
from .backend import device_of as _device, xp_of
from .state import row_norm_sq

__all__ = ["Guards", "StopRule"]


@dataclass(frozen=True)
class StopRule:
    """When a run stops early.

    Attributes
    ----------
    loss_tol : float or tuple of float
        Converged once ``loss <= loss_tol`` (0 disables); a tuple gives one
        threshold per run.
    grad_tol : float
        Converged once ``||grad|| <= grad_tol`` (0 disables).
    blowup : float
        Diverged once ``loss > blowup * max(1, loss at the start)``, or a
        parameter or the loss is non-finite, or ``||state||^2 > blowup**2``
        times its initial value (plus one).
    """

    loss_tol: float | tuple[float, ...] = 0.0
    grad_tol: float = 0.0
    blowup: float = 1e10

    def __post_init__(self) -> None:
        tol = np.asarray(self.loss_tol, dtype=float) if not isinstance(self.loss_tol, (str, bytes)) else None
        if tol is None or tol.ndim > 1 or not np.all(np.isfinite(tol)) or np.any(tol < 0):
            raise ValueError(f"loss_tol must be a finite number >= 0 or a tuple of them; got {shown(self.loss_tol)}")
        v = self.grad_tol
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"grad_tol must be a finite number >= 0; got {shown(v)}")
        if not isinstance(self.blowup, (int, float)) or not self.blowup > 1 or not math.isfinite(self.blowup):
            raise ValueError(f"blowup must be a finite number > 1; got {shown(self.blowup)}")

    def loss_tols(self, batch: int, like: Any) -> Any:
        """The loss thresholds as a ``(B,)`` float64 array on ``like``'s device."""
        tol = np.asarray(self.loss_tol, dtype=float)
        if tol.ndim == 1 and tol.shape[0] != batch:
            raise ValueError(f"loss_tol has {tol.shape[0]} values but the batch has {batch} runs")
        xp = xp_of(like)
        return xp.asarray(np.broadcast_to(tol, (batch,)).astype(np.float64), device=_device(like))

    def _tests(self, batch: int, like: Any) -> Any:
        """:meth:`loss_tols` with a disabled threshold (0) as -inf: ``loss <= tol`` is then the whole test, one
        device operation a step instead of three (losses may be negative, so 0 cannot stand for "off")."""
        tol = np.broadcast_to(np.asarray(self.loss_tol, dtype=float), (batch,))
        return xp_of(like).asarray(np.where(tol > 0, tol, -np.inf), device=_device(like))

    def guards(self, y0: Any, loss0: Any) -> "Guards":
        """The per-run thresholds of a batch that starts at ``y0`` (B, P) with losses ``loss0``."""
        xp = xp_of(y0)
        f64 = xp.float64
        loss0 = xp.astype(loss0, f64)
        return Guards(
            loss_tol=self._tests(y0.shape[0], y0),
            grad_tol_sq=float(self.grad_tol) ** 2,
            loss_cap=self.blowup * xp.maximum(loss0, xp.ones_like(loss0)),
            norm_cap=self.blowup**2 * (xp.astype(row_norm_sq(y0), f64) + 1.0),
        )


@dataclass(frozen=True)
class Guards:
    """Per-run thresholds on the device (float64 arrays ``(B,)``), fixed at the start of a run; ``loss_tol`` is
    -inf where the loss test is off."""

    loss_tol: Any
    grad_tol_sq: float
    loss_cap: Any
    norm_cap: Any

    def converged(self, loss: Any, grad_sq: Any) -> Any:
        """Per-run convergence; a zero tolerance disables its test (losses may be negative)."""
        xp = xp_of(loss)
        by_loss = xp.astype(loss, xp.float64, copy=False) <= self.loss_tol
        if self.grad_tol_sq > 0:
            return by_loss | (grad_sq <= self.grad_tol_sq)
        return by_loss

    def blown(self, loss: Any, y: Any) -> Any:
        """Loss above its cap or parameters above theirs (NaN compares false: test finiteness apart)."""
        xp = xp_of(y)
        f64 = xp.float64
        return ((xp.astype(loss, f64, copy=False) > self.loss_cap)
                | (xp.astype(row_norm_sq(y), f64, copy=False) > self.norm_cap))

    def take(self, rows: Any) -> "Guards":
        """The guards of the runs ``rows`` (a device index array)."""
        xp = xp_of(self.loss_cap)
        pick = lambda a: xp.take(a, rows, axis=0)  # noqa: E731
        return Guards(pick(self.loss_tol), self.grad_tol_sq, pick(self.loss_cap), pick(self.norm_cap))
