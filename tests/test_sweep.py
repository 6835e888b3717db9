"""Sweeps: stable keys, resumption after an interruption, atomic files, executors, safe TOML configs."""

import importlib
import json
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from solvable.proofs_checks.framework.cli import main
from solvable.sims import sweep



def square(x, fail_on=None, log=None):
    """A picklable task that logs each call and can fail on one point."""
    if log is not None:
        with open(log, "a") as fh:
            fh.write(f"{x}\n")
    if fail_on is not None and x == fail_on:
        raise RuntimeError("interrupted")
    return {"y": x * x, "tag": "ok"}


#: A toy point of every registered task (a second of work each)
TASK_POINTS = {"diagonal.limit": dict(n=8, d=16, sparsity=2, alpha=0.5, t_max=1e3),
               "deep_linear.limit": dict(d_in=3, d_out=2, hidden=[3], alpha=0.01, t_max=30.0),
               "ufm.collapse": dict(n=[3, 3], d=3, t_max=500.0),
               "matrix_sensing.recovery": dict(n=8, rank=2, k=2, alpha=1e-2, m=120, steps=1000),
               "lsa.icl": dict(d=3, N=10, t_max=200.0),
               "diagonal.gd_phase": dict(n=8, d=16, sparsity=2, lr_scale=0.5, alphas=[0.3, 1.0], steps=3000)}


def test_keys_are_stable_and_canonical():
    assert sweep.point_key("t", {"a": 1, "b": 2.5}) == sweep.point_key("t", {"b": 2.5, "a": 1.0})
    assert sweep.point_key("t", {"a": 1}) != sweep.point_key("t", {"a": 2})
    assert sweep.point_key("t", {"a": 1}) != sweep.point_key("u", {"a": 1})
    with pytest.raises(ValueError, match="finite"):
        sweep.point_key("t", {"a": float("nan")})
    with pytest.raises(TypeError, match="sweep parameters"):
        sweep.point_key("t", {"a": object()})


def test_grid_is_the_cartesian_product():
    pts = sweep.grid(a=[1, 2], b=["x", "y", "z"])
    assert len(pts) == 6 and pts[0] == {"a": 1, "b": "x"} and pts[-1] == {"a": 2, "b": "z"}
    with pytest.raises(ValueError, match="non-empty"):
        sweep.grid(a=[])


def test_interrupted_sweep_resumes_without_recomputing(tmp_path):
    log = tmp_path / "calls.txt"
    pts = [{"x": x, "log": str(log)} for x in range(6)]
    table = sweep.run(square, [dict(p, fail_on=3) for p in pts[:4]] + pts[4:], tmp_path / "store",
                      executor="sequential", progress=False)
    assert list(table["sweep_status"]) == ["ok"] * 3 + ["failed"] + ["ok"] * 2, "a failing point does not end it"
    assert "RuntimeError: interrupted" in table["sweep_error"][3]
    doc = sweep.Store(tmp_path / "store").read(sweep.point_key(sweep.task_id(square), dict(pts[3], fail_on=3)))
    assert doc["status"] == "failed" and "Traceback" in doc["error"], "the whole traceback is kept"
    assert not list((tmp_path / "store").glob(".*.tmp")), "no half-written files"
    assert not list((tmp_path / "store").glob("*.lock")), "every claim released"
    log.write_text("")
    table = sweep.run(square, pts, tmp_path / "store2", executor="sequential", progress=False)
    assert list(table["y"]) == [x * x for x in range(6)]
    log.write_text("")
    again = sweep.run(square, pts, tmp_path / "store2", executor="sequential", progress=False)
    assert log.read_text() == "", "a complete store recomputes nothing"
    assert list(again["y"]) == list(table["y"])


def test_failed_points_are_kept_until_retried(tmp_path):
    log = tmp_path / "calls.txt"
    pts = [{"x": x, "log": str(log), "fail_on": 1} for x in range(3)]
    sweep.run(square, pts, tmp_path, executor="sequential", progress=False)
    log.write_text("")
    again = sweep.run(square, pts, tmp_path, executor="sequential", progress=False)
    assert log.read_text() == "" and list(again["sweep_status"]) == ["ok", "failed", "ok"]
    retried = sweep.run(square, pts, tmp_path, executor="sequential", progress=False, retry_failed=True)
    assert log.read_text() == "1\n", "only the failed point runs again"
    assert list(retried["sweep_status"]) == ["ok", "failed", "ok"]  # it fails again, deterministically


