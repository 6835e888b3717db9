"""A claim's size, measured: its verdicts over many seeds (``solvable check --seeds 1-20``).

A claim is a statistical test of its statement. Its *size* is how often it fails when the statement holds;
over ordinary seeds it should never fail: every seed draws another problem, start, sample or batch schedule,
all of which the statement covers. This module runs claims over a list of seeds, keeps every verdict with its
margin and resolution, and summarises them per claim (passes, the seeds that failed, the smallest margin, the
coarsest resolution), as a table for the terminal and Markdown rows for the README.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from solvable.sims.engine._validate import shown

from .registry import Claim, clear_measurements, jsonable
from .runner import Result, run_claim

__all__ = ["SeedRecord", "ClaimSeeds", "parse_seeds", "run_seeds", "summarise", "format_seeds", "markdown_rows",
           "write_seeds", "load_seeds"]


def parse_seeds(text: str) -> list[int]:
    """``"1-20"``, ``"3"``, ``"1,4,9"`` or ``"1-5,11"`` as a sorted list of distinct non-negative seeds."""
    seeds: set[int] = set()
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None:
            raise ValueError(f"--seeds takes seeds and ranges such as 1-20 or 1,4,9 (non-negative integers); "
                             f"got {shown(text)}")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise ValueError(f"--seeds: a range runs upwards (lo-hi with lo <= hi); got {shown(part.strip())}")
        seeds.update(range(lo, hi + 1))
    return sorted(seeds)


@dataclass(frozen=True)
class SeedRecord:
    """One claim at one seed: the verdict, and the numbers that say how close it came to failing."""

    claim: str
    seed: int
    verdict: str
    margin: float | None
    resolution: float | None
    seconds: float
    message: str = ""

    @classmethod
    def of(cls, result: Result, seed: int) -> "SeedRecord":
        ev = result.evidence
        return cls(claim=result.claim.id, seed=seed, verdict=result.verdict,
                   margin=None if ev is None else ev.margin, resolution=None if ev is None else ev.resolution,
                   seconds=result.seconds, message=result.message or ("; ".join(ev.failed_conditions) if ev else ""))


@dataclass(frozen=True)
class ClaimSeeds:
    """A claim's verdicts over seeds, summarised."""

    claim: str
    runs: int
    passed: int
    unsupported: int
    failed_seeds: tuple[int, ...]
    min_margin: float | None
    worst_resolution: float | None
    seconds: float

    @property
    def ok(self) -> bool:
        return not self.failed_seeds


def run_seeds(claims: Sequence[Claim], seeds: Iterable[int], *, quick: bool, backend: str = "numpy",
              dtype: str = "float64", device: str | None = None,
              progress: Callable[[SeedRecord], None] | None = None) -> list[SeedRecord]:
    """Every claim at every seed (seed by seed, so that claims sharing a measurement run it once per seed; the
    measurements are forgotten between seeds)."""
    records = []
    for seed in seeds:
        for c in claims:
            rec = SeedRecord.of(run_claim(c, backend, quick, seed, dtype, device), seed)
            records.append(rec)
            if progress is not None:
                progress(rec)
        clear_measurements()
    return records


def summarise(records: Iterable[SeedRecord]) -> list[ClaimSeeds]:
    """One :class:`ClaimSeeds` per claim, in the order the records first name them."""
    by: dict[str, list[SeedRecord]] = {}
    for r in records:
        by.setdefault(r.claim, []).append(r)
    out = []
    for cid, recs in by.items():
        margins = [r.margin for r in recs if r.margin is not None and r.verdict == "passed"]
        res = [r.resolution for r in recs if r.resolution is not None]
        out.append(ClaimSeeds(
            claim=cid, runs=len(recs), passed=sum(r.verdict == "passed" for r in recs),
            unsupported=sum(r.verdict == "unsupported" for r in recs),
            failed_seeds=tuple(r.seed for r in recs if r.verdict in ("failed", "error")),
            min_margin=min(margins) if margins else None, worst_resolution=max(res) if res else None,
            seconds=sum(r.seconds for r in recs)))
    return out


def _pct(x: float | None) -> str:
    if x is None:
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{100 * x:.2g}%" if abs(x) < 0.01 else f"{100 * x:.0f}%"


def format_seeds(summary: Sequence[ClaimSeeds]) -> str:
    """A fixed-width table: claim, passes, failing seeds, smallest margin, coarsest resolution, seconds."""
    head = ("claim", "passed", "failed at seeds", "min margin", "resolution", "seconds")
    rows = [(s.claim, f"{s.passed}/{s.runs}" + (f" ({s.unsupported} unsupported)" if s.unsupported else ""),
             ", ".join(map(str, s.failed_seeds)) or "-", _pct(s.min_margin), _pct(s.worst_resolution),
             f"{s.seconds:.0f}") for s in summary]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    bad = [s.claim for s in summary if not s.ok]
    lines.append(f"{sum(s.ok for s in summary)} of {len(summary)} claims passed at every seed"
                 + (f"; failing: {', '.join(bad)}" if bad else ""))
    return "\n".join(lines)


def markdown_rows(quick: Sequence[ClaimSeeds], full: Sequence[ClaimSeeds]) -> str:
    """The README's table: per claim, quick and full passes, smallest margins and resolutions."""
    fq = {s.claim: s for s in quick}
    ff = {s.claim: s for s in full}
    lines = ["| claim | quick: passed | quick: min margin | quick: resolution | full: passed | full: min margin "
             "| full: resolution |", "|---|---|---|---|---|---|---|"]
    for cid in list(fq) + [c for c in ff if c not in fq]:
        q, f = fq.get(cid), ff.get(cid)

        def cells(s: ClaimSeeds | None) -> list[str]:
            if s is None:
                return ["-", "-", "-"]
            return [f"{s.passed}/{s.runs}" + (f" (failed: {', '.join(map(str, s.failed_seeds))})"
                                               if s.failed_seeds else ""), _pct(s.min_margin),
                    _pct(s.worst_resolution)]
        lines.append("| `" + cid + "` | " + " | ".join(cells(q) + cells(f)) + " |")
    return "\n".join(lines)


def write_seeds(records: Sequence[SeedRecord], path: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """The records and their summary as JSON."""
    path = Path(path)
    doc = {"meta": meta, "records": [r.__dict__ for r in records],
           "summary": [{**s.__dict__, "failed_seeds": list(s.failed_seeds)} for s in summarise(records)]}
    path.write_text(json.dumps(jsonable(doc), indent=2, sort_keys=True) + "\n")
    return path


def load_seeds(path: str | os.PathLike) -> list[SeedRecord]:
    """The records of a file :func:`write_seeds` wrote."""
    doc = json.loads(Path(path).read_text())
    # jsonable writes non-finite numbers as strings
    return [SeedRecord(**{k: (float(v) if k in ("margin", "resolution") and isinstance(v, str) else v)
                          for k, v in r.items()}) for r in doc["records"]]
