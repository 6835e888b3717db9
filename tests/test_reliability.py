"""Reproducibility and provenance of `solvable verify`."""

import json
import subprocess
import sys

import pytest

from solvable.proofs_checks.framework import registry
from solvable.proofs_checks.framework.runner import run_claim

from rotation import ROTATION, share

SUBSET = ["diagonal.implicit_bias", "diagonal.potential_symbolic"]


def _verify(tmp_path, name, *extra):
    out = tmp_path / name
    out.parent.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "solvable", "verify", "--quick", "--no-progress", "--no-report",
           "--no-timing", "--json", name, *extra]
    for c in SUBSET:
        cmd += ["--claim", c]
    subprocess.run(cmd, check=True, capture_output=True, cwd=out.parent)
    return out.read_bytes()


# Each of these two runs `solvable verify` four times in fresh interpreters (~18 s): the default run stays
# under its 10-minute budget on 2 cores with them in CI's bounded slow step.
@pytest.mark.slow
def test_same_command_twice_gives_bit_identical_json(tmp_path):
    first = _verify(tmp_path / "one", "r.json")
    second = _verify(tmp_path / "two", "r.json")
    assert first == second
    # and in worker processes (verify -j): the same records, to the bit (the command line in meta differs)
    parallel = json.loads(_verify(tmp_path / "par", "r.json", "-j", "2"))
    assert parallel["claims"] == json.loads(first)["claims"]
    doc = json.loads(first)
    meta = doc["meta"]
    assert meta["backend"] == "numpy" and meta["dtype"] == "float64" and meta["seed"] == 0
    assert {"numpy", "scipy", "cvxpy", "sympy", "python"} <= set(meta["versions"])


@pytest.mark.slow
def test_the_seed_changes_the_draws_and_the_claims_still_pass(tmp_path):
    a = json.loads(_verify(tmp_path, "s.json", "--seed", "3"))
    b = json.loads(_verify(tmp_path, "s.json", "--seed", "0"))
    ia = next(c for c in a["claims"] if c["id"] == "diagonal.implicit_bias")
    ib = next(c for c in b["claims"] if c["id"] == "diagonal.implicit_bias")
    assert ia["passed"] and ib["passed"]
    assert ia["predicted"] != ib["predicted"], "another seed is another problem"


#: The seed matrix of the README's table is quick seeds 1-20 and full seeds 1-5 (`solvable check --seeds`); each slow
#: run takes one quick seed for a tenth of the claims and one full seed for two of them, rotating with the commit
#: (CI's whole run stays inside its 50 minutes: the slow step follows the default suite and `make verify`).
QUICK_SEED = 1 + ROTATION % 20
FULL_SEED = 1 + ROTATION % 5
CLAIM_IDS = [c.id for c in registry.all_claims()]


#: Instances of the seed matrix where an empirical statement does not hold (README, Findings): the claim must fail
#: there, as it does, and keep failing (a claim that starts passing on them has lost the power that found them).
FINDINGS = {("matrix_sensing.depth_low_rank", 17): "depth 3 and 4 at effective rank 2.9 end 0.89 and 1.01 from M*, "
                                                   "the nuclear norm 0.57"}


@pytest.mark.slow  # as long as the quick claims themselves: the default run keeps under 10 minutes on 2 cores
@pytest.mark.parametrize("claim", share([c for c in CLAIM_IDS if registry.get(c).kind != "symbolic"], 10))
def test_a_tenth_of_the_claims_pass_at_this_runs_quick_seed(claim):
    result = run_claim(registry.get(claim), "numpy", quick=True, seed=QUICK_SEED)
    if (claim, QUICK_SEED) in FINDINGS:
        assert result.verdict == "failed", (QUICK_SEED, FINDINGS[claim, QUICK_SEED], result.evidence)
        return
    assert result.verdict == "passed", (QUICK_SEED, result.message, result.evidence)


@pytest.mark.slow
@pytest.mark.parametrize("claim", share(CLAIM_IDS, 33))
def test_two_of_the_claims_pass_at_this_runs_full_seed(claim):
    result = run_claim(registry.get(claim), "numpy", quick=False, seed=FULL_SEED)
    assert result.verdict == "passed", (FULL_SEED, result.message, result.evidence)
    assert result.keeps_power, (result.evidence.resolution, result.resolution_target, result.evidence.alternatives)
