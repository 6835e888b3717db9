"""Fuzzing the public API: arbitrary values in, only documented exceptions out.

For every public entry point a valid, tiny baseline call is taken and one
argument is replaced by an arbitrary value. The call must then either succeed
-- with finite results wherever a run's status says it finished normally -- or
raise one of the documented exceptions (ValueError, TypeError, and SolverError
for convex programs). Anything else (a crash, an IndexError, a silent NaN) fails.
Hypothesis' deterministic CI profile bounds the examples; values are bounded
where a valid value would merely be slow (a billion steps is valid, not a bug).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from solvable.proofs_checks.framework.cli import main
from solvable.sims import deep_linear, diagonal, ufm
from solvable.sims.engine import flow
from solvable.sims import sweep
from solvable.sims.engine.backend import asarray, check_seed, namespace
from solvable.sims.engine.status import FINAL, Status
from solvable.theory import deep_linear as th_deep
from solvable.theory import diagonal as th
from solvable.theory import ufm as th_ufm
from solvable.theory.convex import SolverError

DOCUMENTED = (ValueError, TypeError)

# Warnings from our code mean a value slipped past validation.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning", "error::numpy.exceptions.ComplexWarning")

special_floats = st.sampled_from([0.0, -0.0, -1.0, 1e-300, 1e300, float("nan"), float("inf"), -float("inf")])
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63), st.integers(-5, 300),
    st.floats(allow_nan=True, allow_infinity=True), special_floats, st.text(max_size=5), st.complex_numbers(),
)
arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.complex128]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    elements=None,
)
anything = st.one_of(scalars, arrays, st.lists(st.floats(allow_nan=True), max_size=6), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))

PROBLEM = diagonal.Problem.random(5, 8, 2, seed=0)


def finite_where_finished(traj) -> None:
    """No NaN without a status that says the run did not finish normally."""
    ok = np.isin(traj.status, (Status.CONVERGED, Status.OUT_OF_TIME))
    for name, arr in traj.final.items():
        assert np.all(np.isfinite(arr[ok])), f"final[{name}] has NaN on a finished run"
    for name, arr in traj.observables.items():
        assert np.all(np.isfinite(arr[ok])), f"observable {name} has NaN on a finished run"


def call(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except DOCUMENTED + (SolverError,):
        return None


SIMULATE_BASE = dict(alpha=[0.5, 1.0], algorithm="gd", lr=0.05, steps=20)
SIMULATE_ARGS = ["alpha", "algorithm", "lr", "batch_size", "t_max", "steps", "rho", "t_eval", "rtol", "atol",
                 "loss_tol", "max_steps", "seed", "backend", "dtype", "sam_normalized", "record_w"]


@given(st.sampled_from(SIMULATE_ARGS), anything, st.sampled_from(["flow", "gd", "sgd", "sam"]))
@settings(max_examples=120)
@example("lr", 1e300, "gd")
@example("lr", 1e300, "sgd")
@example("rho", 1e300, "sam")
@example("alpha", 1e300, "gd")
@example("alpha", 1e-300, "flow")
@example("alpha", [[0.5] * 8, [np.nan] * 8], "flow")
@example("t_max", 1e300, "flow")
@example("lr", float("inf"), "gd")
@example("steps", 2**63, "gd")
@example("rtol", 1e-300, "flow")
@example("loss_tol", 1e300, "flow")
@example("t_eval", [0.0, 1.0, 1.0], "flow")
@example("t_eval", [0.0, 3.0, 30.0], "gd")
@example("batch_size", 10**6, "sgd")
def test_fuzz_simulate(name, value, algorithm):
    kwargs = dict(SIMULATE_BASE, algorithm=algorithm)
    if algorithm == "flow":
        kwargs = dict(alpha=[0.5, 1.0], t_max=5.0, max_steps=300)
    if algorithm == "sam":
        kwargs["rho"] = 0.01
    if name in ("steps", "max_steps") and isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 2000:
        value = 2000  # valid but slow
    kwargs[name] = value
    traj = call(diagonal.simulate, PROBLEM, **kwargs)
    if traj is not None:
        assert set(traj.status) <= set(FINAL)
        finite_where_finished(traj)


PROBLEM_FIELDS = dict(X=PROBLEM.X, y=PROBLEM.y, w_star=PROBLEM.w_star, noise=0.0)


@given(st.sampled_from(sorted(PROBLEM_FIELDS)), anything)
def test_fuzz_problem(name, value):
    kwargs = dict(PROBLEM_FIELDS, **{name: value})
    p = call(diagonal.Problem, **kwargs)
    if p is not None:
        assert np.all(np.isfinite(p.X)) and np.all(np.isfinite(p.y))


@given(st.sampled_from(["n", "d", "sparsity", "noise", "seed"]), anything)
def test_fuzz_problem_random(name, value):
    kwargs = dict(n=5, d=8, sparsity=2, noise=0.1, seed=0)
    if name in ("n", "d") and isinstance(value, int) and not isinstance(value, bool) and 500 < value <= 10**8:
        value = 500  # valid but large
    kwargs[name] = value
    p = call(diagonal.Problem.random, **kwargs)
    if p is not None:
        assert np.all(np.isfinite(p.X)) and np.all(np.isfinite(p.y))


X, Y = PROBLEM.X, PROBLEM.y


@given(st.sampled_from(["X", "y", "alpha"]), anything)
@settings(max_examples=60)
def test_fuzz_convex_predictions(name, value):
    args = dict(X=X, y=Y, alpha=0.5)
    args[name] = value
    sol = call(th.implicit_bias, args["X"], args["y"], args["alpha"])
    if sol is not None:
        assert np.all(np.isfinite(sol.x)) and math.isfinite(sol.kkt_residual)
    for fn in (th.min_l1_interpolator, th.min_l2_interpolator, th.kernel_correction):
        out = call(fn, args["X"], args["y"])
        if out is not None:
            x = out.x if hasattr(out, "x") else out
            assert np.all(np.isfinite(x))


@given(anything, anything)
def test_fuzz_potential(w, alpha):
    out = call(th.q_alpha, w, alpha)
    if out is not None:
        assert not np.any(np.isnan(out)), "Q_alpha of valid inputs is a number (possibly +inf), never NaN"


@given(st.floats(allow_nan=False))
def test_q_never_nan_on_the_real_line(z):
    assert not np.isnan(th.q(z)) and th.q(z) >= 0


@given(st.sampled_from(["Flow", "GD", "SGD", "SAM", "StopRule", "geometric", "log_times", "log_steps"]), anything)
def test_fuzz_engine_constructors(name, value):
    makers = {
        "Flow": lambda v: flow.Flow(rtol=v),
        "GD": lambda v: flow.GD(lr=v),
        "SGD": lambda v: flow.SGD(lr=0.1, batch_size=v),
        "SAM": lambda v: flow.SAM(lr=0.1, rho=v),
        "StopRule": lambda v: flow.StopRule(loss_tol=v),
        "geometric": lambda v: flow.geometric(v),
        "log_times": lambda v: flow.log_times(v),
        "log_steps": lambda v: flow.log_steps(min(v, 10**6) if isinstance(v, int) and not isinstance(v, bool) else v),
    }
    call(makers[name], value)


@given(anything, st.sampled_from(["namespace", "seed", "asarray"]))
def test_fuzz_backend(value, which):
    if which == "namespace":
        call(namespace, value)
    elif which == "seed":
        call(check_seed, value)
    else:
        call(asarray, [1.0, 2.0], np, value)


@given(st.text(max_size=200))
@settings(max_examples=60)
def test_fuzz_sweep_config(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "s.toml"
    path.write_text(text)
    call(sweep.load_config, path)


toml_values = st.one_of(st.integers(-3, 3), st.floats(allow_nan=False), st.text(max_size=4), st.booleans(),
                        st.lists(st.integers(-2, 2), max_size=3))


@given(st.dictionaries(st.sampled_from(["task", "store", "n_jobs", "executor", "extra"]), toml_values, max_size=5))
def test_fuzz_structured_sweep_config(tmp_path_factory, doc):
    lines = []
    for k, v in doc.items():
        if isinstance(v, str):
            lines.append(f"{k} = {v!r}".replace("'", '"') if '"' not in v and "\\" not in v else f"{k} = 1")
        elif isinstance(v, bool):
            lines.append(f"{k} = {str(v).lower()}")
        else:
            lines.append(f"{k} = {v}".replace("inf", "1").replace("nan", "1"))
    path = tmp_path_factory.mktemp("cfg") / "s.toml"
    path.write_text("\n".join(lines))
    call(sweep.load_config, path)


argv_tokens = st.one_of(
    st.sampled_from(["list", "figure", "--list", "sweep", "verify", "--claim", "--backend", "--seed", "--dtype",
                     "--model", "--quick", "--json", "--report", "--no-report", "--no-progress", "--all",
                     "diagonal.nope", "numpy", "float16", "-1", "x", "diagonal"]),
    st.text(max_size=6),
)


@given(st.lists(argv_tokens, max_size=5))
@settings(max_examples=80)
def test_fuzz_cli(argv):
    if argv[:1] == ["verify"] and "--claim" not in argv:
        argv = argv + ["--claim", "diagonal.nope"]  # a full verify run is valid but slow
    if argv[:1] == ["figure"] and "--list" not in argv:
        argv = argv[:1] + ["--list"]  # drawing is valid but slow
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors and --help
        assert exc.code in (0, 2)
    else:
        assert code in (0, 1, 2)


def test_fuzz_does_not_hang_on_huge_but_valid_sizes():
    with pytest.raises(ValueError, match="n \\* d must be at most"):
        diagonal.Problem.random(10**5, 10**5, 1)


DEEP = deep_linear.Problem.random(3, 2, (3,), seed=0)
DEEP_ARGS = ["alpha", "algorithm", "lr", "t_max", "init", "layers", "steps", "rho", "t_eval", "rtol", "atol",
             "loss_tol", "max_steps", "seed", "backend", "dtype", "record_sharpness"]


@given(st.sampled_from(DEEP_ARGS), anything, st.sampled_from(["flow", "gd", "sam"]))
@settings(max_examples=80)
@example("lr", 1e300, "gd")
@example("layers", [np.ones((1, 3, 3)), np.ones((1, 2, 3))], "gd")
@example("alpha", [0.1, float("nan")], "flow")
def test_fuzz_deep_linear_simulate(name, value, algorithm):
    kwargs = dict(alpha=[0.1, 0.5], algorithm=algorithm, init="random")
    kwargs.update(t_max=3.0, max_steps=300) if algorithm == "flow" else kwargs.update(lr=0.05, steps=30)
    if algorithm == "sam":
        kwargs["rho"] = 0.05
    if name in ("steps", "max_steps") and isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 2000:
        value = 2000
    kwargs[name] = value
    traj = call(deep_linear.simulate, DEEP, **kwargs)
    if traj is not None:
        finite_where_finished(traj)


@given(st.sampled_from(["target", "hidden"]), anything)
def test_fuzz_deep_linear_problem(name, value):
    kwargs = {"target": DEEP.target, "hidden": DEEP.hidden, name: value}
    call(deep_linear.Problem, **kwargs)


@given(st.sampled_from(["saxe", "learning_time", "gfs", "sam_edge", "grok", "collapse", "mode", "ridge_error",
                        "optimal_ridge", "resolvent"]), anything, anything)
@settings(max_examples=80)
def test_fuzz_deep_linear_theory(which, a, b):
    fns = {
        "saxe": lambda: th_deep.saxe_mode(a, 2.0, b),
        "learning_time": lambda: th_deep.saxe_learning_time(a, 0.01, b),
        "gfs": lambda: th_deep.gfs_sharpness(a, b),
        "sam_edge": lambda: th_deep.sam_edge(a, b),
        "grok": lambda: th_deep.grokking_time(a, 0.01, b) if isinstance(a, float) and 0.05 < a < 0.95 else
        th_deep.grokking_time(a, 0.01, 1e-3) if not isinstance(a, float) else None,
        "collapse": lambda: th_deep.model_collapse_error(a, 5, 20, 1.0, 20, b),
        "mode": lambda: th_deep.end_to_end_mode([0.0, 1.0], 2.0, a, b),
        "ridge_error": lambda: th_deep.model_collapse_ridge_error(a, 5, 20, 1.0, 20, 0.5, b),
        "optimal_ridge": lambda: th_deep.model_collapse_optimal_ridge(a, 5, 20, b, 20, 0.5),
        "resolvent": lambda: th_deep.mp_resolvent(a, b),
    }
    out = call(fns[which])
    if out is not None:
        assert not np.any(np.isnan(np.asarray(out, dtype=float)))


COLLAPSE_BASE = dict(d=3, T=6, sigma=1.0, T0=8, sigma0=0.5, n_generations=2, n_trials=2, seed=0, ridge=[0.0, 0.5])


@given(st.sampled_from(sorted(COLLAPSE_BASE)), anything)
@settings(max_examples=60)
def test_fuzz_model_collapse_simulation(name, value):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and name != "seed" and value > 40:
        value = 40  # sizes: keep the run small; the bounds themselves are checked by validation
    out = call(deep_linear.model_collapse, **dict(COLLAPSE_BASE, **{name: value}))
    if out is not None:
        assert np.all(np.isfinite(out))


UFM_FIELDS = dict(n=(4, 3, 2), d=4, loss="mse", lambda_W=1e-2, lambda_H=1e-2, lambda_b=None, depth=1, relu=False)


@given(st.sampled_from(sorted(UFM_FIELDS)), anything)
def test_fuzz_ufm_problem(name, value):
    call(ufm.Problem, **dict(UFM_FIELDS, **{name: value}))


@given(st.sampled_from(["alpha", "algorithm", "lr", "t_max", "steps", "t_eval", "rtol", "grad_tol", "seed", "backend",
                        "dtype"]), anything)
@settings(max_examples=60)
def test_fuzz_ufm_simulate(name, value):
    kwargs = dict(alpha=[0.1], algorithm="gd", lr=0.5, steps=30)
    if name in ("steps",) and isinstance(value, int) and not isinstance(value, bool) and value > 2000:
        value = 2000
    kwargs[name] = value
    traj = call(ufm.simulate, ufm.Problem(**UFM_FIELDS), **kwargs)
    if traj is not None:
        finite_where_finished(traj)


@given(st.sampled_from(["value", "geometry", "etf_scale", "ce_program"]), anything, anything)
@settings(max_examples=60)
def test_fuzz_ufm_theory(which, a, b):
    fns = {
        "value": lambda: th_ufm.mse_optimal_value(a, b, 1e-2),
        "geometry": lambda: th_ufm.mse_geometry((4, 3, 2), a, 1e-2, depth=b),
        "etf_scale": lambda: th_ufm.ce_balanced_scale(a, 4, b, 1e-2),
        "ce_program": lambda: th_ufm.ce_convex_program(a, 1e-2, 1e-2) if not (isinstance(a, (list, tuple, np.ndarray))
                                                                             and np.size(a) > 5) else None,
    }
    out = call(fns[which])
    if out is not None and not hasattr(out, "w_norms_sq") and not hasattr(out, "x"):
        assert not np.any(np.isnan(np.asarray(out, dtype=float)))


@given(st.sampled_from(["alpha", "temperature", "t_max", "rtol", "grad_tol", "seed", "backend", "dtype"]), anything)
@settings(max_examples=40)
def test_fuzz_ufm_scl(name, value):
    kwargs = dict(alpha=[1.0], temperature=0.5, t_max=2.0)
    kwargs[name] = value
    traj = call(ufm.simulate_scl, ufm.Problem(n=(3, 2), d=3, relu=True), **kwargs)
    if traj is not None:
        finite_where_finished(traj)