def test_task_identity(tmp_path):
    import functools

    import sweep_tasks

    assert sweep.task_id(square) == "test_sweep:square"
    a, b = functools.partial(square, fail_on=1), functools.partial(square, fail_on=2)
    assert sweep.task_id(a) != sweep.task_id(b)
    assert sweep.task_id(a) == sweep.task_id(functools.partial(square, fail_on=1.0)), "canonical bound arguments"
    assert "0x" not in sweep.task_id(a), "no memory address in a key"
    assert sweep.task_id(task) != sweep.task_id(sweep_tasks.task), "same name, different modules"
    with pytest.raises(ValueError, match="lambda or a closure"):
        sweep.run(lambda x: {"y": x}, [{"x": 1}], tmp_path, progress=False)

    def local(x):
        return {"y": x}

    with pytest.raises(ValueError, match="lambda or a closure"):
        sweep.task_id(local)
    with pytest.raises(TypeError, match="module-level function"):
        sweep.task_id(print)


def task(x):
    return {"y": x}


def test_partial_task_resumes_from_its_keys(tmp_path):
    import functools

    log = tmp_path / "calls.txt"
    fn = functools.partial(square, log=str(log))
    sweep.run(fn, sweep.grid(x=[1, 2]), tmp_path, executor="sequential", progress=False)
    log.write_text("")
    sweep.run(functools.partial(square, log=str(log)), sweep.grid(x=[1, 2, 3]), tmp_path, executor="sequential",
              progress=False)
    assert log.read_text() == "3\n", "a new partial with the same arguments finds the stored points"


@pytest.mark.parametrize("executor", ["loky", "threading"])
def test_joblib_executors(tmp_path, executor):
    table = sweep.run(square, sweep.grid(x=[1, 2, 3]), tmp_path, executor=executor, n_jobs=2, progress=False)
    assert sorted(table["y"]) == [1, 4, 9]


def test_any_concurrent_futures_executor(tmp_path):
    with ThreadPoolExecutor(2) as pool:
        table = sweep.run(square, sweep.grid(x=[4, 5]), tmp_path, executor=pool, progress=False)
    assert list(table["y"]) == [16, 25]


def test_dask_distributed(tmp_path):
    import distributed  # part of the test extra
    with distributed.LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            table = sweep.run(square, sweep.grid(x=[2, 3]), tmp_path, executor="dask", client=client,
                              progress=False)
    assert list(table["y"]) == [4, 9]


def test_named_task_runs_a_diagonal_limit(tmp_path):
    points = [dict(n=10, d=20, sparsity=2, alpha=a) for a in (0.1, 1.0)]
    table = sweep.run("diagonal.limit", points, tmp_path, executor="sequential", progress=False)
    assert list(table["status"]) == ["converged", "converged"]
    assert table["l1"][0] < table["l1"][1]  # the small-alpha limit is sparser (smaller l1 norm)


def test_every_family_has_a_task_that_runs(tmp_path):
    points = TASK_POINTS
    assert set(points) == set(sweep.TASKS)
    fits = {"diagonal.limit": "loss", "deep_linear.limit": "mode_error", "ufm.collapse": "nc1",  # each goes to ~0
            "matrix_sensing.recovery": "rel_error", "lsa.icl": "A_offdiag"}
    for name, p in points.items():
        row = sweep.run(name, [p], tmp_path / name, executor="sequential", progress=False).iloc[0]
        if name == "diagonal.gd_phase":  # one row per step size, lists over the alphas: the larger one diverges
            assert row["sweep_status"] == "ok" and row["status"] == ["converged", "diverged"], row
            assert row["stop_step"][1] < 100 and np.isnan(float(row["distance"][1])) and row["distance"][0] < 1
            continue
        assert row["sweep_status"] == "ok" and row[fits[name]] < 1e-3, (name, row[fits[name]])
    gd = sweep.run("deep_linear.limit", [dict(d_in=3, d_out=2, hidden=[3], alpha=0.1, init="random", algorithm="gd",
                                            lr=0.1, steps=3000)], tmp_path / "gd", executor="sequential",
                   progress=False).iloc[0]
    assert gd["stop_step"] == 3000 and gd["steps"] == 3000 and gd["mode_error"] < 1e-3


