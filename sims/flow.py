r"""Integrators for a batch of independent runs, written against the array API.

A *state* is a tuple of arrays, each with the batch axis ``B`` first. A model
supplies one function

.. code-block:: python

    loss_grad(state, weights=None) -> (loss, grads)

returning the per-run loss, shape ``(B,)``, and the gradient, a tuple shaped
like ``state``. ``weights`` (shape ``(B, n)``, rows summing to one) are sample
weights: ``None`` means the full-batch mean, and mini-batch SGD passes the
indicator of the mini-batch divided by its size. Only the array API is used on
backend arrays, so the same code runs on NumPy, CuPy, PyTorch and
``array_api_strict``.

Two families of algorithms:

* continuous gradient flow :math:`\dot\theta = -\nabla L(\theta)`, by
  :func:`integrate_flow`: the Dormand-Prince 5(4) embedded Runge-Kutta pair
  (Dormand & Prince 1980; dense output of Shampine 1986, as in Hairer,
  Norsett & Wanner, *Solving ODEs I*, Sec. II.6) with a step size and error
  control of its own for every run;
* discrete update rules, by :func:`run_discrete`: :class:`GD`, :class:`SGD`,
  :class:`SAM` and :class:`PreconditionedGD` (sub-gradient methods are GD with
  a step schedule such as :func:`geometric` on a non-smooth loss).

Each run stops on its own: *converged* when its loss or gradient norm falls
below tolerance, *diverged* at the first non-finite value or blow-up (the step
is recorded; the other runs carry on), or out of time.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
from array_api_compat import device as _device

from .backend import asarray, host_rng, to_numpy, xp_of
from .trajectory import Status

__all__ = [
    "GD",
    "GradientRegularized",
    "SAM",
    "SGD",
    "Flow",
    "PreconditionedGD",
    "RunResult",
    "StopRule",
    "geometric",
    "integrate_flow",
    "log_times",
    "log_steps",
    "run_discrete",
    "dopri5_step",
]

State = tuple[Any, ...]
LossGrad = Callable[..., tuple[Any, State]]
Observe = Callable[[State], dict[str, Any]]

# ---------------------------------------------------------------------------
# Dormand-Prince 5(4): nodes, stages, 5th-order weights, error weights
# (5th minus embedded 4th order) and the 4th-order dense-output polynomial.
# ---------------------------------------------------------------------------
_DP_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_DP_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
_DP_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)
# Row i: coefficients of theta, theta^2, theta^3, theta^4 multiplying stage i.
_DP_P = (
    (1.0, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432),
    (0.0, 0.0, 0.0, 0.0),
    (0.0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799),
    (0.0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072),
    (0.0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632),
    (0.0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844),
    (0.0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423),
)
DP_ORDER = 5  #: order of the propagated solution (local extrapolation)
DP_ERROR_ORDER = 4  #: order of the embedded error estimator


# ---------------------------------------------------------------------------
# Flat batched states: the engine works on one (B, P) array
# ---------------------------------------------------------------------------
class _Flat:
    """Packs a tuple state into one ``(B, P)`` array and back (views where possible).

    Working on a single array makes every Runge-Kutta combination one
    operation instead of one per component.
    """

    def __init__(self, state: Sequence[Any]) -> None:
        state = tuple(state)
        if not state:
            raise ValueError("state0 must hold at least one array")
        for x in state:
            if getattr(x, "ndim", 0) < 1 or x.shape[0] != state[0].shape[0]:
                raise ValueError("every array of state0 must share the leading batch axis B")
            if x.dtype != state[0].dtype:
                raise ValueError("every array of state0 must share one dtype")
        self.xp = xp_of(state[0])
        self.batch = int(state[0].shape[0])
        self.shapes = [tuple(x.shape[1:]) for x in state]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.identity = len(state) == 1 and len(self.shapes[0]) == 1

    def pack(self, parts: Sequence[Any]) -> Any:
        if self.identity:
            return parts[0]
        xp, b = self.xp, parts[0].shape[0]
        flat = [xp.reshape(x, (b, n)) for x, n in zip(parts, self.sizes)]
        return flat[0] if len(flat) == 1 else xp.concat(flat, axis=1)

    def unpack(self, flat: Any, host: bool = False) -> State:
        """Split ``flat`` into the state's arrays (``host=True``: ``flat`` is a NumPy array)."""
        if self.identity:
            return (flat,)
        out, start, xp = [], 0, (np if host else self.xp)
        for shape, n in zip(self.shapes, self.sizes):
            out.append(xp.reshape(flat[:, start : start + n], (flat.shape[0],) + shape))
            start += n
        return tuple(out)


def _col(v: Any, like: Any) -> Any:
    """A per-run vector ``(B,)`` as a ``(B, 1)`` column in ``like``'s dtype."""
    xp = xp_of(like)
    v = v if v.dtype == like.dtype else xp.astype(v, like.dtype)
    return xp.reshape(v, (v.shape[0], 1))


