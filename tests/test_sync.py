"""Host reads of the device loops (``sims.engine.sync``): how many there are, and that reading less often
changes nothing but the time.

A GPU waits for the queue behind every value the host reads, so a read per step turns a batch of
tiny kernels into a chain of round trips. These tests count reads on ``array_api_strict`` (every way
an array can reach the host goes through one of a few methods of its ``Array`` class) and fail if a
read per step creeps back in; and they compare every ``sync_every`` against reading every step.
"""

from __future__ import annotations

import numpy as np
import pytest

from solvable.sims import deep_linear, diagonal
from solvable.sims.engine.flow import Flow
from traffic import traffic


@pytest.fixture
def seen():
    """Host reads (``reads``), host data moved onto the device (``up``), device operations (``ops``) and
    kernel launches (``launches``) while the test runs (``tests/traffic.py``)."""
    with traffic() as count:
        yield count


@pytest.mark.parametrize("expr, launches", [
    ("x + 1.0", 1),  # the scalar is a kernel argument
    ("xp.where(x > 0, x, 1.0)", 2),
    ("xp.sum(x * x, axis=1)", 2),
    ("xp.reshape(x, (4, 3))", 0),  # views
    ("x[0, :]", 0),
    ("x.T", 0),
    ("xp.astype(x, xp.float64, copy=False)", 0),
    ("xp.astype(x, xp.float64)", 1),  # a copy
    ("xp.astype(x, xp.float32, copy=False)", 1),  # a cast
    ("xp.take(x, i, axis=0)", 1),
    ("x[x > 5.0]", 2),  # the comparison, and the mask gathers (on a GPU, after waiting for its count)
    ("xp.zeros((2, 3))", 1),
    ("xp.finfo(x.dtype).eps", 0),
    ("xp.linalg.eigh(x @ x.T)", 2),  # at least one launch per routine
])
def test_launches_count_what_a_gpu_library_runs_as_kernels(expr, launches):
    import array_api_strict as xp

    x = xp.reshape(xp.arange(12, dtype=xp.float64), (3, 4))
    i = xp.asarray([0, 2])
    with traffic() as count:
        eval(expr, {"xp": xp, "x": x, "i": i})
    assert count["launches"] == launches


def test_launches_count_writes_into_arrays():
    import array_api_strict as xp

    x, y = xp.zeros((2, 3)), xp.ones((3,))
    with traffic() as count:
        x[0, ...] = y
        x += 1.0
    assert count["launches"] == 2 and count["ops"] <= 1


def _diagonal_problem():
    return diagonal.Problem.random(8, 16, 2, seed=0)


T_FEW = np.array([0.0, 5.0, 40.0])  # few outputs, so that reads at output times stay a constant


# the reduced coordinates' case (20 s) in the slow step
@pytest.mark.parametrize("coordinates", ["full", pytest.param("reduced", marks=pytest.mark.slow)])
def test_flow_reads_the_host_once_per_sync(seen, coordinates):
    """Explicit (full) and Rosenbrock-W (reduced) loops: reads grow as steps / sync_every, plus a
    constant for the start, the output times and the runs' retirement."""
    p, counts, iters, up = _diagonal_problem(), {}, {}, {}
    for sync in (1, 16):
        seen["reads"] = seen["up"] = 0
        traj = diagonal.simulate(p, [0.05, 1.0], t_max=40.0, t_eval=T_FEW, coordinates=coordinates,
                                 backend="array_api_strict", sync_every=sync,
                                 rtol=1e-10 if coordinates == "full" else 1e-8)
        counts[sync], iters[sync], up[sync] = seen["reads"], int(np.max(traj.stop_step)), seen["up"]
    # long enough for the per-step reads to dominate (the reduced loop's step sequences differ a little)
    assert min(iters.values()) > 200
    # one read per step at sync_every=1: the counter sees what a GPU would wait for
    assert counts[1] >= iters[1]
    assert counts[16] <= iters[16] / 16 + 60, (counts, iters)
    # nothing moves up from the host per step either (coefficients, thresholds: made once)
    assert up[16] <= iters[16] / 16 + 60, (up, iters)


def test_discrete_reads_the_host_once_per_sync(seen):
    p, counts, up = _diagonal_problem(), {}, {}
    for sync in (1, 32):
        seen["reads"] = seen["up"] = 0
        diagonal.simulate(p, [0.1, 1.0], algorithm="gd", lr=0.01, steps=640, t_eval=[0, 320, 640], loss_tol=0.0,
                          backend="array_api_strict", sync_every=sync)
        counts[sync], up[sync] = seen["reads"], seen["up"]
    assert counts[1] >= 640
    assert counts[32] <= 640 / 32 + 30, counts
    assert up[32] <= 30, up