def test_matrix_sensing_task_rate_and_rank_against_the_closed_forms(tmp_path):
    """Population GD with k = r: the fitted rate is -ln(1 - 4 s eta sigma_r) (theory.matrix_sensing.exact_rate per
    step, s = 1/2, eta = 0.1) for kappa = 1 and 3; over-parameterised (k = r + 2) from a small start the learned rank
    is r, and the error decays far more slowly (Xiong et al.'s 1/T^2)."""
    from solvable.theory import matrix_sensing as th

    pts = [dict(n=10, rank=2, k=k, alpha=1e-2, operator="population", kappa=kappa, steps=3000)
           for kappa, k in ((1.0, 2), (3.0, 2), (1.0, 4))]
    rows = sweep.run("matrix_sensing.recovery", pts, tmp_path, executor="sequential", progress=False)
    for row, kappa in zip(rows.iloc[:2].itertuples(), (1.0, 3.0)):
        assert row.status == "converged" and row.learned_rank == 2
        assert row.rate == pytest.approx(-np.log(1 - 0.1 * th.exact_rate(1 / kappa)), rel=1e-3)
    over = rows.iloc[2]
    assert over["learned_rank"] == 2 and over["status"] == "out_of_time" and 0 < over["rate"] < 1e-3
    assert len(over["sv"]) == 4 and over["sv"][2] < 1e-3


def test_lsa_task_learns_zfb_preconditioner_and_its_risk_at_another_length(tmp_path):
    """The population flow's limit A = Gamma^-1, Gamma = (1 + 1/N) Lambda + tr(Lambda)/N I (ZFB Theorem 4.1, the
    diagonal Lambda here), and test_loss at length M equals theory.lsa.loss of that A at M (an independent
    closed form: theory, not the simulator's objective)."""
    from solvable.theory import lsa as th

    lam, N, M = np.array([1.0, 2.0, 3.0]), 10, 40
    row = sweep.run("lsa.icl", [dict(d=3, N=N, M=M, Lambda=lam.tolist())], tmp_path, executor="sequential",
                    progress=False).iloc[0]
    A = np.diag(1 / ((1 + 1 / N) * lam + lam.sum() / N))
    np.testing.assert_allclose(row["A_diag"], np.diag(A), rtol=1e-8)
    assert row["A_offdiag"] < 1e-10
    assert row["loss"] == pytest.approx(th.loss(A, np.diag(lam), N), rel=1e-8)
    assert row["test_loss"] == pytest.approx(th.loss(A, np.diag(lam), M), rel=1e-8)


def test_unknown_task_and_executor(tmp_path):
    with pytest.raises(ValueError, match="task must be one of"):
        sweep.run("os.system", [{}], tmp_path)
    with pytest.raises(ValueError, match="executor must be"):
        sweep.run(square, [{"x": 1}], tmp_path, executor="mpi")


def test_python_run_checks_every_point_against_the_signature_before_anything_runs(tmp_path):
    """A misspelt key, a missing parameter or a wrongly typed value is one clear error naming the point, raised
    before the executor starts (the store stays empty), for a named task and for a function alike; a task with
    **kwargs takes any name."""
    good = dict(n=8, d=16, sparsity=2, alpha=0.5)
    with pytest.raises(ValueError, match=r"point 1 .*'diagonal.limit' has no parameter 'fixed'"):
        sweep.run("diagonal.limit", [good, {"fixed": good}], tmp_path / "a", executor="sequential", progress=False)
    with pytest.raises(ValueError, match=r"point 0 .*needs 'alpha'"):
        sweep.run("diagonal.limit", [dict(n=8, d=16, sparsity=2)], tmp_path / "b", progress=False)
    with pytest.raises(TypeError, match=r"point 0 .*n must be int"):
        sweep.run("diagonal.limit", [dict(good, n="8")], tmp_path / "c", progress=False)
    log = tmp_path / "calls.log"
    with pytest.raises(ValueError, match=r"point 1 .*'square' has no parameter 'z'"):
        sweep.run(square, [{"x": 1, "log": str(log)}, {"z": 2}], tmp_path / "d", executor="sequential",
                  progress=False)
    assert not log.exists()  # the good point did not run either
    assert not any((tmp_path / d).exists() and any((tmp_path / d).iterdir()) for d in "abcd")

    def spread(**kw):
        return {"n": len(kw)}
    assert sweep.check_params(spread, ["anything"], {"anything": 1}) is None


