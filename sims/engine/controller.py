r"""Step-size control for the adaptive integrator: the error norm and the PI controller, per run.

The error of a trial step is measured as the RMS over the parameters of
:math:`e / (\mathrm{atol} + \mathrm{rtol}\max(|y|, |y_{new}|))` and the step
is accepted when that is at most one. The new step is
:math:`h \cdot \mathrm{clip}(\mathrm{safety}\; \epsilon_n^{-\beta_1}\epsilon_{n-1}^{\beta_2},
\mathrm{factor\_min}, \mathrm{factor\_max})` (Hairer & Wanner, *Solving ODEs II*,
Sec. IV.2; Gustafsson's PI control; :math:`\beta_2 = 0` is the classical
controller of Hairer, Norsett & Wanner, *Solving ODEs I*, Sec. II.4, the default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validate import shown
from .backend import xp_of

__all__ = ["PIController", "error_norm"]

_TINY = float(np.finfo(np.float64).tiny)


def error_norm(err: Any, y: Any, y_new: Any, rtol: float, atol: float) -> Any:
    """Per-run weighted RMS norm of the error estimate, in float64 ``(B,)``."""
    xp = xp_of(y)
    scale = rtol * xp.maximum(xp.abs(y), xp.abs(y_new)) + (atol + _TINY)
    r = err / scale
    return xp.astype(xp.sqrt(xp.mean(r * r, axis=1)), xp.float64, copy=False)


@dataclass(frozen=True)
class PIController:
    """Per-run step-size controller.

    Attributes
    ----------
    safety : float
        Factor below one applied to the optimal step (0.9).
    factor_min, factor_max : float
        Bounds on the change of the step in one adaptation (0.2 and 10).
    beta1, beta2 : float or None
        Exponents of the current and previous error norms; ``beta1=None``
        means ``1/(error_order + 1)`` of the tableau (1/5 for Dormand-Prince),
        and ``beta2 = 0`` gives the integral (I) controller.
    """

    safety: float = 0.9
    factor_min: float = 0.2
    factor_max: float = 10.0
    beta1: float | None = None
    beta2: float = 0.0

    def __post_init__(self) -> None:
        checks = {"safety": (self.safety, 0, 1), "factor_min": (self.factor_min, 0, 1),
                  "factor_max": (self.factor_max, 1, math.inf), "beta2": (self.beta2, -1, 1)}
        if self.beta1 is not None:
            checks["beta1"] = (self.beta1, 0, 1)
        for name, (v, lo, hi) in checks.items():
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi
            if not ok or (name in ("safety", "factor_min", "beta1") and v == 0):
                raise ValueError(f"{name} must be a finite number in {'(' if lo == 0 else '['}{lo}, {hi}]; got {shown(v)}")

    def factor(self, err: Any, prev_err: Any, order: int, accept: Any, finite: Any, rejected_before: Any) -> Any:
        """Multiplier of each run's step after a trial step with error norm ``err``.

        A non-finite trial shrinks by ``factor_min``; a rejected one never
        grows; an accepted step right after a rejection does not grow either.
        """
        xp = xp_of(err)
        beta1 = 1.0 / order if self.beta1 is None else self.beta1
        ok = finite & (err > 0)
        safe_err = xp.where(ok, err, 1.0)
        f = self.safety * safe_err ** (-beta1)
        if self.beta2:
            f = f * xp.where(prev_err > 0, prev_err, 1.0) ** self.beta2
        # the clip to [factor_min, factor_max] and min(f, 1) as wheres (f is finite here): with Python scalars,
        # array_api_compat's torch clip and minimum call what torch.compile cannot trace (compile=True)
        f = xp.where(f < self.factor_max, f, self.factor_max)
        f = xp.where(ok, xp.where(f > self.factor_min, f, self.factor_min), self.factor_max)
        capped = xp.where(f < 1.0, f, 1.0)
        f = xp.where(accept & rejected_before, capped, f)
        return xp.where(accept, f, xp.where(finite, capped, self.factor_min))
