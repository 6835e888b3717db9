"""Compiled steps (``compile=True``, :mod:`sims.engine.compiled`) against the eager step they are traced from.

The eager array-API step is the reference: a compiled run must take the same steps, stop every run at the
same step with the same status, and record the same observables up to the reassociation a fused loop may
make (measured: bit-identical on torch 2.13's CPU inductor for GD and SGD). Compiling is torch's
(``torch.compile``): CI installs torch's CPU build, and ``pytest -m gpu`` repeats the comparison on torch-cuda.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from contract import SPECS
from rotation import share
from solvable.sims import diagonal, matrix_sensing
from solvable.sims.engine import flow
from solvable.sims.engine.compiled import compiler
from solvable.sims.engine.backend import namespace

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed (extra solvable[torch])")


def _problem():
    return diagonal.Problem.random(20, 40, 3, seed=0)


# lr 60 diverges at once, 0.05 converges within the budget, the rest run out of steps: every status path
RUNS = dict(alpha=[0.05, 0.3, 1.0, 0.5], lr=[0.05, 0.01, 0.01, 60.0], steps=400, loss_tol=1e-6)


def test_compile_is_validated():
    p = _problem()
    with pytest.raises(TypeError, match="compile must be True or False"):
        diagonal.simulate(p, 0.1, algorithm="gd", lr=0.01, steps=5, compile="yes")
    with pytest.raises(TypeError, match="compile must be True or False"):
        flow.Flow(compile=1)
    for backend in ("numpy", "array_api_strict"):
        for kw in (dict(algorithm="gd", lr=0.01, steps=5), dict(t_max=1.0), dict(t_max=1.0, coordinates="full")):
            with pytest.raises(ValueError, match=r"compile=True needs a backend with a compiler: \['torch'\]"):
                diagonal.simulate(p, 0.1, backend=backend, compile=True, **kw)
        with pytest.raises(ValueError, match="compile=True needs"):
            compiler(namespace(backend), True)
    # False is the default, recorded in every trajectory
    assert diagonal.simulate(p, 0.1, t_max=1.0, compile=False).meta["compiled"] is False
    assert diagonal.simulate(p, 0.1, algorithm="gd", lr=0.01, steps=5).meta["compiled"] is False
    with pytest.raises(ValueError, match="compile is set on the algorithm object"):
        diagonal.simulate(p, 0.1, algorithm=flow.Flow(compile=True), t_max=1.0, compile=True)


def test_eager_compiler_is_the_step_itself():
    def step(x):
        return x

    assert compiler(namespace("numpy"), False)(step) is step


def _same(ref, got, rtol=1e-12):
    assert list(got.status) == list(ref.status)
    np.testing.assert_array_equal(got.stop_step, ref.stop_step)
    for k in ref.observables:
        np.testing.assert_allclose(got.observables[k], ref.observables[k], rtol=rtol, atol=1e-300)
    for k in ref.final:
        np.testing.assert_allclose(got.final[k], ref.final[k], rtol=rtol, atol=1e-300)


@needs_torch
@pytest.mark.parametrize("algorithm, extra", [
    ("gd", {}),  # the default run compiles one step (about 13 s the first time, 4 s from inductor's cache)
    pytest.param("sgd", {"batch_size": 5}, marks=pytest.mark.slow),
    pytest.param("sam", {"rho": 0.05, "sam_normalized": False}, marks=pytest.mark.slow),
    pytest.param("flood", {"flood_level": 1e-3}, marks=pytest.mark.slow),
])
def test_compiled_discrete_step_equals_the_eager_step(algorithm, extra):
    """Normalised SAM is left out: near a minimum its ascent step rho g/||g|| turns with the round-off in g, so
    two exact implementations part at the level of the round-off times 1/||g|| (seen: 1e-3 relative within these 400 steps)."""
    p = _problem()
    kw = dict(RUNS, algorithm=algorithm, backend="torch", seed=3, **extra)
    ref = diagonal.simulate(p, **kw)
    got = diagonal.simulate(p, compile=True, **kw)
    assert got.meta["compiled"] is True and ref.meta["compiled"] is False
    assert "diverged" in list(ref.status)
    if algorithm == "gd":
        assert "converged" in list(ref.status)
    _same(ref, got)


@needs_torch
@pytest.mark.slow
def test_compiled_step_is_traced_once_per_shape():
    """One trace serves every step and every later run of the same shapes: the step index is a device
    counter and the rule's draws are inputs, so nothing a step changes is baked into the trace."""
    import torch._dynamo

    torch._dynamo.reset()
    counters = torch._dynamo.utils.counters
    counters.clear()
    p = _problem()
    kw = dict(RUNS, algorithm="sgd", batch_size=5, backend="torch", compile=True)
    diagonal.simulate(p, seed=1, **kw)
    graphs = counters["stats"]["unique_graphs"]
    assert graphs == 2  # the steps that test convergence (every 10th) and the others
    diagonal.simulate(diagonal.Problem.random(20, 40, 3, seed=5), seed=2, **dict(kw, steps=250))
    assert counters["stats"]["unique_graphs"] == graphs


