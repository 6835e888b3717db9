"""The common contract suite, run over every model family in ``contract.SPECS``."""

from __future__ import annotations

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


RUN_CASES = [(s, a) for s in SPECS for a in ("flow", "gd", "sgd", "sam", "gr") if a in s.runs]
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


@runs
def test_numpy_and_array_api_strict_agree(spec: ModelSpec, algorithm: str):
    problem = spec.make_problem(2)
    ref = spec.simulate(problem, backend="numpy", **spec.runs[algorithm])
    strict = spec.simulate(problem, backend="array_api_strict", **spec.runs[algorithm])
    assert list(ref.status) == list(strict.status)
    for k in ref.final:
        # same operations in the same order; only BLAS blocking may differ
        np.testing.assert_allclose(strict.final[k], ref.final[k], rtol=1e-10, atol=1e-13)
    assert strict.meta["backend"] == "array_api_strict"


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
