"""Saxe, McClelland & Ganguli 2014 and Arora, Cohen & Hazan 2018: the exact mode dynamics of a deep linear network, its
learning time, and the end-to-end flow of a mode.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import integrate

from .._format import shown
from .common import _positive

__all__ = ["end_to_end_mode", "saxe_learning_time", "saxe_mode"]


def saxe_mode(t: Any, s: float, u0: float, tau: float = 1.0) -> np.ndarray:
    r"""Strength of one mode of a two-layer linear network from a small aligned, balanced start.

    .. math:: u(t) = \frac{s\,e^{2st/\tau}}{e^{2st/\tau} - 1 + s/u_0},

    the solution of :math:`\tau\dot u = 2u(s - u)`, :math:`u(0) = u_0` (Saxe,
    McClelland & Ganguli 2014, Eq. 6). ``t`` may be an array.
    """
    s, u0, tau = _positive("s", s), _positive("u0", u0), _positive("tau", tau)
    arr = np.asarray(t) if not isinstance(t, (str, bytes)) else np.asarray(None)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"t must be a real number or array; got {type(t).__name__}")
    t = arr.astype(float)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("t must be finite and >= 0 (time from the start at u0)")
    # Written with exp(-2st/tau) so that large t does not overflow.
    decay = np.exp(-2 * s * t / tau)
    return s / (1 + (s / u0 - 1) * decay)


def saxe_learning_time(s: float, u0: float, uf: float, tau: float = 1.0) -> float:
    r"""Time for a mode to grow from :math:`u_0` to :math:`u_f`:
    :math:`t = \frac{\tau}{2s}\ln\frac{u_f(s - u_0)}{u_0(s - u_f)}` (Saxe et al. 2014, Eq. 7)."""
    s, u0, uf, tau = _positive("s", s), _positive("u0", u0), _positive("uf", uf), _positive("tau", tau)
    if not u0 < uf < s:
        raise ValueError(f"need u0 < uf < s; got u0={u0}, uf={uf}, s={s}")
    return tau / (2 * s) * math.log(uf * (s - u0) / (u0 * (s - uf)))


def end_to_end_mode(t: Any, s: float, sigma0: float, depth: int) -> np.ndarray:
    r"""A mode of a depth-N linear network under balanced initialisation (Arora, Cohen & Hazan 2018, Thm 1).

    The end-to-end matrix follows
    :math:`\dot W = -\sum_{j=1}^N [WW^\top]^{(j-1)/N}\nabla L(W)[W^\top W]^{(N-j)/N}`; on a
    target-aligned mode this is
    :math:`\dot\sigma = N\sigma^{2-2/N}(s - \sigma)`, integrated here to
    round-off (scipy ``solve_ivp``, DOP853, rtol 1e-13). For N = 2 it is
    :func:`saxe_mode`.
    """
    s, sigma0 = _positive("s", s), _positive("sigma0", sigma0)
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
        raise ValueError(f"depth must be an integer >= 1; got {shown(depth)}")
    t = np.atleast_1d(np.asarray(t, dtype=float))
    if np.any(t < 0) or np.any(np.diff(t) < 0):
        raise ValueError("t must be non-negative and non-decreasing")
    n = int(depth)
    sol = integrate.solve_ivp(lambda _, x: n * np.abs(x) ** (2 - 2 / n) * (s - x), (0, float(t[-1]) or 1.0),
                              [sigma0], method="DOP853", rtol=1e-13, atol=1e-300, t_eval=t, dense_output=False)
    return sol.y[0]