@needs_torch
@pytest.mark.slow
def test_compiled_step_of_a_tuple_state():
    """A model whose state is two arrays (matrix sensing's asymmetric factors F, G) runs compiled too."""
    p = matrix_sensing.Problem.random(6, 5, 2, m=60, seed=0)
    kw = dict(alpha=[0.01, 0.1], algorithm="gd", lr=0.05, steps=200, k=3, backend="torch")
    _same(matrix_sensing.simulate(p, **kw), matrix_sensing.simulate(p, compile=True, **kw))


@needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("coordinates", [
    "reduced",  # the default of the diagonal network: the Rosenbrock-W loop (sims.engine.stiff)
    "full",  # the explicit Dormand-Prince loop (sims.engine.flow)
])
def test_compiled_flow_agrees_with_the_eager_flow(coordinates):
    """A fused step rounds differently, which can flip a step's acceptance at the margin: the compiled run is
    then another valid step sequence, so it agrees with the eager one to the global error, rtol x steps (as
    reading the host less often does, tests/test_sync.py). Each run is traced once, for its whole length:
    finished runs stay in the batch, frozen, so the shapes never change."""
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    p = _problem()
    kw = dict(alpha=np.logspace(-3, 0.5, 6), t_max=1e6 if coordinates == "reduced" else 1e3, rtol=1e-8,
              coordinates=coordinates, backend="torch")
    ref = diagonal.simulate(p, **kw)
    got = diagonal.simulate(p, compile=True, **kw)
    assert got.meta["compiled"] is True and torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1
    assert list(got.status) == list(ref.status) and list(ref.status).count("converged") >= 3
    budget = 1e-8 * float(np.max(ref.stop_step))
    np.testing.assert_allclose(got.final["w"], ref.final["w"], rtol=budget, atol=budget * np.abs(ref.final["w"]).max())
    for k in ("l1", "distance"):
        np.testing.assert_allclose(got.observables[k], ref.observables[k], rtol=budget)
    np.testing.assert_allclose(got.stop_step, ref.stop_step, rtol=0.05)


@pytest.mark.gpu
@pytest.mark.parametrize("case", ["gd", "sgd", "reduced", "full"])
def test_compiled_step_on_a_gpu_agrees_with_the_eager_step(case):
    """torch-cuda: TorchInductor's Triton kernels against the eager step on the same card (``pytest -m gpu``).
    Discrete runs: the same steps, to round-off times the steps (a GPU reduction may sum in another order).
    Flows: to the global error, rtol x steps, as on the CPU."""
    from gpu import require

    require("torch")
    p = _problem()
    if case in ("gd", "sgd"):
        kw = dict(RUNS, algorithm=case, backend="torch", device="cuda", seed=3, **({"batch_size": 5} if case == "sgd" else {}))
        _same(diagonal.simulate(p, **kw), diagonal.simulate(p, compile=True, **kw), rtol=1e-9)
        return
    kw = dict(alpha=np.logspace(-3, 0.5, 6), t_max=1e6 if case == "reduced" else 1e3, rtol=1e-8, coordinates=case,
              backend="torch", device="cuda")
    ref, got = diagonal.simulate(p, **kw), diagonal.simulate(p, compile=True, **kw)
    assert list(got.status) == list(ref.status)
    budget = 1e-8 * float(np.max(ref.stop_step))
    np.testing.assert_allclose(got.final["w"], ref.final["w"], rtol=budget, atol=budget * np.abs(ref.final["w"]).max())


@needs_torch
@pytest.mark.slow
@pytest.mark.parametrize("spec", share(SPECS, 12), ids=[s.name for s in share(SPECS, 12)])
def test_every_family_compiles(spec):  # a twelfth of the families each slow run, rotating with the commit
    """Every model of the contract suite runs its flow compiled on torch and agrees with its eager run to the
    global error rtol x steps (another valid step sequence). The flow traces the same loss and gradient the
    discrete rules do (and the Jacobian in reduced coordinates); the discrete loop's own trace is tested above."""
    problem = spec.make_problem(2)
    kw = dict(spec.runs["flow"], backend="torch")
    ref = spec.simulate(problem, **kw)
    got = spec.simulate(problem, compile=True, **kw)
    assert got.meta["compiled"] is True
    assert list(got.status) == list(ref.status)
    tight = max(1e-12, ref.meta["rtol"] * float(np.max(ref.stop_step)))
    for k in ref.final:
        scale = float(np.max(np.abs(ref.final[k]))) or 1.0
        np.testing.assert_allclose(got.final[k], ref.final[k], rtol=tight, atol=tight * scale)
