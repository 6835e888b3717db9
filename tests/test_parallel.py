"""Claims in parallel (verify -j N, --scheduler): the same results as the serial run, shared measurements kept
together, a dead worker retried once and then reported."""

import importlib
import json
import sys

import pytest

from solvable.proofs_checks.framework import registry
from solvable.proofs_checks.framework.parallel import check_jobs, claim_groups, measurements_of
from solvable.proofs_checks.framework.report import results_document
from solvable.proofs_checks.framework.runner import run_claims


@pytest.fixture
def testonly():
    """The test claims (registered on import), removed from the registry afterwards: their model is no family,
    and every other test in this process lists the registry."""
    if "dying_claims" in sys.modules:
        importlib.reload(sys.modules["dying_claims"])
    else:
        importlib.import_module("dying_claims")
    ids = [n for n in registry._REGISTRY if n.startswith("testonly.")]
    yield {i.split(".")[1]: registry._REGISTRY[i] for i in ids}
    for i in ids:
        registry._REGISTRY.pop(i, None)


def _document(results):
    return json.dumps(results_document(results, {}, timing=False), sort_keys=True)


def test_measurements_are_found_in_the_code_that_reads_them(testonly):
    assert measurements_of(testonly["first"]) == {"dying_claims.shared_draw"}
    assert measurements_of(testonly["alone"]) == set()
    groups = claim_groups([testonly["first"], testonly["alone"], testonly["second"]])
    assert [[c.id for c in g] for g in groups] == [["testonly.first", "testonly.second"], ["testonly.alone"]]
    # inside the package: the claims known to share a simulation
    assert measurements_of(registry.get("diagonal.implicit_bias")) == {"solvable.proofs_checks.diagonal.implicit_bias.alpha_sweep"}
    assert measurements_of(registry.get("lsa.global_minimiser")) == {
        "solvable.proofs_checks.lsa.common.population_flows", "solvable.proofs_checks.lsa.minimiser.sampled_reduced"}
    assert measurements_of(registry.get("diagonal.potential_symbolic")) == set()


def test_claims_that_share_a_measurement_form_one_group():
    claims = registry.all_claims()
    groups = {c.id: tuple(x.id for x in g) for g in claim_groups(claims) for c in g}
    assert groups["diagonal.implicit_bias"] == groups["diagonal.kernel_rate"]
    # transitively: stability_trace reads stability_runs, which reads the flow reference edge_of_stability reads
    assert groups["diagonal.stability_trace"] == groups["diagonal.edge_of_stability"]
    assert groups["lsa.test_error"] == groups["lsa.global_minimiser"]
    assert groups["diagonal.implicit_bias"] != groups["diagonal.saddle_to_saddle"]
    assert sorted(c for g in claim_groups(claims) for c in (x.id for x in g)) == sorted(c.id for c in claims)
    # the order of the claims is kept inside each group
    order = {c.id: i for i, c in enumerate(claims)}
    for g in claim_groups(claims):
        assert [order[c.id] for c in g] == sorted(order[c.id] for c in g)


def test_parallel_results_equal_the_serial_ones(testonly):
    claims = [testonly["first"], testonly["alone"], testonly["second"]]
    serial = run_claims(claims, quick=True, seed=3, progress=False)
    parallel = run_claims(claims, quick=True, seed=3, progress=False, jobs=2,
                          expected={"testonly.alone": 9.0, "testonly.first": 1.0})
    assert [r.claim.id for r in parallel] == [c.id for c in claims]
    assert all(r.verdict == "passed" for r in parallel), [(r.claim.id, r.message) for r in parallel]
    assert _document(parallel) == _document(serial)
    # each says where it ran: another process than this one
    assert all(r.host and r.host != serial[0].host for r in parallel)
    assert all(r.host == serial[0].host for r in serial)


def test_a_worker_that_dies_is_retried_once_then_reported(testonly, tmp_path, monkeypatch):
    monkeypatch.setenv("SOLVABLE_TEST_MARKER", str(tmp_path / "died"))
    results = run_claims([testonly["dies_once"], testonly["alone"], testonly["always_dies"]], progress=False, jobs=2)
    by = {r.claim.id: r for r in results}
    assert (tmp_path / "died").exists()
    assert by["testonly.dies_once"].verdict == "passed" and by["testonly.dies_once"].retried
    assert by["testonly.alone"].verdict == "passed"
    gone = by["testonly.always_dies"]
    assert gone.verdict == "error" and "died twice" in gone.message and "alone" in gone.message and gone.retried


def test_claims_run_on_a_dask_cluster(testonly):
    distributed = pytest.importorskip("distributed")
    claims = [testonly["first"], testonly["second"], testonly["alone"]]
    serial = run_claims(claims, seed=5, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        on_dask = run_claims(claims, seed=5, progress=False, scheduler=cl.scheduler_address)
    assert _document(on_dask) == _document(serial)
    assert all(r.host for r in on_dask)


@pytest.mark.parametrize("jobs, error", [(0, ValueError), (-2, ValueError), (1.5, TypeError), (True, TypeError)])
def test_jobs_must_be_a_positive_int(jobs, error):
    with pytest.raises(error, match="jobs"):
        check_jobs(jobs)


def test_verify_jobs_from_the_command_line(testonly, tmp_path, capsys):
    from solvable.proofs_checks.framework.cli import main

    ids = ["--claim", "testonly.first", "--claim", "testonly.alone", "--claim", "testonly.second"]
    assert main(["verify", "--quick", "--no-progress", "--no-timing", "--no-report", "--json",
                 str(tmp_path / "one.json"), *ids]) == 0
    assert main(["verify", "--quick", "--no-progress", "--no-timing", "--report", str(tmp_path / "rep"), "-j", "2",
                 "--json", str(tmp_path / "two.json"), *ids]) == 0
    out = capsys.readouterr().out
    assert "slowest: " in out and "s of claims in all" in out
    one, two = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    assert one["claims"] == two["claims"]
    assert "ran on " in (tmp_path / "rep" / "index.html").read_text()
    with pytest.raises(SystemExit) as exc:
        main(["verify", "-j", "0"])
    assert exc.value.code == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err