def _converged(xp: Any, loss: Any, gn2: Any, loss_tol: Any, grad_tol2: float) -> Any:
    """Per-run convergence test; a zero tolerance disables its test (losses may be negative)."""
    by_loss = (loss_tol > 0) & (xp.astype(loss, xp.float64) <= loss_tol)
    return by_loss | ((grad_tol2 > 0) & (gn2 <= grad_tol2)) if grad_tol2 > 0 else by_loss


def _rowsq(x: Any) -> Any:
    return xp_of(x).sum(x * x, axis=1)


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
            raise ValueError(f"loss_tol must be a finite number >= 0 or a tuple of them; got {self.loss_tol!r}")
        v = self.grad_tol
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"grad_tol must be a finite number >= 0; got {v!r}")
        if not isinstance(self.blowup, (int, float)) or not self.blowup > 1 or not math.isfinite(self.blowup):
            raise ValueError(f"blowup must be a finite number > 1; got {self.blowup!r}")

    def loss_tols(self, batch: int, like: Any) -> Any:
        """The loss thresholds as a ``(B,)`` array in ``like``'s dtype, on its device."""
        tol = np.asarray(self.loss_tol, dtype=float)
        if tol.ndim == 1 and tol.shape[0] != batch:
            raise ValueError(f"loss_tol has {tol.shape[0]} values but the batch has {batch} runs")
        xp = xp_of(like)
        return xp.asarray(np.broadcast_to(tol, (batch,)).astype(np.float64), device=_device(like))


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
        raise ValueError(f"t_max must be a finite number > 0; got {t_max!r}")
    if not isinstance(num, int) or num < 2:
        raise ValueError(f"num must be an integer >= 2; got {num!r}")
    t_min = t_max * 1e-6 if t_min is None else t_min
    if not 0 < t_min < t_max:
        raise ValueError(f"t_min must lie in (0, t_max={t_max}); got {t_min!r}")
    return np.concatenate([[0.0], np.geomspace(t_min, t_max, num - 1)])


def log_steps(steps: int, num: int = 100) -> np.ndarray:
    """Recording steps ``0..steps``, log-spaced and de-duplicated (always includes 0 and ``steps``)."""
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    pts = np.unique(np.round(np.geomspace(1, steps, max(num - 1, 1))).astype(np.int64))
    return np.unique(np.concatenate([[0], pts, [steps]]))


def default_rtol(dtype: str) -> float:
    """The flow tolerance the simulators use unless told otherwise: 1e-10 in float64, 1e-5 in float32
    (both well above the 10 eps that :func:`integrate_flow` requires)."""
    return 1e-10 if dtype == "float64" else 1e-5


def _check_times(t_eval: Any, t_max: float) -> np.ndarray:
    if not (isinstance(t_max, (int, float)) and math.isfinite(t_max) and t_max > 0):
        raise ValueError(f"t_max must be a finite number > 0; got {t_max!r}")
    t_eval = log_times(t_max) if t_eval is None else np.asarray(t_eval, dtype=float)
    if t_eval.ndim != 1 or t_eval.size == 0:
        raise ValueError("t_eval must be a non-empty 1-D array of times")
    if not np.all(np.isfinite(t_eval)) or np.any(np.diff(t_eval) <= 0):
        raise ValueError("t_eval must be finite and strictly increasing")
    if t_eval[0] < 0 or t_eval[-1] > t_max * (1 + 1e-12):
        raise ValueError(f"t_eval must lie in [0, t_max={t_max}]")
    return np.minimum(t_eval, t_max)


# ---------------------------------------------------------------------------
# Output buffers on the host
# ---------------------------------------------------------------------------
class _Recorder:
    """Host buffers (B, T, ...) filled run by run as each crosses an output time."""

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


# ---------------------------------------------------------------------------
# Gradient flow
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Flow:
    """Gradient flow by adaptive Dormand-Prince 5(4).

    Attributes
    ----------
    rtol, atol : float
        Per-run error control: a step is accepted when the RMS over all
        parameters of ``err / (atol + rtol * max(|y|, |y_new|))`` is at most 1.
    max_steps : int
        Step attempts per run before it stops with status ``max_steps``.
    """

    rtol: float = 1e-8
    atol: float = 1e-12
    max_steps: int = 200_000

    def __post_init__(self) -> None:
        if not (isinstance(self.rtol, (int, float)) and 0 < self.rtol < 1):
            raise ValueError(f"rtol must lie in (0, 1); got {self.rtol!r}")
        if not (isinstance(self.atol, (int, float)) and math.isfinite(self.atol) and self.atol >= 0):
            raise ValueError(f"atol must be a finite number >= 0; got {self.atol!r}")
        if not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"max_steps must be an integer >= 1; got {self.max_steps!r}")