def _same(a, b):
    """Equal up to round-off: a run that stopped stays in the batch until the next read, and BLAS may
    block a batch of another size differently (1e-15 relative), which can move a step's acceptance
    by as little; nothing else differs."""
    np.testing.assert_array_equal(a.status, b.status)
    for k in a.observables:
        np.testing.assert_allclose(b.observables[k], a.observables[k], rtol=1e-12, atol=1e-300)
    for k in a.final:
        np.testing.assert_allclose(b.final[k], a.final[k], rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("sync", [2, 7, 32])
def test_explicit_flow_is_the_same_for_every_sync(sync):
    """The explicit loop takes the same steps whatever sync_every is; dense output is written from
    each held step's own stages."""
    p = _diagonal_problem()
    kw = dict(alpha=[0.05, 0.3, 1.0], t_max=40.0, coordinates="full", rtol=1e-9)
    ref = diagonal.simulate(p, sync_every=1, **kw)
    other = diagonal.simulate(p, sync_every=sync, **kw)
    assert ref.meta["sync_every"] == 1 and other.meta["sync_every"] == sync
    _same(ref, other)


def test_explicit_flow_without_compaction_is_the_same():
    """Deep networks keep finished runs frozen in the batch (no compaction): the same batch every
    step, so the results are bit-identical."""
    p = deep_linear.Problem.random(3, 3, (3,), seed=1)
    kw = dict(alpha=[0.1, 0.5], t_max=30.0, coordinates="full", init="random")
    ref = deep_linear.simulate(p, sync_every=1, **kw)
    other = deep_linear.simulate(p, sync_every=9, **kw)
    assert ref.meta["method"] == "dopri5"
    for k in ref.observables:
        np.testing.assert_array_equal(ref.observables[k], other.observables[k])


@pytest.mark.parametrize("algorithm", ["gd", "sgd"])
def test_discrete_is_bit_identical_for_every_sync(algorithm):
    """No compaction in the discrete loop: the same operations on the same batch."""
    p = _diagonal_problem()
    kw = dict(alpha=[0.1, 1.0], algorithm=algorithm, lr=[0.01, 60.0], steps=400)
    ref = diagonal.simulate(p, sync_every=1, **kw)
    other = diagonal.simulate(p, sync_every=48, **kw)
    assert list(ref.status) == list(other.status) and "diverged" in list(ref.status)
    np.testing.assert_array_equal(ref.stop_step, other.stop_step)
    for k in ref.observables:
        np.testing.assert_array_equal(ref.observables[k], other.observables[k])


def test_stiff_flow_agrees_for_every_sync():
    """The Rosenbrock-W loop refactorises a Jacobian that falls due between two reads at the next
    read: a different valid step sequence, equal to the global error (rtol x steps)."""
    p = _diagonal_problem()
    kw = dict(alpha=[0.05, 0.3, 1.0], t_max=40.0, coordinates="reduced", rtol=1e-10)
    ref = diagonal.simulate(p, sync_every=1, **kw)
    other = diagonal.simulate(p, sync_every=16, **kw)
    assert list(ref.status) == list(other.status)
    budget = 1e-10 * float(np.max(ref.stop_step))
    for k in ref.final:
        np.testing.assert_allclose(other.final[k], ref.final[k], rtol=budget, atol=budget * 1e-3)


def test_sync_every_is_validated():
    p = _diagonal_problem()
    with pytest.raises(ValueError, match="sync_every"):
        diagonal.simulate(p, 0.5, t_max=1.0, sync_every=0)
    with pytest.raises(ValueError, match="sync_every"):
        Flow(sync_every=0)
    with pytest.raises(ValueError, match="sync_every is set on the algorithm object"):
        diagonal.simulate(p, 0.5, algorithm=Flow(sync_every=4), t_max=1.0, sync_every=2)


# Device operations per batch step, counted on 2026-11-26 (diagonal network, n = 50, d = 200): 285 in
# reduced coordinates (4-stage Rosenbrock-W), 276 in full ones (7-stage Dormand-Prince), 56 per GD step
# (66 before the discrete loop's status updates were merged and a disabled loss test became -inf).
# Kernel launches, counted on 2026-11-27 (the operations less views and same-dtype casts, one per call
# however many arrays the library makes inside): 177 reduced, 190 full (195 before the loops' same-dtype
# casts stopped copying), 43 GD. A GPU runs a batch of small systems at about 10 us per launch, so these
# numbers are its speed; the budgets leave 15 % for honest growth and catch a loop that starts doing
# per-run or per-stage work.
OPS_BUDGET = {"reduced": 330, "full": 320, "gd": 65}
LAUNCH_BUDGET = {"reduced": 205, "full": 220, "gd": 50}


# the reduced coordinates' case (16 s) in the slow step
@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.slow) if c == "reduced" else c for c in sorted(OPS_BUDGET)])
def test_device_operations_per_step_stay_within_budget(seen, case):
    p = diagonal.Problem.random(50, 200, 5, seed=0)
    alphas = np.logspace(-3, 0.5, 8)
    if case == "gd":
        diagonal.simulate(p, alphas, algorithm="gd", lr=1e-3, steps=200, t_eval=[0, 200], loss_tol=0.0,
                          backend="array_api_strict")
        steps = 200
    else:
        traj = diagonal.simulate(p, alphas, t_max=1e6 if case == "reduced" else 1e3, rtol=1e-8, coordinates=case,
                                 t_eval=[0.0, 1e3], backend="array_api_strict")
        steps = int(np.max(traj.stop_step))
    per_step, launches = seen["ops"] / steps, seen["launches"] / steps
    # the counters count: a step holds at least its two products and the rule's elementwise updates
    assert 10 < per_step <= OPS_BUDGET[case], per_step
    assert 10 < launches <= LAUNCH_BUDGET[case], launches
    assert launches < per_step  # views and scalar operands are operations but no launches
