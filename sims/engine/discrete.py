"""The loop that runs any discrete rule (:mod:`sims.engine.rules`) on a batch of runs, with per-run stopping."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ._validate import shown
from .backend import device_of as _device, host_rng, to_numpy, xp_of
from .compiled import check_compile, compiler
from .recording import Recorder, RunResult, check_record_steps
from .rules import Rule
from .state import LossGrad, Objective, StateLayout, row_norm_sq
from .status import Status
from .stopping import Guards, StopRule
from .sync import sync_steps

__all__ = ["run_discrete"]


def run_discrete(
    rule: Rule,
    loss_grad: LossGrad,
    state0: Sequence[Any],
    *,
    steps: int,
    record_at: Any = None,
    observe: Callable[[tuple[Any, ...]], dict[str, Any]] | None = None,
    stop: StopRule = StopRule(),
    n_samples: int | None = None,
    seed: int = 0,
    check_every: int | None = None,
    sync_every: int | None = None,
    compile: bool = False,
) -> RunResult:
    """Run a discrete algorithm for ``steps`` steps on every run of the batch.

    Parameters
    ----------
    rule : Rule
        The update rule (:class:`~sims.engine.rules.GD`, ``SGD``, ``SAM``...).
    loss_grad : callable
        ``loss_grad(state, weights=None) -> (loss (B,), grads)``.
    state0 : tuple of arrays, each (B, ...)
    steps : int
        Step budget; runs still going afterwards end ``out_of_time``.
    record_at : array_like of int, optional
        Steps at which ``observe`` is recorded (:func:`~sims.engine.recording.log_steps` by default).
    stop : StopRule
    n_samples : int, optional
        Number of samples ``n`` the loss averages over (SGD draws from them).
    seed : int
        Seed of the host generator handed to ``rule.init`` (SGD's sampler).
    check_every : int, optional
        Convergence is tested every ``check_every`` steps (``rule.check_every``
        by default; divergence is tested every step, on the device); the loop
        also ends early once every run has stopped, which the host learns at
        the read-backs below.
    sync_every : int, optional
        Steps between two reads of the batch's status on the host, rounded up
        to a multiple of ``check_every`` (``None``: every check on NumPy, every
        32 steps elsewhere, see :func:`sims.engine.flow.sync_steps`). Stopping is
        decided on the device at its step whatever this is; only the loop's
        own end waits for a read, so at most ``sync_every - 1`` steps are
        taken in vain once every run has stopped. Observables are copied to
        the host at the recording steps only.
    compile : bool
        Run each step through the backend's compiler (:mod:`sims.engine.compiled`;
        ``backend="torch"``: ``torch.compile``), which fuses the step's
        elementwise passes; the first steps pay for the compilation. ``False``
        runs the same step function eagerly (the reference).

    Returns
    -------
    RunResult
        ``times`` are step counts. ``stop_step`` is the step at which each run
        converged, or the step whose update first produced a non-finite or
        blown-up value (that update is not applied: ``final`` holds the last
        finite state).
    """
    layout = StateLayout(state0)
    y = layout.pack(state0)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be an integer >= 1; got {shown(steps)}")
    steps = int(steps)
    record = check_record_steps(record_at, steps)
    check_every = rule.check_every if check_every is None else check_every
    if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"check_every must be an integer >= 1; got {shown(check_every)}")
    if not isinstance(rule, Rule):
        raise TypeError(f"rule must be a solvable.sims.engine.rules.Rule (GD, SGD, SAM...); got {type(rule).__name__}")
    check_compile(compile)
    sync = sync_steps(sync_every, y, 0)
    sync = check_every * -(-sync // check_every)
    objective = Objective(loss_grad, layout, n_samples)
    rule_state = rule.init(y, objective, host_rng(seed))

    def observe_flat(z: Any) -> dict[str, Any]:
        return observe(layout.unpack(z)) if observe is not None else {}

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        y, code, stop_step, rec, n_rec = _loop(rule, rule_state, objective, y, steps, record, check_every, sync,
                                               stop, observe_flat, compile)
    status = np.array([str(Status.from_code(int(c))) for c in to_numpy(code)])
    stop_h = to_numpy(stop_step).astype(np.int64)
    converged = np.nonzero(status == Status.CONVERGED)[0]
    if n_rec < record.shape[0] and converged.size:  # stopped early: converged runs keep their final values
        rec.fill_after(observe_flat(y), converged, converged, np.full(converged.size, n_rec))
    diverged = status == Status.DIVERGED
    if diverged.any():
        rec.blank_after(np.searchsorted(record, stop_h, side="left"), diverged)
    return RunResult(times=record.astype(float), observables=rec.buf,
                     final=tuple(to_numpy(x) for x in layout.unpack(y)), status=status, stop_step=stop_h,
                     stop_time=stop_h.astype(float), info={"method": rule.name, "sync_every": sync, "compiled": compile})


def _loop(rule: Rule, rule_state: Any, objective: Objective, y: Any, steps: int, record: np.ndarray,
          check_every: int, sync: int, stop: StopRule, observe_flat: Callable,
          compile: bool = False) -> tuple[Any, Any, Any, Recorder, int]:
    xp, batch = xp_of(y), y.shape[0]
    dev = _device(y)
    running = Status.RUNNING.code
    rec = Recorder(batch, record.shape[0])
    code = xp.full((batch,), running, dtype=xp.int64, device=dev)
    stop_step = xp.full((batch,), steps, dtype=xp.int64, device=dev)
    k_dev = xp.zeros((), dtype=xp.int64, device=dev)  # the step on the device: no host scalar enters a step
    loss0, _ = objective.loss_grad(y)
    guards = stop.guards(y, loss0)
    advance = compiler(xp, compile)(_advance)
    n_rec, everyone = 0, np.arange(batch)
    for k in range(steps + 1):
        if n_rec < record.shape[0] and record[n_rec] == k:
            rec.write(observe_flat(y), everyone, everyone, np.full(batch, n_rec))
            n_rec += 1
        if k == steps or (k % sync == 0 and not bool(to_numpy(xp.any(code == running)))):
            break
        rule.draw(rule_state)
        lr = rule.step_size(rule_state, k, y)
        y, code, stop_step, k_dev = advance(rule, objective, guards, rule_state, y, lr, code, stop_step, k_dev,
                                            k % check_every == 0)
    code = xp.where(code == running, Status.OUT_OF_TIME.code, code)
    return y, code, stop_step, rec, n_rec


def _advance(rule: Rule, objective: Objective, guards: Guards, rule_state: Any, y: Any, lr: Any, code: Any,
             stop_step: Any, k: Any, checking: bool) -> tuple[Any, Any, Any, Any]:
    """Step ``k`` (a device counter) of every run, as array operations only (what ``compile=True`` traces):
    the rule's update, then each run's status, decided on the device. Returns ``(y, code, stop_step, k + 1)``."""
    xp = xp_of(y)
    f64 = xp.float64
    running, diverged, converged = Status.RUNNING.code, Status.DIVERGED.code, Status.CONVERGED.code
    active = code == running
    new, info = rule.update(y, lr, objective, rule_state)
    loss, grad_sq = info.loss, info.grad_sq
    if loss is None and checking:
        loss, g_full = objective.loss_grad(y)
        grad_sq = row_norm_sq(g_full)
    if loss is not None:
        lf = xp.astype(loss, f64, copy=False)
        # a bad loss at the current state: the previous update produced it. One status update per step, not
        # one per event: on a GPU every array operation is a launch (tests/test_sync.py counts them)
        bad_here = active & ~(xp.isfinite(lf) & (lf <= guards.loss_cap) & xp.isfinite(grad_sq))
        if checking:
            conv = active & ~bad_here & guards.converged(loss, grad_sq)
            code = xp.where(bad_here, diverged, xp.where(conv, converged, code))
            stop_step = xp.where(bad_here | conv, k, stop_step)
        else:
            code = xp.where(bad_here, diverged, code)
            stop_step = xp.where(bad_here, k, stop_step)
        active = code == running
    # NaN fails the comparison, so one test covers a non-finite norm and one above its cap
    bad = active & ~(xp.astype(row_norm_sq(new), f64, copy=False) <= guards.norm_cap)
    k_next = k + 1
    code = xp.where(bad, diverged, code)
    stop_step = xp.where(bad, k_next, stop_step)
    active = code == running
    return xp.where(xp.reshape(active, (y.shape[0], 1)), new, y), code, stop_step, k_next