def _initial_step(rhs: Callable, y: Any, k1: Any, t_max: float, rtol: float, atol: float) -> Any:
    """Starting step per run (Hairer, Norsett & Wanner, Sec. II.4, "starting step size")."""
    xp = xp_of(y)
    f64 = xp.float64
    scale = atol + rtol * xp.abs(y) + _TINY

    def rms(x: Any) -> Any:
        r = x / scale
        return xp.astype(xp.sqrt(xp.mean(r * r, axis=1)), f64)

    d0, d1 = rms(y), rms(k1)
    h0 = xp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / xp.where(d1 > 0, d1, 1.0))
    h0 = xp.where(xp.isfinite(h0), h0, 1e-6)
    _, _, f1 = rhs(y + _col(h0, y) * k1)
    d2 = rms(f1 - k1) / h0
    dmax = xp.maximum(d1, d2)
    h1 = xp.where(
        (dmax <= 1e-15) | ~xp.isfinite(dmax),
        xp.maximum(xp.full_like(h0, 1e-6), h0 * 1e-3),
        (0.01 / xp.where(dmax > 0, dmax, 1.0)) ** (1.0 / DP_ORDER),
    )
    return xp.minimum(xp.minimum(100 * h0, h1), xp.full_like(h0, float(t_max)))


class _Tableau:
    """Dormand-Prince coefficients as backend arrays, and a (7, B, P) stage buffer.

    Every Runge-Kutta combination is then one matrix-vector product over the
    buffer instead of a chain of scaled additions (at B = 64 that is ten times
    faster in NumPy, whose per-operation cost dominates small steps).
    """

    def __init__(self, xp: Any, like: Any) -> None:
        dt, dev = like.dtype, _device(like)
        self.xp = xp
        self.a = [None] + [xp.asarray(np.asarray(row, dtype=np.float64), dtype=dt, device=dev) for row in _DP_A[1:]]
        self.b = xp.asarray(np.asarray(_DP_B), dtype=dt, device=dev)
        self.e = xp.asarray(np.asarray(_DP_E), dtype=dt, device=dev)
        self.k = xp.zeros((7,) + tuple(like.shape), dtype=dt, device=dev)

    def resize(self, like: Any) -> None:
        self.k = self.xp.zeros((7,) + tuple(like.shape), dtype=like.dtype, device=_device(like))

    def comb(self, coef: Any) -> Any:
        """``sum_i coef[i] K[i]`` for the first ``len(coef)`` stages."""
        xp, k = self.xp, self.k
        n = coef.shape[0]
        return xp.reshape(coef @ xp.reshape(k[:n, ...], (n, -1)), tuple(k.shape[1:]))

    def dense(self, y: Any, hc: Any, theta: Any) -> Any:
        """The 4th-order continuous extension at ``t + theta h`` (``theta`` per run, in [0, 1])."""
        xp = self.xp
        powers = xp.stack([theta, theta * theta, theta**3, theta**4])  # (4, B)
        p = xp.asarray(np.asarray(_DP_P), dtype=powers.dtype, device=_device(theta))
        w = xp.astype(p @ powers, y.dtype)  # (7, B): per-run stage weights
        return y + hc * xp.sum(w[:, :, None] * self.k, axis=0)


def _dp_step(tab: _Tableau, slope: Callable, y: Any, hc: Any, k1: Any) -> tuple[Any, Any]:
    """One Dormand-Prince step of size ``hc`` ((B, 1)) from ``y`` with ``k1 = f(y)``.

    Fills ``tab.k[0..5]`` and returns the 5th-order solution and the error
    estimate's ingredients; the caller evaluates ``f`` at the new point
    (FSAL: that slope is the next step's ``k1``) into ``tab.k[6]``.
    """
    tab.k[0, ...] = k1
    for i in range(1, 6):
        tab.k[i, ...] = slope(y + hc * tab.comb(tab.a[i]))
    return y + hc * tab.comb(tab.b)


def dopri5_step(f: Callable[[Any], Any], y: Any, h: float) -> tuple[Any, Any, Callable[[float], Any]]:
    """One fixed Dormand-Prince 5(4) step of ``dy/dt = f(y)`` for a ``(B, P)`` array ``y``.

    Returns ``(y_new, error_estimate, dense)`` where ``dense(theta)`` evaluates
    the continuous extension at ``t + theta h``. The adaptive integrator takes
    exactly these steps; this entry point exists so the method's order can be
    measured (tests fit the error slope against ``h``).
    """
    xp = xp_of(y)
    tab = _Tableau(xp, y)
    hc = xp.full((y.shape[0], 1), float(h), dtype=y.dtype)
    y_new = _dp_step(tab, f, y, hc, f(y))
    tab.k[6, ...] = f(y_new)
    err = hc * tab.comb(tab.e)
    return y_new, err, lambda theta: tab.dense(y, hc, xp.full((y.shape[0],), float(theta), dtype=y.dtype))


