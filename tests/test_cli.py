"""The `solvable` command line: verify's table, JSON and report; exit codes; bad arguments."""

import json
import subprocess
import sys

import pytest

from solvable.proofs_checks.framework import registry
from solvable.proofs_checks.framework.cli import main
from solvable.proofs_checks.framework.registry import Claim, Evidence

REQUIRED = {"id", "model", "source", "statement", "passed", "error", "tolerance", "predicted", "observed",
            "seconds", "backend"}


def test_verify_writes_json_and_report(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["verify", "--quick", "--no-progress", "--claim", "diagonal.potential_symbolic",
                 "--claim", "diagonal.implicit_bias", "--json", str(out), "--report", str(tmp_path / "rep")])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["meta"]["seed"] == 0 and doc["meta"]["versions"]["numpy"]
    assert len(doc["claims"]) == 2
    for rec in doc["claims"]:
        assert REQUIRED <= rec.keys()
        assert rec["passed"] is True
    for name in ("index.html", "summary.md", "results.json", "figures/diagonal.implicit_bias.png"):
        assert (tmp_path / "rep" / name).exists(), name
    table = capsys.readouterr().out
    assert "diagonal.implicit_bias" in table and "2 passed, 0 failed" in table


def _fake(monkeypatch, check, backends="any"):
    c = Claim(id="diagonal.fake", model="diagonal", source="Test 2026", statement="fake", kind="simulation",
              check=check, backends=backends)
    monkeypatch.setitem(registry._REGISTRY, c.id, c)


def test_failing_claim_exits_nonzero(monkeypatch, tmp_path, capsys):
    _fake(monkeypatch, lambda ctx: Evidence(predicted=1, observed=2, error=1.0, tolerance=0.1,
                                                error_measure="m", tolerance_reason="r"))
    assert main(["verify", "--claim", "diagonal.fake", "--no-progress", "--no-report"]) == 1
    assert "FAILED" in capsys.readouterr().out


def test_raising_check_is_an_error_not_a_crash(monkeypatch, capsys):
    def boom(ctx):
        raise RuntimeError("solver exploded")

    _fake(monkeypatch, boom)
    assert main(["verify", "--claim", "diagonal.fake", "--no-progress", "--no-report"]) == 1
    assert "solver exploded" in capsys.readouterr().out


def test_cpu_only_claim_is_unsupported_on_strict(monkeypatch, capsys):
    _fake(monkeypatch, lambda ctx: 1 / 0, backends="numpy")
    assert main(["verify", "--claim", "diagonal.fake", "--backend", "array_api_strict", "--no-progress",
                 "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "unsupported" in out and "needs numpy" in out


def test_seed_reaches_the_checks(monkeypatch):
    seen = []
    _fake(monkeypatch, lambda ctx: seen.append(ctx.seed) or Evidence(predicted=0, observed=0, error=0, tolerance=0,
                                                                  error_measure="m", tolerance_reason="r"))
    main(["verify", "--claim", "diagonal.fake", "--seed", "17", "--no-progress", "--no-report"])
    assert seen == [17]


@pytest.mark.parametrize("argv", [["verify", "--seed", "-3"], ["verify", "--backend", "jax"],
                                  ["verify", "--model", "resnet"], ["nonsense"]])
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "solvable" in capsys.readouterr().err


def test_unknown_claim_is_a_clear_message(capsys):
    assert main(["verify", "--claim", "diagonal.nope", "--no-report"]) == 2
    assert "unknown claim" in capsys.readouterr().err


def test_list_and_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "solvable", "list"], capture_output=True, text=True, check=True)
    for c in registry.all_claims():
        assert c.id in out.stdout


