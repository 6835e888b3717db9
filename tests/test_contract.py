"""The common contract suite, run over every model family in ``contract.SPECS``."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from contract import SPECS, ModelSpec

specs = pytest.mark.parametrize("spec", SPECS, ids=[s.name for s in SPECS])


def _central_difference(spec: ModelSpec, problem, state, weights, eps=1e-6):
    grads = []
    for i, x in enumerate(state):
        g = np.zeros_like(x)
        for idx in np.ndindex(x.shape[1:]):
            plus = [s.copy() for s in state]
            minus = [s.copy() for s in state]
            plus[i][(slice(None),) + idx] += eps
            minus[i][(slice(None),) + idx] -= eps
            lp, _ = spec.loss_grad(problem, tuple(plus), weights)
            lm, _ = spec.loss_grad(problem, tuple(minus), weights)
            g[(slice(None),) + idx] = (np.asarray(lp) - np.asarray(lm)) / (2 * eps)
        grads.append(g)
    return grads


GRADIENT_CASES = [(s, w) for s in SPECS for w in (False, True) if s.weighted or not w]


@pytest.mark.parametrize("spec, weighted", GRADIENT_CASES,
                         ids=[f"{s.name}-{'sample-weights' if w else 'full-batch'}" for s, w in GRADIENT_CASES])
def test_gradient_matches_finite_differences(spec: ModelSpec, weighted: bool):
    rng = np.random.default_rng(0)
    problem = spec.make_problem(0)
    state = spec.random_state(problem, rng)
    weights = None
    if weighted:
        n = spec.n_samples(problem)
        weights = rng.dirichlet(np.ones(n), size=state[0].shape[0])
    _, grads = spec.loss_grad(problem, state, weights)
    for g, fd in zip(grads, _central_difference(spec, problem, state, weights)):
        # central differences: error O(eps^2 f''') + O(ulp f / eps) ~ 1e-9 relative here
        np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-8)


RUN_CASES = [(s, a) for s in SPECS for a in ("flow", "gd", "sgd", "sam", "gr", "flood") if a in s.runs]
runs = pytest.mark.parametrize("spec, algorithm", RUN_CASES, ids=[f"{s.name}-{a}" for s, a in RUN_CASES])


@runs
def test_same_seed_same_trajectory(spec: ModelSpec, algorithm: str):
    problem = spec.make_problem(1)
    a = spec.simulate(problem, seed=5, **spec.runs[algorithm])
    b = spec.simulate(problem, seed=5, **spec.runs[algorithm])
    for k in a.observables:
        np.testing.assert_array_equal(a.observables[k], b.observables[k])
    for k in a.final:
        np.testing.assert_array_equal(a.final[k], b.final[k])
    if algorithm == "sgd":
        c = spec.simulate(problem, seed=6, **spec.runs[algorithm])
        assert not np.array_equal(a.final[next(iter(a.final))], c.final[next(iter(c.final))])


def _assert_agree(ref, other, tight: float) -> None:
    """``other`` (a fast path) against ``ref`` (NumPy, the reference path), entry by entry to ``tight``
    relative to the entry, or to ``tight`` times the largest entry of the array (a parameter that
    decays to 1e-10 carries the round-off of the O(1) ones around it).

    ``tight`` is the round-off of one sequence of operations taken on both paths: discrete rules, and an
    adaptive method whose runs took the same steps. An adaptive method may take another sequence of steps:
    the Rosenbrock-W method refactorises a Jacobian that falls due between two host reads at the next read
    (``sims.engine.sync``), and an explicit method's step-size controller turns a round-off difference of the two
    backends' reductions into another accept/reject decision where the error estimate sits at its threshold
    (at a ReLU's kink it does: the deep ReLU UFM took 669 and 680 steps). Each sequence is a valid
    integration, every step within ``rtol``, so the two runs then agree to the global error ``rtol x steps``.
    """
    assert list(ref.status) == list(other.status)
    rtol = ref.meta.get("rtol")
    if rtol is not None and (ref.meta.get("method", "").startswith("ros")
                             or not np.array_equal(ref.stop_step, other.stop_step)):
        tight = max(tight, float(rtol) * float(np.max(np.maximum(ref.stop_step, other.stop_step))))
    for k in ref.final:
        scale = float(np.max(np.abs(ref.final[k]))) or 1.0
        np.testing.assert_allclose(other.final[k], ref.final[k], rtol=tight, atol=tight * scale)


@runs
def test_numpy_and_array_api_strict_agree(spec: ModelSpec, algorithm: str):
    """On a second device, named by a string as a user would ("device1"), so that an array created on
    the default device fails loudly, and with the device loop's default of one host read per 32 steps."""
    problem = spec.make_problem(2)
    ref = spec.simulate(problem, backend="numpy", **spec.runs[algorithm])
    strict = spec.simulate(problem, backend="array_api_strict", device="device1", **spec.runs[algorithm])
    _assert_agree(ref, strict, 1e-10)
    assert strict.meta["backend"] == "array_api_strict" and strict.meta["device"].endswith("('device1')")
    assert ref.meta["sync_every"] < strict.meta["sync_every"]  # NumPy reads at every check; a device less often


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (extra solvable[torch])")
@runs
def test_numpy_and_torch_on_the_cpu_agree(spec: ModelSpec, algorithm: str):
    """torch on the CPU (CI installs its CPU build): the host data a family hands torch, the
    array_api_compat wrappers, torch's own BLAS (another summation order, hence round-off)."""
    problem = spec.make_problem(2)
    ref = spec.simulate(problem, backend="numpy", **spec.runs[algorithm])
    other = spec.simulate(problem, backend="torch", **spec.runs[algorithm])
    _assert_agree(ref, other, 1e-5 if algorithm == "sam" else 1e-7)
    assert other.meta["backend"] == "torch"


GPU_CASES = [("cupy", None), ("torch", "cuda")]


@pytest.mark.gpu
@runs
@pytest.mark.parametrize("backend, device", GPU_CASES, ids=["cupy", "torch-cuda"])
def test_numpy_and_gpu_agree(spec: ModelSpec, algorithm: str, backend: str, device):
    """The contract's agreement on a GPU (``pytest -m gpu``; skipped where the backend or a GPU is missing).
    cuBLAS sums in another order than the host BLAS: round-off of 1e-16 per product, amplified by the
    runs' dynamics and the step-size control's decisions, stays below 1e-7 in these small runs.
    Normalised SAM ascends along g / ||g||: once a run nears its minimum, ||g|| is small and the
    direction carries the round-off divided by it (measured on an H200: 1e-6 relative after 200 steps
    of deep_linear and matrix_sensing), hence 1e-5 for SAM."""
    from gpu import require

    require(backend)
    problem = spec.make_problem(2)
    ref = spec.simulate(problem, backend="numpy", **spec.runs[algorithm])
    fast = spec.simulate(problem, backend=backend, device=device, **spec.runs[algorithm])
    _assert_agree(ref, fast, 1e-5 if algorithm == "sam" else 1e-7)
    assert fast.meta["backend"] == backend and "cpu" not in fast.meta["device"].lower()


@specs
def test_float32_runs(spec: ModelSpec):
    problem = spec.make_problem(3)
    t32 = spec.simulate(problem, dtype="float32", **spec.runs["gd"])
    t64 = spec.simulate(problem, dtype="float64", **spec.runs["gd"])
    for k in t64.final:
        np.testing.assert_allclose(t32.final[k], t64.final[k], rtol=1e-3, atol=1e-4)


@specs
def test_too_large_step_is_reported_as_diverged(spec: ModelSpec):
    problem = spec.make_problem(4)
    traj = spec.simulate(problem, **spec.divergent)
    assert list(traj.status) == ["out_of_time", "diverged"] or list(traj.status) == ["converged", "diverged"]
    assert 0 < traj.stop_step[1] < spec.divergent["steps"]
    for v in traj.final.values():
        assert np.all(np.isfinite(v)), "a diverged run keeps its last finite state"
    for name, obs in traj.observables.items():
        assert np.all(np.isfinite(obs[0])), f"{name}: the stable run is unaffected"


@specs
def test_every_problem_field_is_validated(spec: ModelSpec):
    spec.problem_cls(**spec.problem_kwargs(0))  # the valid baseline
    for name, bad in spec.bad_fields:
        kwargs = spec.problem_kwargs(0)
        kwargs[name] = bad
        with pytest.raises((ValueError, TypeError), match=name):
            spec.problem_cls(**kwargs)


@specs
def test_batched_equals_one_by_one(spec: ModelSpec):
    problem = spec.make_problem(5)
    run = dict(spec.runs["flow"])
    alphas = run.pop("alpha")
    both = spec.simulate(problem, alpha=alphas, **run)
    for b, a in enumerate(alphas):
        one = spec.simulate(problem, alpha=[a], **run)
        for k in both.final:
            # same step sequence per run; BLAS may round the batched products differently (~1e-13), which
            # entries decaying to zero feel at the integrator's tolerance relative to the state's scale
            scale = float(np.abs(one.final[k]).max())
            np.testing.assert_allclose(both.final[k][b], one.final[k][0], rtol=1e-10, atol=1e-8 * scale)


@specs
def test_the_model_protocol(spec: ModelSpec):
    """What every family hands the driver: shapes, per-run losses, observables and named finals."""
    from solvable.sims.engine.driver import Model

    problem = spec.make_problem(6)
    m = spec.model(problem)
    assert isinstance(m, Model) and m.batch == m.state0[0].shape[0]
    loss, grads = m.loss_grad(m.state0)
    assert np.shape(loss) == (m.batch,)
    assert [g.shape for g in grads] == [x.shape for x in m.state0]
    obs = m.observe(m.state0)
    assert "loss" in obs and all(np.shape(v)[0] == m.batch for v in obs.values())
    np.testing.assert_allclose(obs["loss"], loss, rtol=1e-12)
    final = m.final(tuple(np.asarray(x) for x in m.state0))
    assert final and all(np.shape(v)[0] == m.batch for v in final.values())
    assert (m.n_samples is not None) == spec.weighted


def test_every_simulate_shares_one_signature():
    import inspect

    shared = ["problem", "alpha", "algorithm", "lr", "steps", "t_max", "seed", "backend", "dtype", "device"]
    sigs = {s.name: inspect.signature(s.simulate if not hasattr(s.simulate, "func") else s.simulate.func)
            for s in SPECS}
    for name, sig in sigs.items():
        params = sig.parameters
        assert list(params)[:6] == shared[:6], name
        assert all(params[k].kind is inspect.Parameter.KEYWORD_ONLY for k in shared[3:]), name
        defaults = {k: params[k].default for k in shared[2:]}
        assert defaults == {"algorithm": "flow", "lr": None, "steps": None, "t_max": None, "seed": 0,
                            "backend": "numpy", "dtype": "float64", "device": None}, name
        assert list(params.values())[-1].kind is inspect.Parameter.VAR_KEYWORD, name


@specs
def test_options_that_do_not_apply_are_refused(spec: ModelSpec):
    from solvable.sims.engine import flow

    problem = spec.make_problem(7)
    gd = dict(spec.runs["gd"])
    base = {k: v for k, v in gd.items() if k not in ("algorithm", "lr", "steps")}
    cases = [
        (dict(gd, rho=0.1), ValueError, "rho applies to algorithm 'sam', not 'gd'"),
        (dict(gd, batch_size=2), ValueError, "batch_size applies to algorithm 'sgd', not 'gd'"),
        (dict(gd, rtol=1e-6), ValueError, "rtol applies to algorithm 'flow', not 'gd'"),
        (dict(base, algorithm="flow", lr=0.1), ValueError, "lr applies to algorithm"),
        (dict(base, algorithm="flow", sam_normalized=False), ValueError, "sam_normalized applies to algorithm 'sam'"),
        (dict(base, algorithm=flow.GD(lr=0.01), lr=0.01, steps=3), ValueError, "lr is set on the algorithm object"),
        (dict(base, algorithm=flow.Flow(rtol=1e-6), rtol=1e-6), ValueError, "rtol is set on the algorithm object"),
        (dict(gd, tolerance=3), TypeError, "unknown option"),
        (dict(base, algorithm="adam", lr=0.1), ValueError, "algorithm must be one of"),
    ]
    for kwargs, error, match in cases:
        with pytest.raises(error, match=match):
            spec.simulate(problem, **kwargs)


@specs
def test_algorithm_objects_equal_their_shorthand(spec: ModelSpec):
    from solvable.sims.engine import flow

    problem = spec.make_problem(8)
    sam = dict(spec.runs["sam"]) if "sam" in spec.runs else dict(spec.runs["gd"], algorithm="sam", rho=0.05)
    base = {k: v for k, v in sam.items() if k not in ("algorithm", "lr", "rho")}
    short = spec.simulate(problem, **sam)
    obj = spec.simulate(problem, algorithm=flow.SAM(lr=sam["lr"], rho=sam["rho"]), **base)
    for k in short.final:
        np.testing.assert_array_equal(short.final[k], obj.final[k])
    assert short.meta["algorithm"] == obj.meta["algorithm"] == "sam" and short.meta["sam_normalized"] is True
    flow_run = {k: v for k, v in spec.runs["flow"].items() if k != "rtol"}
    a = spec.simulate(problem, rtol=1e-8, **flow_run)
    b = spec.simulate(problem, algorithm=flow.Flow(rtol=1e-8, atol=a.meta["atol"]), **flow_run)
    for k in a.final:
        np.testing.assert_array_equal(a.final[k], b.final[k])