_TINY = float(np.finfo(np.float64).tiny)


def _quiet(fn: Callable) -> Callable:
    """Silence NumPy's floating-point warnings inside an integrator.

    Overflow in a run that blows up is detected and reported per run (status
    ``diverged``, with its step); NumPy's warnings about it would only be
    noise, and other backends do not warn.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            return fn(*args, **kwargs)

    return wrapper


@_quiet
def integrate_flow(
    loss_grad: LossGrad,
    state0: Sequence[Any],
    *,
    t_max: float,
    t_eval: Any = None,
    observe: Observe | None = None,
    method: Flow = Flow(),
    stop: StopRule = StopRule(),
    compact: bool = False,
) -> RunResult:
    r"""Integrate :math:`\dot\theta = -\nabla L(\theta)` for every run of the batch.

    Parameters
    ----------
    loss_grad : callable
        ``loss_grad(state) -> (loss (B,), grads)``.
    state0 : tuple of arrays, each (B, ...)
        Initial state on the backend.
    t_max : float
        Final time; runs still going then stop with ``out_of_time``.
    t_eval : array_like, optional
        Increasing output times in ``[0, t_max]``; :func:`log_times` by default.
    observe : callable, optional
        ``observe(state) -> {name: (B, ...)}`` evaluated at every output time
        (the state there comes from the method's 4th-order dense output).
    method : Flow
        Tolerances and step budget.
    stop : StopRule
        Convergence and blow-up thresholds.
    compact : bool
        Drop finished runs from the working batch, so the cost follows the
        runs still going. Only valid when ``loss_grad`` treats rows
        independently and holds no per-run data of its own (it is then called
        on sub-batches); otherwise finished runs stay in the batch, frozen.

    Returns
    -------
    RunResult

    Notes
    -----
    Each run carries its own time ``t_b`` and step ``h_b``; the controller is
    the standard one for an order-5(4) pair (Hairer, Norsett & Wanner,
    Sec. II.4): ``h <- h * clip(0.9 * err^(-1/5), 0.2, 10)``, never growing
    right after a rejection. A non-finite trial step counts as rejected; a
    step that shrinks below ``10 eps max(|t|, 1)`` ends the run as
    ``step_underflow`` and a run that uses ``max_steps`` attempts as
    ``max_steps``. Host transfers per step: the per-run status, time
    and acceptance flag (3 numbers per run) that drive retirement and dense
    output.
    """
    flat = _Flat(state0)
    xp, batch = flat.xp, flat.batch
    y = flat.pack(state0)
    dev = _device(y)
    eps = float(np.finfo(np.float64 if y.dtype == xp.float64 else np.float32).eps)
    if method.rtol < 10 * eps:
        name = "float64" if y.dtype == xp.float64 else "float32"
        raise ValueError(f"rtol={method.rtol:g} is below what {name} resolves: rtol must be >= {10 * eps:.1e} "
                         f"(10 eps); use float64 or a larger rtol")
    t_eval = _check_times(t_eval, t_max)
    n_out = t_eval.shape[0]
    observe_flat = (lambda z: observe(flat.unpack(z))) if observe is not None else (lambda z: {})
    f64 = xp.float64
    rtol, atol = float(method.rtol), float(method.atol)
    grad_tol2 = stop.grad_tol**2
    t_end = float(t_max)

    def grad_flat(z: Any) -> tuple[Any, Any]:
        loss, g = loss_grad(flat.unpack(z))
        return loss, flat.pack(g)

    def slope(z: Any) -> Any:
        return -grad_flat(z)[1]

    def rhs(z: Any) -> tuple[Any, Any, Any]:
        loss, g = grad_flat(z)
        return loss, _rowsq(g), -g

    rec = _Recorder(batch, n_out)
    next_idx = np.full(batch, int(np.searchsorted(t_eval, 0.0, side="right")), dtype=np.int64)  # per run
    if next_idx[0]:
        obs0 = observe_flat(y)
        for j in range(next_idx[0]):
            rec.write(obs0, np.arange(batch), np.arange(batch), np.full(batch, j))

    loss, gn2, k1 = rhs(y)
    loss_tol = stop.loss_tols(batch, y)
    loss0 = xp.astype(loss, f64)
    loss_cap = stop.blowup * xp.maximum(loss0, xp.ones_like(loss0))
    norm_cap = stop.blowup**2 * (xp.astype(_rowsq(y), f64) + 1.0)
    bad0 = ~(xp.isfinite(loss0) & xp.isfinite(gn2))
    conv0 = ~bad0 & _converged(xp, loss, gn2, loss_tol, grad_tol2)
    code = xp.where(bad0, 2, xp.where(conv0, 1, xp.zeros((batch,), dtype=xp.int64, device=dev)))
    t = xp.zeros((batch,), dtype=f64, device=dev)
    n_steps = xp.zeros((batch,), dtype=xp.int64, device=dev)
    rejected = xp.zeros((batch,), dtype=xp.bool, device=dev)
    h = _initial_step(rhs, y, k1, t_max, rtol, atol)
    tab = _Tableau(xp, y)

    # Results per run, filled on the host as runs retire.
    runs = np.arange(batch)  # working row -> run index
    final = np.full((batch, y.shape[1]), np.nan)
    codes_h = np.zeros(batch, dtype=np.int64)
    steps_h = np.zeros(batch, dtype=np.int64)
    times_h = np.zeros(batch)

    while True:
        code_w = to_numpy(code)
        done = code_w > 0  # finished since the last retirement (-1: retired, kept in the batch)
        if done.any():
            rows = np.nonzero(done)[0]
            who = runs[rows]
            final[who] = to_numpy(y)[rows]
            codes_h[who] = code_w[rows]
            steps_h[who] = to_numpy(n_steps)[rows]
            times_h[who] = to_numpy(t)[rows]
            conv_rows = rows[code_w[rows] == 1]
            if conv_rows.size:
                rec.fill_after(observe_flat(y), conv_rows, runs[conv_rows], next_idx[runs[conv_rows]])
            if np.all(code_w != 0):
                break
        if done.any() and not compact:
            code = xp.where(code > 0, -1, code)
        elif done.any():
            keep = np.nonzero(~done)[0]
            kd = xp.asarray(keep, device=dev)
            y, k1 = xp.take(y, kd, axis=0), xp.take(k1, kd, axis=0)
            loss, gn2, t, h = (xp.take(a, kd, axis=0) for a in (loss, gn2, t, h))
            n_steps, rejected, code = (xp.take(a, kd, axis=0) for a in (n_steps, rejected, code))
            loss_tol, loss_cap, norm_cap = (xp.take(a, kd, axis=0) for a in (loss_tol, loss_cap, norm_cap))
            runs = runs[keep]
            tab.resize(y)

        active = code == 0
        h = xp.where(active, xp.minimum(h, t_end - t), 0.0)
        hc = _col(h, y)
        y_new = _dp_step(tab, slope, y, hc, k1)
        loss_new, g_new = grad_flat(y_new)
        k7 = -g_new
        gn2_new = _rowsq(g_new)
        tab.k[6, ...] = k7
        scale = atol + rtol * xp.maximum(xp.abs(y), xp.abs(y_new)) + _TINY
        r = hc * tab.comb(tab.e) / scale
        err_norm = xp.astype(xp.sqrt(xp.mean(r * r, axis=1)), f64)
        finite = xp.isfinite(err_norm) & xp.isfinite(xp.astype(loss_new, f64)) & xp.isfinite(gn2_new)
        accept = active & finite & (err_norm <= 1.0)

        # Step-size update: shrink on rejection or non-finite trial, cap growth after a rejection.
        ok_err = finite & (err_norm > 0)
        factor = xp.where(ok_err, 0.9 * xp.where(ok_err, err_norm, 1.0) ** (-1.0 / DP_ORDER), 10.0)
        factor = xp.clip(factor, 0.2, 10.0)
        factor = xp.where(accept & rejected, xp.minimum(factor, 1.0), factor)
        factor = xp.where(accept, factor, xp.where(finite, xp.minimum(factor, 1.0), 0.2))
        h_old, t_old = h, t
        t = xp.where(accept, t + h, t)
        h = xp.where(active, h * factor, h_old)
        rejected = active & ~accept
        n_steps = n_steps + xp.astype(active, xp.int64)

        # Dense output at every output time an accepted step crossed.
        t_host = to_numpy(t)
        acc_host = to_numpy(accept).astype(bool)
        while True:
            nxt_run = next_idx[runs]
            nxt = np.minimum(nxt_run, n_out - 1)
            rows = acc_host & (nxt_run < n_out) & (t_eval[nxt] <= t_host)
            if not rows.any():
                break
            t_out = xp.asarray(t_eval[nxt], dtype=f64, device=dev)
            theta = xp.clip((t_out - t_old) / xp.where(h_old > 0, h_old, 1.0), 0.0, 1.0)
            sel = np.nonzero(rows)[0]
            rec.write(observe_flat(tab.dense(y, _col(h_old, y), theta)), sel, runs[sel], nxt[sel])
            next_idx[runs[sel]] += 1

        # Move accepted runs, then classify every run.
        acol = xp.reshape(accept, (accept.shape[0], 1))
        y = xp.where(acol, y_new, y)
        k1 = xp.where(acol, k7, k1)
        loss = xp.where(accept, loss_new, loss)
        gn2 = xp.where(accept, gn2_new, gn2)
        blown = accept & ((xp.astype(loss, f64) > loss_cap) | (xp.astype(_rowsq(y), f64) > norm_cap))
        conv = accept & _converged(xp, loss, gn2, loss_tol, grad_tol2)
        timeout = accept & (t >= t_end * (1 - 4 * 2.2e-16))
        underflow = rejected & (h <= 10 * eps * xp.maximum(xp.abs(t), xp.ones_like(t)))
        over = active & (n_steps >= method.max_steps)
        for flag, value in ((blown, 2), (conv, 1), (timeout, 3), (over, 4), (underflow, 5)):
            code = xp.where((code == 0) & flag, value, code)

    status = np.array([_FLOW_CODES[c - 1] for c in codes_h])
    rec.blank_after(next_idx, ~np.isin(status, Status.FINITE))
    return RunResult(
        times=t_eval,
        observables=rec.buf,
        final=flat.unpack(final.astype(to_numpy(y).dtype), host=True),
        status=status,
        stop_step=steps_h,
        stop_time=times_h,
        info={"method": "dopri5", "rtol": rtol, "atol": atol},
    )


_FLOW_CODES = (Status.CONVERGED, Status.DIVERGED, Status.OUT_OF_TIME, Status.MAX_STEPS, Status.STEP_UNDERFLOW)


# ---------------------------------------------------------------------------
# Discrete update rules
# ---------------------------------------------------------------------------
def geometric(q: float) -> Callable[[int], float]:
    """Step schedule ``eta_k = eta_0 q^k`` (sub-gradient methods on non-smooth losses)."""
    if not (isinstance(q, (int, float)) and 0 < q <= 1):
        raise ValueError(f"q must lie in (0, 1]; got {q!r}")
    return lambda k: float(q) ** k


def _check_lr(lr: Any) -> None:
    arr = np.asarray(lr, dtype=float) if not callable(lr) else None
    if arr is None or arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"lr must be a finite number > 0 or a 1-D array of them (one per run); got {lr!r}")


@dataclass(frozen=True)
class GD:
    """Gradient descent ``theta <- theta - lr_k * grad L(theta)``.

    ``lr`` is a number or one value per run; ``schedule(k)`` multiplies it at
    step ``k`` (``None``: constant).
    """

    lr: Any
    schedule: Callable[[int], float] | None = None

    def __post_init__(self) -> None:
        _check_lr(self.lr)

    def step(self, y: Any, lg: Callable, lr: Any, weights: Any, flat: _Flat) -> tuple[Any, Any, Any]:
        loss, g = lg(y)
        return loss, _rowsq(g), y - lr * g


@dataclass(frozen=True)
class SGD:
    """Mini-batch SGD: the gradient of the loss on ``batch_size`` samples drawn
    without replacement, independently for every run and step, from a seeded
    host generator (so a seed fixes the schedule on every backend)."""

    lr: Any
    batch_size: int = 1
    schedule: Callable[[int], float] | None = None

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, (int, np.integer)) or self.batch_size < 1:
            raise ValueError(f"batch_size must be an integer >= 1; got {self.batch_size!r}")

    def step(self, y: Any, lg: Callable, lr: Any, weights: Any, flat: _Flat) -> tuple[Any, Any, Any]:
        _, g = lg(y, weights)
        return None, None, y - lr * g


@dataclass(frozen=True)
class SAM:
    r"""Sharpness-aware minimisation (Foret et al. 2021):
    ``theta <- theta - lr * grad L(theta + rho * g / ||g||)`` with
    ``g = grad L(theta)``; ``normalized=False`` uses ``theta + rho * g``
    (the unnormalised variant of Andriushchenko & Flammarion 2022 and
    Agarwala & Dauphin 2023)."""

    lr: Any
    rho: float
    normalized: bool = True
    schedule: Callable[[int], float] | None = None

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        if not (isinstance(self.rho, (int, float)) and math.isfinite(self.rho) and self.rho >= 0):
            raise ValueError(f"rho must be a finite number >= 0; got {self.rho!r}")

    def step(self, y: Any, lg: Callable, lr: Any, weights: Any, flat: _Flat) -> tuple[Any, Any, Any]:
        xp = xp_of(y)
        loss, g = lg(y)
        gn2 = _rowsq(g)
        if self.normalized:
            gn = xp.sqrt(gn2)
            coef = xp.where(gn > 0, self.rho / xp.where(gn > 0, gn, 1.0), 0.0)
            y_adv = y + _col(coef, y) * g
        else:
            y_adv = y + self.rho * g
        _, g_adv = lg(y_adv)
        return loss, gn2, y - lr * g_adv


@dataclass(frozen=True)
class PreconditionedGD:
    """``theta <- theta - lr * P(theta, grad L(theta))`` for a model-supplied
    preconditioner ``precondition(state, grads) -> direction`` (tuples shaped
    like the state; e.g. ScaledGD for matrix sensing)."""

    lr: Any
    precondition: Callable[[State, State], State]
    schedule: Callable[[int], float] | None = None

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        if not callable(self.precondition):
            raise TypeError("precondition must be callable: (state, grads) -> direction")

    def step(self, y: Any, lg: Callable, lr: Any, weights: Any, flat: _Flat) -> tuple[Any, Any, Any]:
        loss, g = lg(y)
        direction = flat.pack(self.precondition(flat.unpack(y), flat.unpack(g)))
        return loss, _rowsq(g), y - lr * direction


@dataclass(frozen=True)
class GradientRegularized:
    r"""Gradient descent on the gradient-regularised loss :math:`L + 	frac{\lambda}{2}\|
abla L\|^2`.

    Its gradient :math:`
abla L + \lambda H
abla L` is computed by the
    finite difference of Karakida et al. 2023 ("Understanding Gradient
    Regularization in Deep Learning", Sec. 3): a gradient-ascent step of size
    ``eps`` then :math:`
abla L + 	frac{\lambda}{\epsilon}(
abla L(	heta + \epsilon g) - g)`.
    Small ``eps`` (the default) is exact GR up to :math:`O(\epsilon)`; a
    finite ``eps`` is their "finite-difference GR", with an extra bias of its own.
    """

    lr: Any
    lam: float
    eps: float = 1e-6
    schedule: Callable[[int], float] | None = None

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        for name in ("lam", "eps"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0; got {v!r}")

    def step(self, y: Any, lg: Callable, lr: Any, weights: Any, flat: _Flat) -> tuple[Any, Any, Any]:
        loss, g = lg(y)
        _, g_up = lg(y + self.eps * g)
        return loss, _rowsq(g), y - lr * (g + (self.lam / self.eps) * (g_up - g))


Algorithm = GD | SGD | SAM | PreconditionedGD | GradientRegularized


def _minibatch_weights(xp: Any, idx: Any, n_samples: int, dtype: Any, dev: Any) -> Any:
    """Rows ``(B, n)`` equal to 1/b on the drawn samples: the mini-batch mean as weights."""
    ar = xp.arange(n_samples, device=dev)
    hits = xp.astype(idx[:, :, None] == ar[None, None, :], dtype)
    return xp.sum(hits, axis=1) / idx.shape[1]


def _minibatches(rng: np.random.Generator, batch: int, n_samples: int, size: int, chunk: int, xp: Any, dev: Any):
    """Endless per-step ``(B, size)`` sample indices, drawn on the host ``chunk`` steps at a time."""
    while True:
        keys = rng.random((chunk, batch, n_samples))
        idx = np.argpartition(keys, size - 1, axis=-1)[..., :size] if size < n_samples else np.argsort(keys, axis=-1)
        dev_idx = xp.asarray(idx.astype(np.int64), device=dev)
        for c in range(chunk):
            yield dev_idx[c, ...]


@_quiet
def run_discrete(
    rule: Algorithm,
    loss_grad: LossGrad,
    state0: Sequence[Any],
    *,
    steps: int,
    record_at: Any = None,
    observe: Observe | None = None,
    stop: StopRule = StopRule(),
    n_samples: int | None = None,
    seed: int = 0,
    check_every: int = 1,
) -> RunResult:
    """Run a discrete algorithm for ``steps`` steps on every run of the batch.

    Parameters
    ----------
    rule : GD, SGD, SAM, PreconditionedGD or GradientRegularized
        The update rule; its ``lr`` is a number or one value per run.
    loss_grad : callable
        ``loss_grad(state, weights=None) -> (loss (B,), grads)``.
    state0 : tuple of arrays, each (B, ...)
    steps : int
        Step budget; runs still going afterwards end ``out_of_time``.
    record_at : array_like of int, optional
        Steps at which ``observe`` is recorded (:func:`log_steps` by default).
    stop : StopRule
    n_samples : int, optional
        Number of samples ``n`` (required by :class:`SGD`).
    seed : int
        Seed of the host generator behind SGD's mini-batch schedule.
    check_every : int
        Convergence is tested every ``check_every`` steps (divergence every
        step, on the device); the loop also ends early at these points once
        every run has stopped.

    Returns
    -------
    RunResult
        ``times`` are step counts. ``stop_step`` is the step at which each run
        converged, or the step whose update first produced a non-finite or
        blown-up value (that update is not applied: ``final`` holds the last
        finite state).
    """
    flat = _Flat(state0)
    xp, batch = flat.xp, flat.batch
    y = flat.pack(state0)
    dev = _device(y)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {steps!r}")
    steps = int(steps)
    if record_at is None:
        record = log_steps(steps)
    else:
        try:
            raw = np.asarray(record_at, dtype=float)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"record_at must be integers in [0, steps={steps}]: {exc}") from exc
        if (raw.ndim != 1 or raw.size == 0 or not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw))
                or raw.min() < 0 or raw.max() > steps):
            raise ValueError(f"record_at must be a 1-D list of integers in [0, steps={steps}]")
        record = np.unique(raw.astype(np.int64))
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"check_every must be an integer >= 1; got {check_every!r}")
    observe_flat = (lambda z: observe(flat.unpack(z))) if observe is not None else (lambda z: {})
    lr_host = np.asarray(rule.lr, dtype=float)
    if lr_host.ndim == 1 and lr_host.shape[0] != batch:
        raise ValueError(f"lr has {lr_host.shape[0]} values but the batch has {batch} runs")
    lr_col = xp.reshape(asarray(np.broadcast_to(lr_host, (batch,)), xp, "float64"), (batch, 1))
    batches = None
    if isinstance(rule, SGD):
        if n_samples is None or rule.batch_size > n_samples:
            raise ValueError(f"batch_size must lie in [1, n_samples={n_samples}]; got {rule.batch_size}")
        chunk = max(1, min(steps, 4096 // batch))
        batches = _minibatches(host_rng(seed), batch, n_samples, rule.batch_size, chunk, xp, dev)

    def lg(z: Any, weights: Any = None) -> tuple[Any, Any]:
        loss, g = loss_grad(flat.unpack(z)) if weights is None else loss_grad(flat.unpack(z), weights)
        return loss, flat.pack(g)

    f64 = xp.float64
    rec = _Recorder(batch, record.shape[0])
    code = xp.zeros((batch,), dtype=xp.int64, device=dev)
    stop_step = xp.full((batch,), steps, dtype=xp.int64, device=dev)
    loss0, _ = lg(y)
    loss_cap = stop.blowup * xp.maximum(xp.astype(loss0, f64), xp.ones_like(xp.astype(loss0, f64)))
    norm_cap = stop.blowup**2 * (xp.astype(_rowsq(y), f64) + 1.0)
    grad_tol2 = stop.grad_tol**2
    loss_tol = stop.loss_tols(batch, y)
    rec_pos = 0
    all_rows = np.arange(batch)
    for k in range(steps + 1):
        if rec_pos < record.shape[0] and record[rec_pos] == k:
            rec.write(observe_flat(y), all_rows, all_rows, np.full(batch, rec_pos))
            rec_pos += 1
        checking = k % check_every == 0
        if k == steps or (checking and not bool(to_numpy(xp.any(code == 0)))):
            break
        active = code == 0
        factor = 1.0 if rule.schedule is None else float(rule.schedule(k))
        lr_k = lr_col * factor if lr_col.dtype == y.dtype else xp.astype(lr_col * factor, y.dtype)
        weights = None
        if batches is not None:
            weights = _minibatch_weights(xp, next(batches), n_samples, y.dtype, dev)
        loss, gn2, new = rule.step(y, lg, lr_k, weights, flat)
        if loss is None and checking:
            loss, g_full = lg(y)
            gn2 = _rowsq(g_full)
        if loss is not None:
            lf = xp.astype(loss, f64)
            # A bad loss at the current state: the previous update produced it.
            bad_here = active & (~xp.isfinite(lf) | (lf > loss_cap) | ~xp.isfinite(gn2))
            code = xp.where(bad_here, 2, code)
            stop_step = xp.where(bad_here, k, stop_step)
            active = code == 0
            if checking:
                conv = active & _converged(xp, loss, gn2, loss_tol, grad_tol2)
                code = xp.where(conv, 1, code)
                stop_step = xp.where(conv, k, stop_step)
                active = code == 0
        nn = xp.astype(_rowsq(new), f64)
        bad = active & (~xp.isfinite(nn) | (nn > norm_cap))
        code = xp.where(bad, 2, code)
        stop_step = xp.where(bad, k + 1, stop_step)
        active = code == 0
        y = xp.where(xp.reshape(active, (batch, 1)), new, y)

    status = np.array([_DISCRETE_CODES[int(c)] for c in to_numpy(code)])
    stop_h = to_numpy(stop_step).astype(np.int64)
    converged = np.nonzero(status == Status.CONVERGED)[0]
    if rec_pos < record.shape[0] and converged.size:  # stopped early: converged runs keep their final values
        rec.fill_after(observe_flat(y), converged, converged, np.full(converged.size, rec_pos))
    diverged = status == Status.DIVERGED
    if diverged.any():
        rec.blank_after(np.searchsorted(record, stop_h, side="left"), diverged)
    return RunResult(
        times=record.astype(float),
        observables=rec.buf,
        final=tuple(to_numpy(x) for x in flat.unpack(y)),
        status=status,
        stop_step=stop_h,
        stop_time=stop_h.astype(float),
        info={"method": type(rule).__name__.lower()},
    )


_DISCRETE_CODES = {0: Status.OUT_OF_TIME, 1: Status.CONVERGED, 2: Status.DIVERGED}
