"""Running claims: one :class:`Result` per claim, timed, with errors caught and reported."""

from __future__ import annotations

import dataclasses
import math
import time
import traceback
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from solvable.sims.engine._validate import DtypeTooCoarse, shown
from solvable.sims.engine.backend import BACKENDS, DTYPES, check_seed

from .parallel import check_jobs, claim_groups, run_groups, where
from .registry import Claim, Context, Evidence, OutOfReach, PrecisionError, jsonable

__all__ = ["Result", "run_claim", "run_claims", "VERDICTS"]

#: ``passed`` and ``failed`` come from the evidence; ``error`` means the check
#: raised; ``unsupported`` means the claim cannot run as asked: a backend it
#: cannot use, a missing optional library, or a dtype too coarse for its tolerance.
VERDICTS = ("passed", "failed", "error", "unsupported")


@dataclass(frozen=True)
class Result:
    """The outcome of one claim on one backend."""

    claim: Claim
    verdict: str
    backend: str
    seconds: float
    evidence: Evidence | None = None
    message: str = ""
    quick: bool = False
    host: str = ""
    retried: bool = False

    @property
    def resolution_target(self) -> float | None:
        """The resolution the claim promises at this run's size (quick or full), from its evidence's mode."""
        return self.claim.resolution_target(self.quick)

    @property
    def meets_resolution(self) -> bool | None:
        """Whether the evidence resolves what the claim promises (None: no numeric target, or no evidence)."""
        target = self.resolution_target
        if target is None or self.evidence is None or self.evidence.resolution is None:
            return None
        return self.evidence.resolution <= target

    @property
    def keeps_power(self) -> bool:
        """Whether the claim keeps its power promise: it does not resolve less than it promises at this size, and it
        rejects every alternative it names (True where there is no evidence to judge)."""
        ev = self.evidence
        return self.meets_resolution is not False and (
            ev is None or len(ev.rejected_alternatives) == len(ev.alternatives))

    @property
    def ok(self) -> bool:
        """Not a failure: passed, or unsupported on this backend."""
        return self.verdict in ("passed", "unsupported")

    def to_json(self, timing: bool = True) -> dict[str, Any]:
        ev = self.evidence
        out: dict[str, Any] = {
            "id": self.claim.id,
            "model": self.claim.model,
            "kind": self.claim.kind,
            "source": self.claim.source,
            "statement": self.claim.statement,
            "verdict": self.verdict,
            "passed": self.verdict == "passed",
            "backend": self.backend,
            "error": ev.error if ev else None,
            "tolerance": ev.tolerance if ev else None,
            "error_measure": ev.error_measure if ev else None,
            "tolerance_reason": ev.tolerance_reason if ev else None,
            "conditions": dict(ev.conditions) if ev else {},
            "predicted": ev.predicted if ev else None,
            "observed": ev.observed if ev else None,
            "details": ev.details if ev else {},
            "note": ev.note if ev else "",
            "message": self.message,
            "margin": ev.margin if ev else None,
            "resolution": ev.resolution if ev else None,
            "resolution_target": self.resolution_target,
            "resolves_reason": self.claim.resolves_reason,
            "alternatives": {name: {"error": err, "rejected": name in ev.rejected_alternatives}
                             for name, err in ev.alternatives.items()} if ev else {},
            "false_alarm": ev.false_alarm if ev else None,
            "retried": self.retried,
        }
        if timing:  # where and how long: the parts of a result that a rerun does not reproduce
            out["seconds"] = round(self.seconds, 3)
            out["host"] = self.host
        return jsonable(out)


def run_claim(claim: Claim, backend: str = "numpy", quick: bool = False, seed: int = 0,
              dtype: str = "float64", device: str | None = None, point: dict[str, Any] | None = None) -> Result:
    """Run one claim's check and classify the outcome (never raises for a failing check)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}; got {shown(backend)}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}; got {shown(dtype)}")
    seed = check_seed(seed)
    where = "n/a" if claim.backends == "none" else backend
    if not claim.supports(backend):
        return Result(claim, "unsupported", backend, 0.0, quick=quick,
                      message=f"needs numpy: its loop holds CPU-only code ({claim.kind}); rerun with --backend numpy")
    start = time.perf_counter()
    try:
        evidence = claim.run(Context(backend=backend, quick=quick, seed=seed, dtype=dtype, device=device,
                                     point=tuple(sorted((point or {}).items()))))
    except (ImportError, PrecisionError, DtypeTooCoarse, OutOfReach) as exc:
        return Result(claim, "unsupported", where, time.perf_counter() - start, message=str(exc), quick=quick)
    except Exception as exc:  # a failing check is a result, not a crash
        tb = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return Result(claim, "error", where, time.perf_counter() - start, message=tb, quick=quick)
    seconds = time.perf_counter() - start
    if not isinstance(evidence, Evidence):
        return Result(claim, "error", where, seconds, message=f"check returned {type(evidence).__name__}, not Evidence",
                      quick=quick)
    return Result(claim, "passed" if evidence.passed else "failed", where, seconds, evidence, quick=quick)


def run_claims(
    claims: Iterable[Claim], backend: str = "numpy", quick: bool = False, seed: int = 0, progress: bool = True,
    dtype: str = "float64", device: str | None = None, point: dict[str, Any] | None = None, jobs: int = 1,
    scheduler: Any = None, expected: Mapping[str, float] | None = None,
) -> list[Result]:
    """Run claims, with a tqdm progress bar on stderr; the results in the order of ``claims``.

    ``jobs > 1`` runs them in that many worker processes, ``scheduler`` (a dask.distributed address or Client) on a
    cluster; claims that share a measurement run together (:mod:`proofs_checks.framework.parallel`). ``expected``: seconds
    per claim id from an earlier run, to start the longest groups first (it changes the order of work, never a
    result).
    """
    from tqdm import tqdm

    claims = list(claims)
    check_jobs(jobs)
    host = where()
    if jobs == 1 and scheduler is None:
        results = []
        with tqdm(claims, desc="verifying", unit="claim", disable=not progress, leave=False) as bar:
            for c in bar:
                bar.set_postfix_str(c.id)
                r = run_claim(c, backend, quick, seed, dtype, device, point)
                results.append(dataclasses.replace(r, host=host))
        return results
    # bad arguments are refused here, once, not in every worker
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}; got {shown(backend)}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}; got {shown(dtype)}")
    groups = claim_groups(claims)
    if expected:
        groups.sort(key=lambda g: -sum(expected.get(c.id, math.inf) for c in g))
    options = {"backend": backend, "quick": quick, "seed": check_seed(seed), "dtype": dtype, "device": device,
               "point": point}
    with tqdm(total=len(claims), desc="verifying", unit="claim", disable=not progress, leave=False) as bar:
        def done(ran: list) -> None:
            bar.set_postfix_str(ran[-1].claim_id)
            bar.update(len(ran))

        ran = run_groups(groups, run_claim, options, jobs=jobs, scheduler=scheduler, on_done=done)
    return [Result(c, ran[c.id].verdict, ran[c.id].backend, ran[c.id].seconds, ran[c.id].evidence,
                   ran[c.id].message, quick=quick, host=ran[c.id].host, retried=ran[c.id].retried) for c in claims]

