"""Every registered claim passes in quick mode; the registry refuses malformed claims."""

import json
import math
import re

import pytest

from solvable.proofs_checks.framework import registry
from solvable.proofs_checks.framework.parallel import measurements_of
from solvable.proofs_checks.framework.registry import Evidence
from solvable.proofs_checks.framework.report import draw_claim
from solvable.proofs_checks.framework.runner import run_claim

from rotation import share

CLAIMS = registry.all_claims()


NUMPY_REPR = re.compile(r"np\.(float|int|bool|str)\w*\(|array\(")


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claim_passes_quick(claim, tmp_path):
    """Each claim in quick mode: it passes, its texts read as numbers, its figure draws from its evidence (the
    report draws every one: a figure that cannot be drawn ended `make verify`), and its JSON record is plain."""
    with registry.measurements_read() as reads:
        result = run_claim(claim, "numpy", quick=True)
    assert result.verdict == "passed", (result.message, result.evidence)
    # verify -j keeps the claims that share a measurement in one worker: the code reading finds every one read
    assert reads <= measurements_of(claim), reads - measurements_of(claim)
    ev = result.evidence
    assert ev.tolerance_reason and ev.error_measure
    assert math.isfinite(ev.error) and ev.error <= ev.tolerance
    texts = [ev.quantity, ev.error_measure, ev.tolerance_reason, ev.note, *ev.conditions, str(ev.predicted),
             str(ev.observed)]
    assert not any(NUMPY_REPR.search(t) for t in texts), [t for t in texts if NUMPY_REPR.search(t)]
    png = draw_claim(result, tmp_path / "claim.png", quick=True)
    assert png.stat().st_size > 5_000
    json.dumps(result.to_json(), allow_nan=False)
    # power: a numeric claim resolves what it promises; a structural one rejects every named alternative
    target = claim.resolution_target(quick=True)
    if target is not None:
        assert ev.resolution is not None and ev.resolution <= target, (ev.resolution, target)
    else:
        assert claim.resolves_reason
    assert not [a for a in ev.alternatives if a not in ev.rejected_alternatives], ev.alternatives
    # size: every claim that is not a proof declares its false-alarm rate, at most stats.SIZE
    if claim.kind != "symbolic":
        assert ev.false_alarm is not None and ev.false_alarm <= 1e-4 + 1e-12, ev.false_alarm


# a fortieth of the claims each slow run, rotating with the commit (the contract suite checks every family's
# simulations on array-api-strict in the default run). array-api-strict wraps every operation in Python: a quick
# claim there took up to 326 s (ufm.deep_linear_balanced; diagonal.reduced_equals_full 291 s, measured on 2 cores),
# so a twentieth could cost CI's slow step ten minutes by itself
@pytest.mark.slow
@pytest.mark.parametrize("claim", share(CLAIMS, 40), ids=[c.id for c in share(CLAIMS, 40)])
def test_claim_passes_quick_on_array_api_strict(claim):
    result = run_claim(claim, "array_api_strict", quick=True)
    assert result.verdict in ("passed", "unsupported"), (result.message, result.evidence)
    if claim.backends == "any":
        assert result.verdict == "passed"


@pytest.mark.gpu
@pytest.mark.parametrize("backend, device", [("cupy", None), ("torch", "cuda")], ids=["cupy", "torch-cuda"])
@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claim_passes_quick_on_gpu(claim, backend, device):
    """Every claim in quick mode on a GPU (``pytest -m gpu``; skipped without one)."""
    from gpu import require

    require(backend)
    result = run_claim(claim, backend, quick=True, device=device)
    assert result.verdict in ("passed", "unsupported"), (result.message, result.evidence)
    if claim.backends == "any":
        assert result.verdict == "passed", (result.message, result.evidence)


def test_every_claim_cites_a_source():
    for c in CLAIMS:
        assert any(ch.isdigit() for ch in c.source), f"{c.id}: the source should name a year/theorem"
        assert c.model in registry.MODELS


def test_evidence_verdicts():
    ok = Evidence(predicted=1, observed=1, error=0.1, tolerance=0.2, error_measure="m", tolerance_reason="r")
    assert ok.passed
    nan = Evidence(predicted=1, observed=1, error=float("nan"), tolerance=1, error_measure="m", tolerance_reason="r")
    assert not nan.passed
    with pytest.raises(ValueError, match="reason"):
        Evidence(predicted=1, observed=1, error=0, tolerance=1, error_measure="m", tolerance_reason=" ")


@pytest.mark.parametrize("kwargs, match", [
    (dict(id="NoDot", source="s 1", statement="s", kind="simulation"), "claim id"),
    (dict(id="m.x", source="s 1", statement="s", kind="guess"), "kind must be"),
    (dict(id="m.x", source="s 1", statement="s", kind="symbolic", backends="gpu"), "backends must be"),
    (dict(id="m.x", source=" ", statement="s", kind="symbolic"), "source and a statement"),
])
def test_registry_refuses_malformed_claims(kwargs, match):
    with pytest.raises(ValueError, match=match):
        registry.claim(**kwargs)


def test_unknown_claim_and_model():
    with pytest.raises(ValueError, match="unknown claim"):
        registry.get("diagonal.nope")
    with pytest.raises(ValueError, match="model must be one of"):
        registry.all_claims("resnet")
