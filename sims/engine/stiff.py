r"""The stiff flow integrator: an adaptive Rosenbrock-W method for a batch, with Jacobians reused across steps.

The reduced coordinates of this library (e.g. the diagonal network's
:math:`\mu`-flow, :mod:`sims.diagonal.reduced`) are small systems whose
Jacobian is symmetric and known in closed form, and stiff: their time scales
run from O(1) to :math:`O(\alpha^{-2})`. An explicit method there is bound by
stability, not accuracy, for tens of thousands of steps. This loop takes the
steps of a Rosenbrock-W method (:mod:`sims.engine.rosenbrock`, ROS34PW2 by default)
with the same per-run step control, stopping rules, statuses and recording as
:func:`sims.engine.flow.integrate_flow`, and:

* factorises each run's Jacobian as :math:`J = Q\Lambda Q^\top` once and
  reuses it (a W-method keeps its order for any approximation) until that run
  rejects a step or has taken ``Flow.refresh`` steps with it; the new step
  size never needs a new factorisation (:class:`~sims.engine.rosenbrock.EigenSolver`);
* measures the error, when the model gives an ``error_map``, in the units the
  full simulation controls (for the diagonal network, the relative error of
  every :math:`u_i, v_i`), so ``rtol`` means the same thing in both
  coordinates;
* reads observables at the output times from the cubic Hermite interpolant of
  the step (order 3, as the method).

Host transfers: one every ``Flow.sync_every`` steps, as in the explicit
loop, which also carries the refresh flags; a Jacobian that falls due between
two reads is refactorised at the next (a W-method keeps its order with any
matrix, so this changes the cost of the steps in between, not their order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .backend import device_of as _device, to_numpy, xp_of
from .compiled import compiler, fixed
from .flow import (Flow, _check_precision, _classify, _flush, _move, _Outcomes, _read_back, _retire, _Runs, _start,
                   _Step, quiet, sync_steps)
from .controller import error_norm
from .recording import Recorder, RunResult, check_times
from .rk import column
from .rosenbrock import ROS34PW2, EigenSolver, RosenbrockTableau, StageCoefficients, rosenbrock_step
from .state import StateLayout, row_norm_sq
from .status import FINITE, Status
from .stopping import StopRule

__all__ = ["integrate_stiff"]


@dataclass
class _StiffRuns(_Runs):
    lam: Any = None  # (B, P) eigenvalues of each run's Jacobian
    Q: Any = None  # (B, P, P) its eigenvectors
    age: Any = None  # accepted steps since the Jacobian was factorised
    aux: Any = None  # per-run constants of the model


def _hermite(y0: Any, f0: Any, y1: Any, f1: Any, hc: Any, theta: Any) -> Any:
    """Cubic Hermite interpolant at ``t + theta h`` between ``(y0, f0)`` and ``(y1, f1)``."""
    th = column(theta, y0)
    th2, th3 = th * th, th * th * th
    return ((2 * th3 - 3 * th2 + 1) * y0 + (th3 - 2 * th2 + th) * hc * f0 + (3 * th2 - 2 * th3) * y1
            + (th3 - th2) * hc * f1)


@quiet
def integrate_stiff(
    loss_grad: Callable[..., Any],
    jacobian: Callable[..., Any],
    state0: Sequence[Any],
    *,
    t_max: float,
    t_eval: Any = None,
    observe: Callable[..., dict[str, Any]] | None = None,
    error_map: Callable[..., Any] | None = None,
    aux: Any = None,
    method: Flow,
    stop: StopRule = StopRule(),
    compact: bool = True,
) -> RunResult:
    r"""Integrate :math:`\dot y = -\mathrm{grads}(y)` by ``method.tableau`` (a :class:`RosenbrockTableau`).

    Parameters
    ----------
    loss_grad : callable
        ``loss_grad(state, aux=aux) -> (loss (B,), grads)``; the vector field is ``-grads``.
    jacobian : callable
        ``jacobian(state, aux=aux) -> (B, P, P)``: the Jacobian of the vector field in the packed
        coordinates, symmetric.
    state0 : tuple of arrays (B, ...)
    t_max, t_eval, stop, compact
        As for :func:`sims.engine.flow.integrate_flow`.
    observe : callable, optional
        ``observe(state, aux=aux) -> {name: (B, ...)}``.
    error_map : callable, optional
        ``error_map(delta_state, aux=aux) -> (B, m)``: the error of a step in relative units of
        the model's parameters; the step is accepted when its RMS is at most ``rtol``.
        Without it the error is measured on the state with ``rtol`` and ``atol``.
    aux : array (B, ...), optional
        Per-run constants handed to every callable; finished runs take their rows along.
    method : Flow
        ``rtol, atol, max_steps, controller``, ``refresh`` and the tableau.
    """
    tab = method.tableau or ROS34PW2
    if not isinstance(tab, RosenbrockTableau):
        raise TypeError(f"integrate_stiff needs a RosenbrockTableau; got {type(tab).__name__}")
    layout = StateLayout(state0)
    y0 = layout.pack(state0)
    _check_precision(float(method.rtol), y0)
    t_eval = check_times(t_eval, t_max)
    xp, batch, dev = layout.xp, layout.batch, _device(y0)
    ctl, rtol, atol = method.controller, float(method.rtol), float(method.atol)

    def observe_flat(z: Any, a: Any) -> dict[str, Any]:
        return observe(layout.unpack(z), aux=a) if observe is not None else {}

    def norm(err: Any, y: Any, y_new: Any, a: Any) -> Any:
        if error_map is None:
            return error_norm(err, y, y_new, rtol, atol)
        e = error_map(layout.unpack(err), aux=a)
        return xp.astype(xp.sqrt(xp.mean(e * e, axis=1)), xp.float64, copy=False) / rtol

    def factorise(z: Any, a: Any) -> EigenSolver:
        return EigenSolver.of(jacobian(layout.unpack(z), aux=a))

    rec = Recorder(batch, t_eval.shape[0])
    next_out = np.full(batch, int(np.searchsorted(t_eval, 0.0, side="right")), dtype=np.int64)
    if next_out[0]:
        obs0, everyone = observe_flat(y0, aux), np.arange(batch)
        for j in range(next_out[0]):
            rec.write(obs0, everyone, everyone, np.full(batch, j))

    def rhs_with(a: Any) -> Callable[[Any], tuple[Any, Any, Any]]:
        def rhs(z: Any) -> tuple[Any, Any, Any]:
            loss, g = loss_grad(layout.unpack(z), aux=a)
            g = layout.pack(g)
            return loss, row_norm_sq(g), -g
        return rhs

    def slope_with(a: Any) -> Callable[[Any], Any]:  # the inner stages need neither the loss nor the norm
        return lambda z: -layout.pack(loss_grad(layout.unpack(z), aux=a)[1])

    base = _start(rhs_with(aux), y0, stop, t_max, rtol, atol if error_map is None else rtol, tab.order)
    solver0 = factorise(y0, aux)
    # every Q the loop holds in one memory layout, the row-major one of _refresh's gather (torch's eigh returns
    # column-major blocks, and a compiled step is traced for one layout)
    Q0 = xp.take(solver0.Q, xp.arange(batch, device=dev), axis=0)
    runs = _StiffRuns(**{k: getattr(base, k) for k in base.__dataclass_fields__}, lam=solver0.lam, Q=Q0,
                      age=xp.zeros((batch,), dtype=xp.int64, device=dev), aux=aux)
    out = _Outcomes(batch, y0.shape[1])
    who = np.arange(batch)
    t_end = float(t_max)
    sync = sync_steps(method.sync_every, y0, 4)
    coefs = StageCoefficients(tab, y0)
    trial = compiler(xp, method.compile, dynamic=compact)(_trial)
    fixed(method.compile, *coefs.dev)
    held: list[_Step] = []
    want = xp.zeros((batch,), dtype=xp.bool, device=dev)  # runs whose Jacobian is due, since the last read
    while True:
        code, (need,), host_steps = _read_back(runs.code, (want,), held)
        _flush(rec, held, host_steps, t_eval, next_out, who)
        held.clear()
        _refresh(runs, need & (code == Status.RUNNING.code), factorise)
        done = code > 0
        if done.any():
            rows = np.nonzero(done)[0]
            out.store(who[rows], rows, runs, code)
            conv = rows[code[rows] == Status.CONVERGED.code]
            if conv.size:
                sub = xp.asarray(conv, device=dev)
                rec.fill_after(observe_flat(xp.take(runs.y, sub, axis=0),
                                            None if runs.aux is None else xp.take(runs.aux, sub, axis=0)),
                               np.arange(conv.size), who[conv], next_out[who[conv]])
            if np.all(code != Status.RUNNING.code):
                break
            runs, who = _retire(runs, who, done, compact, method.compile)
        want = xp.zeros((runs.y.shape[0],), dtype=xp.bool, device=dev)
        rhs, slope = rhs_with(runs.aux), slope_with(runs.aux)
        a = runs.aux
        for _ in range(sync):
            y_start, k_start, t_start, h, hc, accept, want = trial(runs, tab, coefs, rhs, slope, norm, ctl, t_end,
                                                                   method.max_steps, method.refresh, want)
            held.append(_Step(lambda theta, y0=y_start, f0=k_start, y1=runs.y, f1=runs.k1, hc=hc:
                              _hermite(y0, f0, y1, f1, hc, theta),
                              lambda z, a=a: observe_flat(z, a), t_start, h, runs.t, accept))
    status = out.status()
    rec.blank_after(next_out, ~np.isin(status, FINITE))
    return RunResult(times=t_eval, observables=rec.buf,
                     final=layout.unpack(out.final.astype(to_numpy(y0).dtype), host=True),
                     status=status, stop_step=out.steps, stop_time=out.time,
                     info={"method": tab.name, "rtol": rtol, "atol": atol, "refresh": method.refresh,
                           "sync_every": sync, "compiled": method.compile})


def _trial(runs: _StiffRuns, tab: RosenbrockTableau, coefs: StageCoefficients, rhs: Callable, slope: Callable,
           norm: Callable, ctl: Any, t_end: float, max_steps: int, refresh: int, want: Any) -> tuple[Any, ...]:
    """One step of the Rosenbrock-W loop, array operations only (what ``compile=True`` traces): a trial step
    for every running run with its factorised Jacobian, the accepted runs moved, every run's status, and
    ``want`` updated with the runs whose Jacobian falls due. Returns where the step started (``y, f, t``), its
    size (``h`` and as a column), ``accept`` and ``want``."""
    xp = xp_of(runs.y)
    active = runs.code == Status.RUNNING.code
    h = xp.where(active, xp.minimum(runs.h, t_end - runs.t), 1.0)  # 1: a harmless step for frozen rows
    hc = column(h, runs.y)
    solver = EigenSolver(runs.lam, runs.Q)
    solver.set_step(hc * tab.diagonal)
    y_new, err = rosenbrock_step(tab, slope, solver, runs.y, hc, runs.k1, coefs)
    loss_new, grad_sq_new, k_new = rhs(y_new)
    e = norm(err, runs.y, y_new, runs.aux)
    y_start, k_start, t_start = runs.y, runs.k1, runs.t
    accept = _move(runs, active, h, (y_new, k_new, loss_new, grad_sq_new), e, ctl, tab.error_order + 1)
    runs.age = runs.age + xp.astype(accept, xp.int64)
    _classify(runs, accept, t_end, max_steps)
    want = want | ((runs.code == Status.RUNNING.code) & ((runs.rejected & (runs.age > 0)) | (runs.age >= refresh)))
    return y_start, k_start, t_start, h, hc, accept, want


def _refresh(runs: _StiffRuns, need: np.ndarray, factorise: Callable[[Any, Any], EigenSolver]) -> None:
    """New eigendecompositions for the runs in ``need``, merged into the batch by one gather."""
    if not need.any():
        return
    xp, dev = xp_of(runs.y), _device(runs.y)
    rows = np.nonzero(need)[0]
    sub = xp.asarray(rows, device=dev)
    fresh = factorise(xp.take(runs.y, sub, axis=0), None if runs.aux is None else xp.take(runs.aux, sub, axis=0))
    sel = np.arange(need.shape[0])
    sel[rows] = need.shape[0] + np.arange(rows.size)
    sel_d = xp.asarray(sel, device=dev)
    runs.lam = xp.take(xp.concat([runs.lam, fresh.lam], axis=0), sel_d, axis=0)
    runs.Q = xp.take(xp.concat([runs.Q, fresh.Q], axis=0), sel_d, axis=0)
    runs.age = xp.where(xp.asarray(need, device=dev), 0, runs.age)