def test_malformed_point_file_is_refused(tmp_path):
    st = sweep.Store(tmp_path)
    key = sweep.point_key("square", {"x": 1})
    st.file(key).write_text(json.dumps({"format": "other", "result": {}}))
    with pytest.raises(ValueError, match="not a solvable.sweep-point"):
        st.read(key)
    st.file(key).write_text("{not json")
    with pytest.raises(ValueError, match="cannot read"):
        st.read(key)


def _config(tmp_path, text):
    path = tmp_path / "sweep.toml"
    path.write_text(text)
    return path


def test_cli_sweep_from_toml(tmp_path, capsys):
    cfg = _config(tmp_path, """
task = "diagonal.limit"
store = "store"
executor = "sequential"
[fixed]
n = 10
d = 20
sparsity = 2
[grid]
alpha = [0.1, 1.0]
seed = [0, 1]
""")
    assert main(["sweep", str(cfg), "--no-progress"]) == 0
    table = (tmp_path / "store" / "table.csv").read_text().splitlines()
    assert len(table) == 5 and "alpha" in table[0] and "distance" in table[0]
    assert "4 points" in capsys.readouterr().out


@pytest.mark.parametrize("text, match", [
    ('task = "diagonal.limit"\nstore = "s"\nimport = "os"\n', "unknown keys"),
    ('task = "__import__(\'os\').system(\'touch pwned\')"\nstore = "s"\n', "task must be one of"),
    ('task = "diagonal.limit"\n', "store must be"),
    ('task = "diagonal.limit"\nstore = "s"\n[grid]\nalpha = 3\n', "non-empty list"),
    ('task = "diagonal.limit"\nstore = "s"\nexecutor = "dask"\n', "executor must be"),
    ('task = = "x"', "cannot read sweep config"),
    ('task = "diagonal.limit"\nstore = "s"\n[fixed]\nn = 5\nd = 8\nsparsity = 2\nalpah = 1\n[grid]\nalpha = [1]\n',
     "has no parameter 'alpah'; its parameters are"),
    ('task = "diagonal.limit"\nstore = "s"\n[fixed]\nn = 5\nd = 8\n[grid]\nalpha = [1]\n', "needs 'sparsity'"),
    ('task = "diagonal.limit"\nstore = "s"\n[fixed]\nn = 5\nd = 8\nsparsity = 2\n[grid]\nalpha = [1]\nn = [3]\n',
     "both"),
])
def test_bad_configs_are_refused_and_never_executed(tmp_path, text, match, monkeypatch):
    """Refused before any worker starts: the error names the key and the accepted ones."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=match):
        sweep.load_config(_config(tmp_path, text))
    assert not (tmp_path / "pwned").exists()


def test_wrongly_typed_config_value_is_refused(tmp_path):
    cfg = _config(tmp_path, 'task = "diagonal.limit"\nstore = "s"\n[fixed]\nn = "five"\nd = 8\nsparsity = 2\n'
                            '[grid]\nalpha = [1.0, "big"]\n')
    with pytest.raises(TypeError, match="n must be int"):
        sweep.load_config(cfg)
    cfg.write_text('task = "diagonal.limit"\nstore = "s"\n[fixed]\nn = 5\nd = 8\nsparsity = 2\n[grid]\nalpha = [1.0, "big"]\n')
    with pytest.raises(TypeError, match="alpha must be float"):
        sweep.load_config(cfg)


@pytest.mark.slow  # 27 s: in the slow step
def test_every_task_runs_on_a_second_device(monkeypatch):
    """A task's backend and device reach its simulation: array_api_strict's second device gives NumPy's
    numbers (an array made on the default device would fail there). The diagonal task's flow is the
    Rosenbrock-W method, which on a device refreshes a Jacobian that falls due between two host reads at the
    next read (``tests/test_contract.py::_assert_agree``): another valid step sequence, so where a run stops
    on its loss threshold (its step, time and last loss) is its own, and its limit agrees to the global
    error rtol x steps (rtol 1e-8)."""
    points = TASK_POINTS
    assert set(points) == set(sweep.TASKS)
    for name, p in points.items():
        task = sweep.get_task(name)
        host = task(**p)
        family, ran = importlib.import_module(task.__module__), []

        def simulate(*args, _real=family.simulate, _ran=ran, **kwargs):  # two tasks of a family: wrapped twice
            traj = _real(*args, **kwargs)
            _ran.append(traj.meta["device"])
            return traj

        monkeypatch.setattr(family, "simulate", simulate)
        strict = task(**p, backend="array_api_strict", device="device1")
        assert len(ran) == 1 and ran[0].endswith("('device1')"), (name, ran)
        assert strict.keys() == host.keys() and strict["status"] == host["status"]
        stopped_on_threshold = host["status"] == "converged"
        tol = 1e-8 * host["stop_step"] if stopped_on_threshold else 1e-12
        for key, value in host.items():
            if key == "status" or (stopped_on_threshold and key in ("stop_step", "stop_time", "loss")):
                continue
            assert strict[key] == pytest.approx(value, rel=tol, abs=tol, nan_ok=True), (name, key)
    with pytest.raises(ValueError, match="device must name a device of backend 'numpy'"):
        sweep.get_task("diagonal.limit")(**points["diagonal.limit"], device="device1")


def test_cli_sweep_on_a_dask_scheduler(tmp_path, capsys):
    """`solvable sweep --scheduler ADDRESS`: the points run on an existing cluster's workers (here a LocalCluster
    of worker processes), the same table as the sequential run."""
    import distributed

    text = 'task = "diagonal.limit"\nstore = "{}"\nexecutor = "sequential"\n[fixed]\nn = 10\nd = 20\nsparsity = 2\n' \
           '[grid]\nalpha = [0.1, 1.0]\n'
    here = _config(tmp_path, text.format("here"))
    assert main(["sweep", str(here), "--no-progress"]) == 0
    there = tmp_path / "there.toml"
    there.write_text(text.format("there"))
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        assert main(["sweep", str(there), "--no-progress", "--scheduler", cl.scheduler_address]) == 0
    a, b = ((tmp_path / s / "table.csv").read_text() for s in ("here", "there"))
    assert a == b and len(a.splitlines()) == 3


EXAMPLES = sorted(p for p in (Path(__file__).parents[1] / "examples" / "sweeps").glob("*.toml")
                  if p.stem != "diagonal_phase")  # the showcase: 3600 runs, see the next test


def test_the_showcase_config_is_the_phase_figures_grid():
    """examples/sweeps/diagonal_phase.toml asks for exactly the points of `solvable figure diagonal_phase`, so a
    store computed from the config (on a cluster) is drawn by the figure without computing again."""
    from solvable.figures import diagonal_phase

    cfg = sweep.load_config(Path(__file__).parents[1] / "examples" / "sweeps" / "diagonal_phase.toml")
    assert cfg.task == "diagonal.gd_phase" and cfg.points() == diagonal_phase.points()
    assert len(cfg.points()) * len(cfg.fixed["alphas"]) == 3600


@pytest.mark.slow  # 3-16 s each: the default run keeps under 10 minutes
@pytest.mark.parametrize("config", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_sweep_configs_run_and_show_what_they_say(config, tmp_path):
    """Every config under examples/sweeps/ runs through the CLI as shipped (one worker) and its table shows what
    the file's comment says it shows."""
    import pandas as pd

    local = tmp_path / config.name
    local.write_text(config.read_text())
    out = tmp_path / "table.csv"
    assert main(["sweep", str(local), "--no-progress", "--n-jobs", "1", "--out", str(out)]) == 0
    t = pd.read_csv(out)
    assert (t["sweep_status"] == "ok").all() and len(t) == len(sweep.load_config(local).points())
    if config.stem == "diagonal_alpha":  # small alpha: nearer the sparse teacher, smaller l1 norm, for every seed
        for _, runs in t.groupby("seed"):
            runs = runs.sort_values("alpha")
            assert runs["distance"].iloc[0] < runs["distance"].iloc[-1] and runs["l1"].iloc[0] < runs["l1"].iloc[-1]
    elif config.stem == "matrix_sensing_overparam":  # k = r: the exact rate; k > r: far slower, rank r learned
        exact, over = t[t["k"] == 2], t[t["k"] == 4]
        np.testing.assert_allclose(exact["rate"], -np.log(1 - 4 * 0.5 * 0.1 * 1.0), rtol=1e-3)
        assert (over["rate"] < 1e-2 * exact["rate"].min()).all()
        assert (over[over["alpha"] <= 0.01]["learned_rank"] == 2).all()
    elif config.stem == "lsa_prompt_length":  # the lowest risk at test length M: the training length closest to M
        for M, runs in t.groupby("M"):
            assert runs.loc[runs["test_loss"].idxmin(), "N"] == min(runs["N"], key=lambda N: abs(np.log(N / M)))
    else:
        raise AssertionError(f"{config.name}: say in this test what its table must show")
