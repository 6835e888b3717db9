r"""Gradient flow for a batch of independent runs, written against the array API.

A *state* is a tuple of arrays, each with the batch axis ``B`` first. A model
supplies one function

.. code-block:: python

    loss_grad(state, weights=None) -> (loss, grads)

returning the per-run loss, shape ``(B,)``, and the gradient, a tuple shaped
like ``state``. Only the array API is used on backend arrays, so the same
code runs on NumPy, CuPy, PyTorch and ``array_api_strict``.

:func:`integrate_flow` integrates :math:`\dot\theta = -\nabla L(\theta)` by an
embedded Runge-Kutta pair (Dormand-Prince 5(4) by default,
:data:`sims.engine.tableau.DOPRI5`) with a step size and error control of its own for
every run. The method is parts, as in diffrax: a self-validating
:class:`~sims.engine.tableau.ButcherTableau`, the step function
:func:`~sims.engine.rk.rk_step`, a step-size controller
:class:`~sims.engine.controller.PIController`, one :class:`~sims.engine.status.Status`
enumeration, and the short loop below. Discrete algorithms (GD, SGD, SAM,
preconditioned and gradient-regularised GD) are rule objects in
:mod:`sims.engine.rules`, run by :func:`sims.engine.discrete.run_discrete`; this module
re-exports them so that ``flow.GD(lr=...)`` and ``flow.Flow(rtol=...)`` sit
side by side.

Each run stops on its own: *converged* when its loss or gradient norm falls
below tolerance, *diverged* at the first non-finite value or blow-up (the step
is recorded; the other runs carry on), or out of time.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, fields
from typing import Any, Callable, Sequence

import numpy as np

from .backend import device_of as _device, to_numpy, xp_of
from .compiled import check_compile, compiler, fixed
from .controller import PIController, error_norm
from .discrete import run_discrete
from .recording import Recorder, RunResult, check_times, log_steps, log_times
from .rk import Stages, column, dopri5_step, initial_step, rk_step
from .rosenbrock import ROS34PW2, RosenbrockTableau
from .rules import (GD, SAM, SGD, Algorithm, Flooding, GradientRegularized, NormalizedGD, PreconditionedGD, Rule,
                    ScaledGD, StepInfo, Subgradient, geometric)
from ._validate import DtypeTooCoarse, shown
from .state import LossGrad, Objective, State, StateLayout, row_norm_sq
from .status import FINITE, Status
from .stopping import Guards, StopRule
from .sync import sync_steps
from .tableau import DOPRI5, ButcherTableau

__all__ = [
    "Algorithm", "ButcherTableau", "DOPRI5", "Flooding", "Flow", "ROS34PW2", "RosenbrockTableau", "GD", "GradientRegularized",
    "Objective", "PIController",
    "NormalizedGD", "PreconditionedGD", "Rule", "RunResult", "SAM", "SGD", "ScaledGD", "StateLayout", "Status",
    "StepInfo", "StopRule", "Subgradient",
    "default_rtol", "dopri5_step", "geometric", "integrate_flow", "log_steps", "log_times", "quiet", "run_discrete",
    "sync_steps",
]

Observe = Callable[[State], dict[str, Any]]


@dataclass(frozen=True)
class Flow:
    """Gradient flow by an adaptive embedded Runge-Kutta pair.

    Attributes
    ----------
    rtol, atol : float
        Per-run error control (see :mod:`sims.engine.controller`).
    max_steps : int
        Step attempts per run before it stops with status ``max_steps``.
    controller : PIController
        How the step adapts to the error estimate.
    tableau : ButcherTableau or RosenbrockTableau, optional
        An explicit pair with a dense output, or a Rosenbrock-W method for a
        model that gives its Jacobian (the reduced coordinates, run by
        :func:`sims.engine.stiff.integrate_stiff`). ``None``: the model's own --
        Dormand-Prince 5(4) (:data:`DOPRI5`) in full coordinates,
        :data:`ROS34PW2` in reduced ones.
    refresh : int
        Rosenbrock-W only: accepted steps a run takes with one factorised
        Jacobian before it is recomputed (also recomputed after a rejection;
        with ``sync_every > 1``, at the next read-back).
    sync_every : int, optional
        Steps taken on the device between two reads of the batch's status on
        the host (one transfer each). ``None``: 1 on NumPy, whose arrays are
        on the host already, and up to 32 elsewhere, fewer where the steps
        held for dense output would take more than 256 MiB
        (:func:`sync_steps`). A run that stops is frozen on the device at
        that step; the host learns of it at most ``sync_every - 1`` steps
        later, which costs those steps' time and nothing else: the explicit
        loop takes the same steps for every ``sync_every`` (up to round-off
        where BLAS blocks a batch that still holds stopped runs differently).
    compile : bool
        Run each step through the backend's compiler (:mod:`sims.engine.compiled`;
        ``backend="torch"``: ``torch.compile``), which fuses its elementwise
        work; ``False`` runs the same step function eagerly (the reference).
    """

    rtol: float = 1e-8
    atol: float = 1e-12
    max_steps: int = 200_000
    controller: PIController = PIController()
    tableau: ButcherTableau | RosenbrockTableau | None = None
    refresh: int = 100
    sync_every: int | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        check_compile(self.compile)
        if not (isinstance(self.rtol, (int, float)) and 0 < self.rtol < 1):
            raise ValueError(f"rtol must lie in (0, 1); got {shown(self.rtol)}")
        if not (isinstance(self.atol, (int, float)) and math.isfinite(self.atol) and self.atol >= 0):
            raise ValueError(f"atol must be a finite number >= 0; got {shown(self.atol)}")
        if isinstance(self.max_steps, bool) or not isinstance(self.max_steps, int) or self.max_steps < 1:
            raise ValueError(f"max_steps must be an integer >= 1; got {shown(self.max_steps)}")
        if not isinstance(self.controller, PIController):
            raise TypeError(f"controller must be a PIController; got {type(self.controller).__name__}")
        if self.tableau is None or isinstance(self.tableau, RosenbrockTableau):
            pass
        elif not isinstance(self.tableau, ButcherTableau) or not self.tableau.dense:
            raise TypeError("tableau must be a ButcherTableau with a dense output or a RosenbrockTableau")
        if isinstance(self.refresh, bool) or not isinstance(self.refresh, int) or self.refresh < 1:
            raise ValueError(f"refresh must be an integer >= 1; got {shown(self.refresh)}")
        if self.sync_every is not None and (isinstance(self.sync_every, bool) or not isinstance(self.sync_every, int)
                                            or not 1 <= self.sync_every <= 4096):
            raise ValueError(f"sync_every must be None or an integer in [1, 4096]; got {shown(self.sync_every)}")


def default_rtol(dtype: str) -> float:
    """The flow tolerance the simulators use unless told otherwise: 1e-10 in float64, 1e-5 in float32
    (both well above the 10 eps that :func:`integrate_flow` requires)."""
    return 1e-10 if dtype == "float64" else 1e-5


def quiet(fn: Callable) -> Callable:
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


@dataclass
class _Runs:
    """The device arrays of the working batch, one row per run still in it."""

    y: Any  # (B, P) parameters
    k1: Any  # slope at y (first-same-as-last)
    loss: Any
    grad_sq: Any
    t: Any  # float64 times
    h: Any  # float64 steps
    n_steps: Any
    rejected: Any  # the last attempt was rejected
    err: Any  # the last accepted error norm (the PI controller's memory)
    code: Any  # Status codes; RUNNING = 0
    guards: Guards

    def take(self, rows: Any) -> "_Runs":
        xp = xp_of(self.y)
        out = {f.name: None if getattr(self, f.name) is None else xp.take(getattr(self, f.name), rows, axis=0)
               for f in fields(self) if f.name != "guards"}
        return type(self)(guards=self.guards.take(rows), **out)


@dataclass(frozen=True)
class _Step:
    """What the host needs of one step taken on the device to write its dense output later: the step's
    continuous extension, the observer (bound to that step's batch), where the step started, its size,
    and the device arrays of the time after it and of acceptance."""

    interpolate: Callable[[Any], Any]
    observe: Callable[[Any], dict[str, Any]]
    t_start: Any
    h: Any
    t_after: Any
    accept: Any


def _read_back(code: Any, extra: Sequence[Any], steps: Sequence[_Step]) -> tuple[np.ndarray, list[np.ndarray],
                                                                                   list[tuple[np.ndarray, np.ndarray]]]:
    """The one host transfer at a sync: the status codes, per-run ``extra`` flags, and each held step's
    time after it and acceptance, stacked on the device and copied together."""
    xp = xp_of(code)
    f64 = xp.float64
    rows = [xp.astype(code, f64)] + [xp.astype(e, f64) for e in extra]
    for st in steps:
        rows += [st.t_after, xp.astype(st.accept, f64)]
    host = to_numpy(xp.stack(rows)) if len(rows) > 1 else to_numpy(rows[0])[None, :]
    n = 1 + len(extra)
    return (host[0].astype(np.int64), [host[1 + i] > 0 for i in range(len(extra))],
            [(host[n + 2 * i], host[n + 2 * i + 1] > 0) for i in range(len(steps))])


def _flush(rec: Recorder, steps: Sequence[_Step], host_steps: Sequence[tuple[np.ndarray, np.ndarray]],
           t_eval: np.ndarray, next_out: np.ndarray, who: np.ndarray) -> None:
    """Dense output of the held steps, in the order they were taken."""
    for st, (t_host, acc_host) in zip(steps, host_steps):
        _write_dense(rec, st.interpolate, st.observe, t_eval, next_out, who, st.t_start, st.h, t_host, acc_host)


def _check_precision(rtol: float, y: Any) -> None:
    xp = xp_of(y)
    name = "float64" if y.dtype == xp.float64 else "float32"
    eps = float(np.finfo(name).eps)
    if rtol < 10 * eps:
        raise DtypeTooCoarse(f"rtol={rtol:g} is below what {name} resolves: rtol must be >= {10 * eps:.1e} "
                         f"(10 eps); use float64 or a larger rtol")


class _Outcomes:
    """Per-run results on the host, filled as runs leave the working batch."""

    def __init__(self, batch: int, size: int) -> None:
        self.final = np.full((batch, size), np.nan)
        self.code = np.zeros(batch, dtype=np.int64)
        self.steps = np.zeros(batch, dtype=np.int64)
        self.time = np.zeros(batch)

    def store(self, who: np.ndarray, rows: np.ndarray, runs: _Runs, code: np.ndarray) -> None:
        self.final[who] = to_numpy(runs.y)[rows]
        self.code[who] = code[rows]
        self.steps[who] = to_numpy(runs.n_steps)[rows]
        self.time[who] = to_numpy(runs.t)[rows]

    def status(self) -> np.ndarray:
        return np.array([str(Status.from_code(int(c))) for c in self.code])


@quiet
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
        (the state there comes from the method's dense output).
    method : Flow
        Tolerances, step budget, controller and tableau.
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
    Each run carries its own time ``t_b`` and step ``h_b``. A non-finite trial
    step counts as rejected; a step that shrinks below ``10 eps max(|t|, 1)``
    ends the run as ``step_underflow`` and a run that uses ``max_steps``
    attempts as ``max_steps``. Host transfers: one every ``method.sync_every``
    steps (:func:`sync_steps`), carrying the per-run status and, for each step
    since the last one, the time and acceptance flag that drive dense output;
    observables are copied at output times only.
    """
    layout = StateLayout(state0)
    y0 = layout.pack(state0)
    _check_precision(float(method.rtol), y0)
    t_eval = check_times(t_eval, t_max)
    xp, batch = layout.xp, layout.batch
    tab, ctl, rtol, atol = method.tableau or DOPRI5, method.controller, float(method.rtol), float(method.atol)

    def observe_flat(z: Any) -> dict[str, Any]:
        return observe(layout.unpack(z)) if observe is not None else {}

    def rhs(z: Any) -> tuple[Any, Any, Any]:
        loss, g = loss_grad(layout.unpack(z))
        g = layout.pack(g)
        return loss, row_norm_sq(g), -g

    def slope(z: Any) -> Any:  # the intermediate stages need neither the loss's norm nor the gradient's
        return -layout.pack(loss_grad(layout.unpack(z))[1])

    rec = Recorder(batch, t_eval.shape[0])
    next_out = np.full(batch, int(np.searchsorted(t_eval, 0.0, side="right")), dtype=np.int64)  # per run
    if next_out[0]:
        obs0, everyone = observe_flat(y0), np.arange(batch)
        for j in range(next_out[0]):
            rec.write(obs0, everyone, everyone, np.full(batch, j))
    runs = _start(rhs, y0, stop, t_max, rtol, atol, tab.error_order + 1)
    stages = Stages(tab, y0)
    out = _Outcomes(batch, y0.shape[1])
    who = np.arange(batch)  # working row -> run index
    sync = sync_steps(method.sync_every, y0, tab.stages + 1)
    trial = compiler(xp, method.compile, dynamic=compact)(_trial)
    fixed(method.compile, *stages.a[1:], stages.b, stages.e)
    held: list[_Step] = []
    while True:
        code, _, host_steps = _read_back(runs.code, (), held)
        _flush(rec, held, host_steps, t_eval, next_out, who)
        held.clear()
        done = code > 0  # stopped since the last read (-1: stored already, frozen in the batch)
        if done.any():
            rows = np.nonzero(done)[0]
            out.store(who[rows], rows, runs, code)
            conv = rows[code[rows] == Status.CONVERGED.code]
            if conv.size:
                rec.fill_after(observe_flat(runs.y), conv, who[conv], next_out[who[conv]])
            if np.all(code != Status.RUNNING.code):
                break
            runs, who = _retire(runs, who, done, compact, method.compile)
            if compact:
                stages.resize(runs.y)
        for _ in range(sync):
            if sync > 1:  # each held step keeps its own stages for its dense output
                stages.resize(runs.y)
            fixed(method.compile, stages.k, axis=0)
            y_start, t_start, h_used, accept = trial(runs, stages, rhs, slope, ctl, rtol, atol, float(t_max), tab,
                                                     method.max_steps)
            k = stages.k
            held.append(_Step(lambda theta, y=y_start, h=h_used, k=k: stages.dense(y, column(h, y), theta, k),
                              observe_flat, t_start, h_used, runs.t, accept))
    status = out.status()
    rec.blank_after(next_out, ~np.isin(status, FINITE))
    return RunResult(times=t_eval, observables=rec.buf, final=layout.unpack(out.final.astype(to_numpy(y0).dtype),
                                                                             host=True),
                     status=status, stop_step=out.steps, stop_time=out.time,
                     info={"method": tab.name, "rtol": rtol, "atol": atol, "sync_every": sync,
                           "compiled": method.compile})


def _trial(runs: _Runs, stages: Stages, rhs: Callable, slope: Callable, ctl: PIController, rtol: float, atol: float,
           t_end: float, tab: ButcherTableau, max_steps: int) -> tuple[Any, Any, Any, Any]:
    """One step of the explicit loop, array operations only (what ``compile=True`` traces): a trial step for
    every running run (:func:`_attempt`), then every run's status (:func:`_classify`)."""
    out = _attempt(runs, stages, rhs, slope, ctl, rtol, atol, t_end, tab)
    _classify(runs, out[3], t_end, max_steps)
    return out


def _retire(runs: _Runs, who: np.ndarray, done: np.ndarray, compact: bool, compiled: bool) -> tuple[_Runs, np.ndarray]:
    """The working batch after the runs ``done`` (host mask) stopped: without them when ``compact`` (a
    compiled step keeps one of them, frozen, beside a last running run: torch traces a batch of one apart),
    else all of them with the stopped ones marked retired (-1), so that each is stored once."""
    xp = xp_of(runs.y)
    if compact:
        keep = np.nonzero(~done)[0]
        if compiled and keep.size < 2:
            keep = np.sort(np.concatenate([keep, np.nonzero(done)[0][: 2 - keep.size]]))
        runs, who = runs.take(xp.asarray(keep, device=_device(runs.y))), who[keep]
    runs.code = xp.where(runs.code != Status.RUNNING.code, -1, runs.code)
    return runs, who


def _start(rhs: Callable, y: Any, stop: StopRule, t_max: float, rtol: float, atol: float, order: int) -> _Runs:
    """The working batch at t = 0: runs that start non-finite are diverged, those already converged stop."""
    xp, dev = xp_of(y), _device(y)
    batch = y.shape[0]
    loss, grad_sq, k1 = rhs(y)
    guards = stop.guards(y, loss)
    bad = ~(xp.isfinite(xp.astype(loss, xp.float64)) & xp.isfinite(grad_sq))
    conv = ~bad & guards.converged(loss, grad_sq)
    zeros = xp.zeros((batch,), dtype=xp.int64, device=dev)
    code = xp.where(bad, Status.DIVERGED.code, xp.where(conv, Status.CONVERGED.code, zeros))
    f64 = xp.zeros((batch,), dtype=xp.float64, device=dev)
    return _Runs(y=y, k1=k1, loss=loss, grad_sq=grad_sq, t=f64, h=initial_step(rhs, y, k1, t_max, rtol, atol, order),
                 n_steps=zeros, rejected=xp.zeros((batch,), dtype=xp.bool, device=dev), err=f64 + 1.0, code=code,
                 guards=guards)


def _attempt(runs: _Runs, stages: Stages, rhs: Callable, slope: Callable, ctl: PIController, rtol: float,
             atol: float, t_end: float, tab: ButcherTableau) -> tuple[Any, Any, Any, Any]:
    """One trial step for every running run; accepted runs move. Returns where the step started and ``accept``."""
    xp = xp_of(runs.y)
    active = runs.code == Status.RUNNING.code
    h = xp.where(active, xp.minimum(runs.h, t_end - runs.t), 0.0)
    hc = column(h, runs.y)
    y_new = rk_step(stages, slope, runs.y, hc, runs.k1)
    loss_new, grad_sq_new, k_last = rhs(y_new)
    stages.k[-1, ...] = k_last
    err = error_norm(stages.error(hc), runs.y, y_new, rtol, atol)
    y_start, t_start = runs.y, runs.t
    accept = _move(runs, active, h, (y_new, k_last, loss_new, grad_sq_new), err, ctl, tab.error_order + 1)
    return y_start, t_start, h, accept


def _move(runs: _Runs, active: Any, h: Any, trial: tuple[Any, Any, Any, Any], err: Any, ctl: PIController,
          order: int) -> Any:
    """Accept the trial steps whose error norm is at most one and finite, move those runs, adapt every
    running run's step; ``trial`` is ``(y_new, slope there, loss, grad_sq)``. Returns ``accept``. Shared by
    the explicit and the Rosenbrock-W loops."""
    xp = xp_of(runs.y)
    y_new, k_new, loss_new, grad_sq_new = trial
    finite = xp.isfinite(err) & xp.isfinite(xp.astype(loss_new, xp.float64, copy=False)) & xp.isfinite(grad_sq_new)
    accept = active & finite & (err <= 1.0)
    factor = ctl.factor(err, runs.err, order, accept, finite, runs.rejected)
    acol = xp.reshape(accept, (accept.shape[0], 1))
    runs.y = xp.where(acol, y_new, runs.y)
    runs.k1 = xp.where(acol, k_new, runs.k1)
    runs.loss = xp.where(accept, loss_new, runs.loss)
    runs.grad_sq = xp.where(accept, grad_sq_new, runs.grad_sq)
    runs.err = xp.where(accept, err, runs.err)
    runs.t = xp.where(accept, runs.t + h, runs.t)
    runs.h = xp.where(active, h * factor, runs.h)
    runs.rejected = active & ~accept
    runs.n_steps = runs.n_steps + xp.astype(active, xp.int64)
    return accept


def _write_dense(rec: Recorder, interpolate: Callable[[Any], Any], observe_flat: Callable, t_eval: np.ndarray,
                 next_out: np.ndarray, who: np.ndarray, t_start: Any, h: Any, t_host: np.ndarray,
                 acc_host: np.ndarray) -> None:
    """Observables at every output time an accepted step crossed, from the step's continuous extension
    ``interpolate(theta)`` (``theta`` per run, in [0, 1]); ``t_host`` and ``acc_host`` are the time after
    the step and its acceptance, on the host."""
    xp, dev = xp_of(t_start), _device(t_start)
    n_out = t_eval.shape[0]
    while True:
        pending = next_out[who]
        nxt = np.minimum(pending, n_out - 1)
        rows = acc_host & (pending < n_out) & (t_eval[nxt] <= t_host)
        if not rows.any():
            return
        t_out = xp.asarray(t_eval[nxt], dtype=xp.float64, device=dev)
        theta = xp.clip((t_out - t_start) / xp.where(h > 0, h, 1.0), 0.0, 1.0)
        sel = np.nonzero(rows)[0]
        rec.write(observe_flat(interpolate(theta)), sel, who[sel], nxt[sel])
        next_out[who[sel]] += 1


def _classify(runs: _Runs, accept: Any, t_end: float, max_steps: int) -> None:
    """Give a status to every run that stopped in this step (the first reason in this order wins:
    diverged, converged, out of time, out of steps, step underflow).

    Built from the last reason to the first, each a ``where`` over the one before, so that the
    earliest true reason is the one left: a dozen device operations, not one chain per reason.
    """
    xp = xp_of(runs.y)
    eps = float(xp.finfo(runs.y.dtype).eps)
    running = runs.code == Status.RUNNING.code
    code = xp.where(runs.rejected & (runs.h <= 10 * eps * xp.maximum(xp.abs(runs.t), xp.ones_like(runs.t))),
                    Status.STEP_UNDERFLOW.code, runs.code)
    code = xp.where(running & (runs.n_steps >= max_steps), Status.MAX_STEPS.code, code)
    moved = accept & (runs.t >= t_end * (1 - 4 * 2.2e-16))
    code = xp.where(moved, Status.OUT_OF_TIME.code, code)
    code = xp.where(accept & runs.guards.converged(runs.loss, runs.grad_sq), Status.CONVERGED.code, code)
    code = xp.where(accept & runs.guards.blown(runs.loss, runs.y), Status.DIVERGED.code, code)
    runs.code = xp.where(running, code, runs.code)
