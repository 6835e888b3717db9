"""Output times and steps, host buffers filled as runs cross them, and the engine's raw result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validate import real_array
from ._validate import shown
from .backend import to_numpy

__all__ = ["Recorder", "RunResult", "check_record_steps", "check_times", "log_steps", "log_times"]


@dataclass(frozen=True)
class RunResult:
    """What an integrator returns: host arrays, before a model names them."""

    times: np.ndarray
    observables: dict[str, np.ndarray]
    final: tuple[np.ndarray, ...]
    status: np.ndarray
    stop_step: np.ndarray
    stop_time: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


def log_times(t_max: float, num: int = 100, t_min: float | None = None) -> np.ndarray:
    """Output times ``0`` followed by ``num - 1`` log-spaced times up to ``t_max``.

    These dynamics live on logarithmic time scales (plateaus of length
    ``log(1/alpha)``), so log spacing resolves both the early and late phases.
    """
    if not (isinstance(t_max, (int, float)) and math.isfinite(t_max) and t_max > 0):
        raise ValueError(f"t_max must be a finite number > 0; got {shown(t_max)}")
    if not isinstance(num, int) or num < 2:
        raise ValueError(f"num must be an integer >= 2; got {shown(num)}")
    t_min = t_max * 1e-6 if t_min is None else t_min
    if not 0 < t_min < t_max:
        raise ValueError(f"t_min must lie in (0, t_max={t_max}); got {shown(t_min)}")
    return np.concatenate([[0.0], np.geomspace(t_min, t_max, num - 1)])


def log_steps(steps: int, num: int = 100) -> np.ndarray:
    """Recording steps ``0..steps``, log-spaced and de-duplicated (always includes 0 and ``steps``)."""
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {shown(steps)}")
    pts = np.unique(np.round(np.geomspace(1, steps, max(num - 1, 1))).astype(np.int64))
    return np.unique(np.concatenate([[0], pts, [steps]]))


def check_times(t_eval: Any, t_max: float) -> np.ndarray:
    """Validated output times in ``[0, t_max]`` (:func:`log_times` when ``t_eval`` is None)."""
    if not (isinstance(t_max, (int, float)) and math.isfinite(t_max) and t_max > 0):
        raise ValueError(f"t_max must be a finite number > 0; got {shown(t_max)}")
    t_eval = log_times(t_max) if t_eval is None else real_array("t_eval", t_eval, 1)
    if np.any(np.diff(t_eval) <= 0):
        raise ValueError("t_eval must be finite and strictly increasing")
    if t_eval[0] < 0 or t_eval[-1] > t_max * (1 + 1e-12):
        raise ValueError(f"t_eval must lie in [0, t_max={t_max}]")
    return np.minimum(t_eval, t_max)


def check_record_steps(record_at: Any, steps: int, name: str = "record_at") -> np.ndarray:
    """Validated recording steps in ``[0, steps]`` (:func:`log_steps` when ``record_at`` is None)."""
    if record_at is None:
        return log_steps(steps)
    raw = real_array(name, record_at, 1)
    if np.any(raw != np.round(raw)) or raw.min() < 0 or raw.max() > steps:
        raise ValueError(f"{name} must be a 1-D list of integers in [0, steps={steps}] for a discrete algorithm")
    return np.unique(raw.astype(np.int64))


class Recorder:
    """Host buffers ``(B, T, ...)``, NaN until filled, written run by run as each crosses an output time."""

    def __init__(self, batch: int, n_out: int) -> None:
        self.batch, self.n_out = batch, n_out
        self.buf: dict[str, np.ndarray] = {}

    def _buffer(self, name: str, host: np.ndarray) -> np.ndarray:
        if name not in self.buf:
            self.buf[name] = np.full((self.batch, self.n_out) + host.shape[1:], np.nan)
        return self.buf[name]

    def write(self, obs: dict[str, Any], src: np.ndarray, dst: np.ndarray, cols: np.ndarray) -> None:
        """Row ``src[i]`` of each observable goes to run ``dst[i]`` at output ``cols[i]``."""
        for name, value in obs.items():
            host = np.asarray(to_numpy(value), dtype=float)
            self._buffer(name, host)[dst, cols] = host[src]

    def fill_after(self, obs: dict[str, Any], src: np.ndarray, dst: np.ndarray, first: np.ndarray) -> None:
        """Repeat row ``src[i]`` (a converged run's final values) for run ``dst[i]`` from output ``first[i]`` on."""
        later = np.arange(self.n_out)[None, :] >= first[:, None]  # (len(dst), T)
        for name, value in obs.items():
            host = np.asarray(to_numpy(value), dtype=float)
            buf = self._buffer(name, host)
            mask = later.reshape(later.shape + (1,) * (host.ndim - 1))
            buf[dst] = np.where(mask, host[src][:, None], buf[dst])

    def blank_after(self, stop_col: np.ndarray, rows: np.ndarray) -> None:
        """NaN from column ``stop_col[b]`` on for the runs that failed."""
        later = (np.arange(self.n_out)[None, :] >= stop_col[:, None]) & rows[:, None]
        for name, arr in self.buf.items():
            mask = later.reshape(later.shape + (1,) * (arr.ndim - 2))
            self.buf[name] = np.where(mask, np.nan, arr)