def test_figure_list_and_make(tmp_path, capsys):
    assert main(["figure", "--list"]) == 0
    assert "diagonal_alpha" in capsys.readouterr().out
    # a figure of a second of work (tests/test_figures.py draws every one, diagonal_alpha's in 20 s)
    assert main(["figure", "deep_linear_saxe", "--quick", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "deep_linear_saxe.png").stat().st_size > 10_000
    assert main(["figure", "nope", "--out", str(tmp_path)]) == 2


def test_figure_on_a_backend_and_device(tmp_path, capsys, monkeypatch):
    from solvable import figures

    assert main(["figure", "deep_linear_saxe", "--quick", "--backend", "array_api_strict", "--device", "device1",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "deep_linear_saxe.png").is_file()
    assert main(["figure", "diagonal_saddle", "--backend", "array_api_strict", "--out", str(tmp_path)]) == 2
    assert "'diagonal_saddle' computes on the host" in capsys.readouterr().err
    assert main(["figure", "deep_linear_saxe", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "device must name a device of backend 'numpy'" in capsys.readouterr().err
    # --all on a backend: the driver figures get it, the host-only ones run on the host and say so
    calls = {}
    monkeypatch.setattr(figures, "make", lambda name, out, quick=False, **kw: calls.update({name: kw}) or [name])
    assert main(["figure", "--all", "--backend", "array_api_strict", "--out", str(tmp_path), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[0] for line in lines if "computed on the host" in line) == sorted(
        set(figures.names()) - set(figures.on_backends()))
    on = set(figures.on_backends())
    assert set(calls) == set(figures.names()) and on and len(on) < len(calls)
    assert all(calls[n] == ({"backend": "array_api_strict", "device": None} if n in on else {}) for n in calls)


def test_uninstalled_backend_is_one_error_before_any_claim(capsys):
    import importlib.util

    missing = [b for b in ("cupy", "torch") if importlib.util.find_spec(b) is None]
    if not missing:
        pytest.skip("every optional backend is installed here")
    assert main(["verify", "--backend", missing[0], "--no-progress", "--no-report"]) == 2
    out, err = capsys.readouterr()
    assert out == "", "no claim ran, no table printed"
    assert err.count("is not installed") == 1 and "pip install 'solvable[" in err


def test_messages_show_numbers_not_numpy_reprs():
    import numpy as np

    from solvable.sims import diagonal
    from solvable.theory import ufm

    for call in (lambda: ufm.mse_geometry((3, 2), np.float64(-0.1), 0.1),
                 lambda: diagonal.simulate(diagonal.Problem.random(4, 6, 2), 0.1, "gd", lr=0.1,
                                           steps=np.int64(5), rho=np.float64(0.1)),
                 lambda: diagonal.simulate(diagonal.Problem.random(4, 6, 2), 0.1, "gd", lr=np.float64(-0.1))):
        with pytest.raises((ValueError, TypeError)) as err:
            call()
        assert "np." not in str(err.value), str(err.value)


def test_info_lists_backends_devices_and_blas(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "devices: cpu" in out and "device1" in out
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["backends"]["numpy"]["installed"] and info["backends"]["numpy"]["devices"] == ["cpu"]
    assert set(info["backends"]) == {"numpy", "cupy", "torch", "array_api_strict"}
    assert info["backends"]["torch"]["compiler"].startswith("torch.compile")
    assert info["backends"]["numpy"]["compiler"] is None
    # numpy is imported by then, so its BLAS pool is loaded and threadpoolctl sees it
    assert any(p["user_api"] == "blas" and p["num_threads"] >= 1 for p in info["thread_pools"])


def test_verify_device_reaches_the_checks_and_a_bad_one_is_refused(monkeypatch, capsys):
    seen = []
    _fake(monkeypatch, lambda ctx: seen.append(ctx.device) or Evidence(predicted=0, observed=0, error=0, tolerance=0,
                                                                    error_measure="m", tolerance_reason="r"))
    main(["verify", "--claim", "diagonal.fake", "--backend", "array_api_strict", "--device", "device2",
          "--no-report", "--no-progress"])
    assert seen == ["device2"]
    assert main(["verify", "--claim", "diagonal.fake", "--device", "cuda", "--no-report"]) == 2
    assert 'device must name a device of backend \'numpy\': "cpu"' in capsys.readouterr().err
    assert seen == ["device2"]  # refused before any claim ran


def test_a_figure_that_fails_is_reported_after_the_whole_report_is_written(monkeypatch, tmp_path, capsys):
    """One claim's figure raising (as diagonal.sgd_stability_boundary's tick labels did) neither loses the run
    nor passes unseen: the report is written with the others' figures, the failure said there, exit 1."""
    import dataclasses

    def broken(fig, ev):
        raise KeyError("quadratic,")

    _fake(monkeypatch, lambda ctx: Evidence(predicted=1, observed=1, error=0, tolerance=1, error_measure="m",
                                            tolerance_reason="r"))
    monkeypatch.setitem(registry._REGISTRY, "diagonal.fake",
                        dataclasses.replace(registry._REGISTRY["diagonal.fake"], figure=broken))
    rep = tmp_path / "rep"
    rep.mkdir()
    (rep / "index.html").write_text("an earlier run's page")
    (rep / "figures").mkdir()
    (rep / "figures" / "diagonal.gone.png").write_bytes(b"old")
    code = main(["verify", "--claim", "diagonal.fake", "--claim", "diagonal.potential_symbolic", "--no-progress",
                 "--report", str(rep)])
    assert code == 1
    assert "could not be drawn" in capsys.readouterr().err
    page = (rep / "index.html").read_text()
    assert "an earlier run" not in page and "Figure failed" in page and "KeyError" in page
    assert (rep / "figures" / "diagonal.potential_symbolic.png").is_file()
    assert not (rep / "figures" / "diagonal.gone.png").exists(), "the last run's figures are removed"


@pytest.mark.parametrize("argv, match", [
    (["verify", "--report", "{file}"], "--report must name a directory"),
    (["verify", "--json", "{tmp}/no/such/dir/x.json"], "does not exist"),
    (["check", "diagonal.implicit_bias", "--time-budget", "-5"], "--time-budget must be > 0"),
    (["check", "diagonal.implicit_bias", "--shrink-budget", "-10"], "--shrink-budget must be >= 0"),
    (["check", "diagonal.implicit_bias", "--examples", "0"], "--examples must be >= 1"),
    (["check", "diagonal.implicit_bias", "--report", "{file}"], "--report must name a directory"),
])
def test_bad_paths_and_budgets_are_refused_before_anything_runs(argv, match, tmp_path, capsys, monkeypatch):
    ran = []
    monkeypatch.setattr("solvable.proofs_checks.framework.cli.run_claims", lambda *a, **k: ran.append(1) or [])
    file = tmp_path / "a-file"
    file.write_text("")
    argv = [a.format(file=file, tmp=tmp_path) for a in argv]
    try:
        code = main(argv + ["--no-progress"])
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    assert code == 2 and not ran
    assert match in capsys.readouterr().err
    assert not (tmp_path / "no").exists(), "a missing directory is not made silently"


def test_sweep_refuses_n_jobs_beyond_the_cores(tmp_path, capsys):
    import os

    cfg = tmp_path / "s.toml"
    cfg.write_text('task = "diagonal.limit"\nstore = "store"\n[fixed]\nn = 4\nd = 6\nsparsity = 2\n[grid]\nalpha = [0.1]\n')
    assert main(["sweep", str(cfg), "--n-jobs", str(-(os.cpu_count() or 1) - 5), "--no-progress"]) == 2
    assert "n_jobs must be an integer in 1 .. N" in capsys.readouterr().err
    assert not (tmp_path / "store").exists()


def test_a_dtype_too_coarse_for_a_simulation_is_unsupported_not_an_error():
    """lsa.test_error's population flow asks rtol 1e-10, below what float32 resolves: "unsupported" (README)."""
    from solvable.proofs_checks.framework.runner import run_claim

    result = run_claim(registry.get("lsa.test_error"), quick=True, dtype="float32")
    assert result.verdict == "unsupported" and "float32" in result.message


def test_every_formula_renders_without_literal_latex():
    """latex2mathml passes unknown commands through as text (\\arg showed in 13 formulas)."""
    import re

    from solvable.proofs_checks.framework.report import mathml

    for c in registry.all_claims():
        if c.formula:
            text = re.sub(r"<[^>]+>", " ", mathml(c.formula))
            assert "\\" not in text, (c.id, text)


def test_a_claim_short_of_its_promised_resolution_fails_verify(monkeypatch, capsys):
    from solvable.proofs_checks.framework import power

    # a 5 % budget: changes below about 5 % of the prediction pass, against the 2 % a full-size claim promises
    _fake(monkeypatch, lambda ctx: Evidence(predicted=1, observed=1, error=0.1, tolerance=1, error_measure="m",
                                            tolerance_reason="r", score=power.relative(1.005, 1.0, 0.05)))
    assert main(["verify", "--claim", "diagonal.fake", "--no-progress", "--no-report"]) == 1
    captured = capsys.readouterr()
    assert "resolve less than they promise" in captured.err and "SHORT" in captured.out


def test_check_seeds_counts_passes_per_claim(tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["check", "--seeds", "1-2,5", "diagonal.potential_symbolic", "--json", str(out), "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "3/3" in table and "1 of 1 claims passed at every seed" in table
    doc = json.loads(out.read_text())
    assert [r["seed"] for r in doc["records"]] == [1, 2, 5] and doc["summary"][0]["passed"] == 3
    assert main(["check", "--table", str(out), str(out)]) == 0
    assert "| `diagonal.potential_symbolic` | 3/3 |" in capsys.readouterr().out


@pytest.mark.parametrize("seeds", ["5-1", "x", "1-", "-3"])
def test_check_seeds_refuses_bad_ranges(seeds, capsys):
    assert main(["check", "--seeds", seeds, "diagonal.potential_symbolic"]) == 2
    assert "--seeds" in capsys.readouterr().err


def test_a_failing_seed_is_named(monkeypatch, capsys):
    _fake(monkeypatch, lambda ctx: Evidence(predicted=1, observed=1, error=float(ctx.seed == 3), tolerance=0.5,
                                            error_measure="m", tolerance_reason="r"))
    assert main(["check", "--seeds", "1-4", "diagonal.fake", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "3/4" in out and "failing: diagonal.fake" in out
