r"""One explicit Runge-Kutta step of a batch, the continuous extension, and the starting step.

:class:`Stages` holds a tableau's coefficients as backend arrays and an
``(s, B, P)`` buffer of stage slopes, so that every stage combination is one
matrix-vector product over the buffer instead of a chain of scaled additions
(at B = 64 that is ten times faster in NumPy, whose per-operation cost
dominates small steps). :func:`rk_step` is the one step function: the adaptive
loop and the order tests both call it.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ._validate import shown
from .backend import device_of as _device, xp_of
from .tableau import DOPRI5, ButcherTableau

__all__ = ["Stages", "column", "dopri5_step", "initial_step", "rk_step"]

_TINY = float(np.finfo(np.float64).tiny)


def column(v: Any, like: Any) -> Any:
    """A per-run vector ``(B,)`` as a ``(B, 1)`` column in ``like``'s dtype."""
    xp = xp_of(like)
    v = v if v.dtype == like.dtype else xp.astype(v, like.dtype)
    return xp.reshape(v, (v.shape[0], 1))


class Stages:
    """A tableau's coefficients on the backend and the stage buffer ``K`` of shape ``(stages, B, P)``."""

    def __init__(self, tableau: ButcherTableau, like: Any) -> None:
        xp, dt, dev = xp_of(like), like.dtype, _device(like)
        self.xp, self.tableau = xp, tableau
        as_dev = lambda v: xp.asarray(np.asarray(v, dtype=np.float64), dtype=dt, device=dev)  # noqa: E731
        self.a = [None] + [as_dev(row) for row in tableau.a[1:]]
        self.b = as_dev(tableau.b)
        self.e = as_dev(tableau.e)
        self.p = np.asarray(tableau.dense) if tableau.dense else None
        self.k = xp.zeros((tableau.stages,) + tuple(like.shape), dtype=dt, device=dev)

    def resize(self, like: Any) -> None:
        """A new buffer for a batch of ``like``'s shape (after finished runs left it, or because the old one
        is held for a step's dense output)."""
        self.k = self.xp.zeros((self.tableau.stages,) + tuple(like.shape), dtype=like.dtype, device=_device(like))

    def comb(self, coef: Any) -> Any:
        """``sum_i coef[i] K[i]`` over the first ``len(coef)`` stages."""
        xp, k = self.xp, self.k
        n = coef.shape[0]
        return xp.reshape(coef @ xp.reshape(k[:n, ...], (n, -1)), tuple(k.shape[1:]))

    def error(self, hc: Any) -> Any:
        """The embedded error estimate ``h sum_i e_i K_i`` (after the last stage is filled)."""
        return hc * self.comb(self.e)

    def dense(self, y: Any, hc: Any, theta: Any, k: Any = None) -> Any:
        """The continuous extension at ``t + theta h`` from the step that started at ``y`` (``theta`` per run;
        ``k``: that step's stage buffer, the current one by default)."""
        if self.p is None:
            raise ValueError(f"tableau {shown(self.tableau.name)} has no dense output")
        xp = self.xp
        powers = xp.stack([theta**j for j in range(1, self.p.shape[1] + 1)])  # (m, B)
        p = xp.asarray(self.p, dtype=powers.dtype, device=_device(theta))
        w = xp.astype(p @ powers, y.dtype)  # (stages, B): per-run stage weights
        return y + hc * xp.sum(w[:, :, None] * (self.k if k is None else k), axis=0)


def rk_step(stages: Stages, slope: Callable[[Any], Any], y: Any, hc: Any, k1: Any) -> Any:
    """One step of size ``hc`` ((B, 1)) from ``y`` with ``k1 = slope(y)``; returns the propagated solution.

    Fills the stage buffer up to the propagated stages. For a first-same-as-last
    pair the caller stores the slope at the returned point as the last stage
    (it is the next step's ``k1``) before asking for :meth:`Stages.error`.
    """
    stages.k[0, ...] = k1
    for i in range(1, len(stages.tableau.c)):
        stages.k[i, ...] = slope(y + hc * stages.comb(stages.a[i]))
    return y + hc * stages.comb(stages.b)


def dopri5_step(f: Callable[[Any], Any], y: Any, h: float,
                tableau: ButcherTableau = DOPRI5) -> tuple[Any, Any, Callable[[float], Any]]:
    """One fixed step of ``dy/dt = f(y)`` for a ``(B, P)`` array ``y``, by :func:`rk_step`.

    Returns ``(y_new, error_estimate, dense)`` where ``dense(theta)`` evaluates
    the continuous extension at ``t + theta h``. This is the step the adaptive
    integrator takes; tests fit its order from error-against-``h`` slopes.
    """
    xp = xp_of(y)
    stages = Stages(tableau, y)
    hc = xp.full((y.shape[0], 1), float(h), dtype=y.dtype, device=_device(y))
    y_new = rk_step(stages, f, y, hc, f(y))
    if tableau.fsal:
        stages.k[-1, ...] = f(y_new)
    return y_new, stages.error(hc), lambda theta: stages.dense(y, hc, xp.full((y.shape[0],), float(theta),
                                                                                 dtype=y.dtype, device=_device(y)))


def initial_step(rhs: Callable, y: Any, k1: Any, t_max: float, rtol: float, atol: float, order: int) -> Any:
    """Starting step per run (Hairer, Norsett & Wanner, Sec. II.4, "starting step size").

    ``rhs(y) -> (loss, grad_sq, slope)``; returns ``h0`` of shape ``(B,)`` in float64.
    """
    xp = xp_of(y)
    f64 = xp.float64
    scale = atol + rtol * xp.abs(y) + _TINY

    def rms(x: Any) -> Any:
        r = x / scale
        return xp.astype(xp.sqrt(xp.mean(r * r, axis=1)), f64)

    d0, d1 = rms(y), rms(k1)
    h0 = xp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / xp.where(d1 > 0, d1, 1.0))
    h0 = xp.where(xp.isfinite(h0), h0, 1e-6)
    _, _, f1 = rhs(y + column(h0, y) * k1)
    d2 = rms(f1 - k1) / h0
    dmax = xp.maximum(d1, d2)
    h1 = xp.where(
        (dmax <= 1e-15) | ~xp.isfinite(dmax),
        xp.maximum(xp.full_like(h0, 1e-6), h0 * 1e-3),
        (0.01 / xp.where(dmax > 0, dmax, 1.0)) ** (1.0 / order),
    )
    return xp.minimum(xp.minimum(100 * h0, h1), xp.full_like(h0, float(t_max)))
