"""Search a claim's whole hypothesis space for a counterexample, and shrink it (``solvable check``).

Hypothesis draws points of the claim's :class:`~proofs_checks.framework.space.Space`, the claim runs at each
(its prediction, its simulation, its own error budget at that point), and a point where the claim
fails is shrunk to the simplest one that still fails, printed as the ``solvable verify --set ...``
command that reproduces it. Every point's error against its tolerance is kept, so the search also
maps where the theory holds with room and where it gets close (:func:`write_search`). The examples
hypothesis found go to a database under the report directory, so an interrupted or repeated search
starts from them.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .registry import Claim, Context, Evidence, OutOfReach

__all__ = ["Probe", "SearchResult", "reproducer", "search", "write_search"]


@dataclass(frozen=True)
class Probe:
    """The claim at one point: ``ratio`` is error / tolerance (above 1, or ``passed`` false: a failure).

    ``reached`` false: the claim declared the point out of its reach (:class:`~proofs_checks.framework.registry.OutOfReach`,
    ``message`` says why); such a point is neither a pass nor a failure and has no ratio.
    """

    point: dict[str, Any]
    ratio: float
    passed: bool
    message: str = ""
    reached: bool = True


@dataclass
class SearchResult:
    """What a search explored and what it found."""

    claim: str
    probes: list[Probe] = field(default_factory=list)
    counterexample: Probe | None = None
    stopped: str = "examples"  # or "time budget"
    seconds: float = 0.0

    @property
    def worst(self) -> Probe | None:
        """The explored point with the largest error ratio (a failing one first)."""
        tested = [p for p in self.probes if p.reached]
        if not tested:
            return None
        return max(tested, key=lambda p: (not p.passed, p.ratio if math.isfinite(p.ratio) else math.inf))


def reproducer(claim_id: str, point: dict[str, Any], quick: bool = True, seed: int = 0) -> str:
    """The command that runs ``claim_id`` at ``point`` (what a failing search prints)."""
    sets = " ".join(f"--set {k}={v!r}" for k, v in sorted(point.items()))
    return f"solvable verify --claim {claim_id} {sets}{' --quick' if quick else ''}{f' --seed {seed}' if seed else ''}"


def _key(point: dict[str, Any]) -> tuple:
    return tuple(sorted(point.items()))


def _probe(claim: Claim, ctx: Context, point: dict[str, Any]) -> Probe:
    try:
        ev: Evidence = claim.run(ctx)
    except OutOfReach as exc:
        return Probe(point, math.nan, True, f"out of reach: {exc}", reached=False)
    except Exception as exc:  # a check that raises at a point is a counterexample too, with its message
        return Probe(point, math.inf, False, f"{type(exc).__name__}: {exc}")
    ratio = ev.error / ev.tolerance if ev.tolerance > 0 else (0.0 if ev.error == 0 else math.inf)
    failed = [name for name, ok in (ev.conditions or {}).items() if not ok]
    return Probe(point, float(ratio), bool(ev.passed), "conditions not met: " + ", ".join(failed) if failed else "")


def search(claim: Claim, *, examples: int = 50, seed: int | None = None, time_budget: float | None = None,
           quick: bool = True, backend: str = "numpy", device: str | None = None, dtype: str = "float64",
           database: Path | None = None,
           fixed: dict[str, Any] | None = None, progress: Callable[[Probe], None] | None = None,
           shrink_budget: float = 120.0, min_examples: int = 1) -> SearchResult:
    """Draw up to ``examples`` points of ``claim``'s space and run the claim at each; shrink a failure.

    Parameters
    ----------
    claim : Claim
        A claim with a ``space``.
    examples : int
        Points to try (hypothesis's ``max_examples``); shrinking a failure takes more runs.
    seed : int, optional
        Seed of the search (hypothesis's) and of the claim's own draws: the same seed, the same search.
        ``None``: hypothesis draws afresh and keeps what it finds in ``database`` (hypothesis ignores
        its database under a fixed seed), the claim draws with seed 0.
    time_budget : float, optional
        Seconds after which no new point is started (the search then reports what it has).
    quick, backend, device, dtype
        As for ``solvable verify``.
    database : Path, optional
        Directory of hypothesis's example database (failures found before are tried first).
    fixed : dict, optional
        Parameters held at a value (validated against the space).
    progress : callable, optional
        Called with every :class:`Probe`.
    shrink_budget : float
        Seconds of shrinking after the first failure. Past them no new point is run: hypothesis sees
        only the failures already found and settles on the smallest of them.
    min_examples : int
        Points run whatever the time budget: the budget stops the search only after them, so how many
        points a search explores does not depend on the machine's speed below this floor.
    """
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis.database import DirectoryBasedExampleDatabase
    from hypothesis.errors import Unsatisfiable

    if claim.space is None:
        raise ValueError(f"claim {claim.id} declares no parameter space to search")
    if not isinstance(min_examples, int) or not 0 <= min_examples <= examples:
        raise ValueError(f"min_examples must be an integer in [0, examples={examples}], got {min_examples!r}")
    fixed = claim.space.point(fixed or {})
    result = SearchResult(claim.id)
    start = time.monotonic()
    strategy = claim.space.strategy()
    if fixed:
        strategy = strategy.map(lambda p: {**p, **fixed})

    class _OutOfTime(Exception):
        pass

    failures: dict[tuple, Probe] = {}  # the failing probes, by point: replayed, not rerun, once shrinking is out of time
    first_failure: list[float] = []

    def fail(probe: Probe) -> None:
        # one raise site: hypothesis tells failures apart by where they are raised
        result.counterexample = probe  # hypothesis replays the shrunk example last
        raise AssertionError(f"{claim.id} fails at {probe.point}: error/tolerance = {probe.ratio:.3g}")

    def seeded(fn: Callable) -> Callable:
        return fn if seed is None else hypothesis_seed(seed)(fn)

    @seeded
    @settings(max_examples=examples, deadline=None, derandomize=False, print_blob=False,
              database=DirectoryBasedExampleDatabase(str(database)) if database else None,
              suppress_health_check=list(HealthCheck),
              phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink))
    @given(strategy)
    def prop(point: dict[str, Any]) -> None:
        now = time.monotonic()
        if (time_budget is not None and now - start > time_budget and result.counterexample is None
                and len(result.probes) >= min_examples):
            raise _OutOfTime
        if first_failure and now - first_failure[0] > shrink_budget:
            known = failures.get(_key(point))
            if known is None:
                return  # not run: to the shrinker, a point that does not fail
            fail(known)
        ctx = Context(backend=backend, quick=quick, seed=seed or 0, dtype=dtype, device=device, point=_key(point))
        probe = _probe(claim, ctx, dict(point))
        result.probes.append(probe)
        if progress is not None:
            progress(probe)
        if not probe.passed:
            failures[_key(point)] = probe
            first_failure[:] = first_failure or [time.monotonic()]
            fail(probe)

    try:
        prop()
    except AssertionError:
        pass
    except _OutOfTime:
        result.stopped = "time budget"
    except Unsatisfiable:  # the constraints rejected every draw
        result.stopped = "no point satisfied the constraints"
    result.seconds = time.monotonic() - start
    return result


def write_search(result: SearchResult, claim: Claim, out: Path) -> list[Path]:
    """``<out>/<claim>.json`` (every probe) and ``<out>/<claim>.png`` (error / tolerance against the
    space's key parameter: where the theory holds with room, and where it stops)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    stem = claim.id.replace(".", "_")
    data = {
        "claim": claim.id, "stopped": result.stopped, "seconds": round(result.seconds, 2),
        "space": {p.name: [p.low, p.high] for p in claim.space.params},
        "probes": [{"point": p.point, "ratio": p.ratio if math.isfinite(p.ratio) else None, "passed": p.passed,
                    "message": p.message, "reached": p.reached} for p in result.probes],
        "counterexample": None if result.counterexample is None else {
            "point": result.counterexample.point, "ratio": result.counterexample.ratio,
            "command": reproducer(claim.id, result.counterexample.point)},
    }
    paths = [out / f"{stem}.json"]
    paths[0].write_text(json.dumps(data, indent=1, default=float))
    key = claim.space.key or claim.space.names[0]
    if result.probes:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        x = np.array([float(p.point[key]) for p in result.probes])
        y = np.array([p.ratio if math.isfinite(p.ratio) else np.nan for p in result.probes])
        reached = np.array([p.reached for p in result.probes])
        ok = np.array([p.passed for p in result.probes]) & reached
        ax.scatter(x[ok], y[ok], s=12, label="passed")
        if (~reached).any():  # no ratio: drawn on the tolerance line, hollow
            ax.scatter(x[~reached], np.ones(int((~reached).sum())), s=24, facecolors="none", edgecolors="C7",
                       label="out of the check's reach")
        bad = ~np.array([p.passed for p in result.probes])
        if bad.any():
            ax.scatter(x[bad], np.where(np.isfinite(y[bad]), y[bad], 1.0), s=20, marker="x", color="C3",
                       label="failed")
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        if claim.space.param(key).log:
            ax.set_xscale("log")
        ax.set_xlabel(key)
        ax.set_ylabel("error / tolerance")
        ax.set_title(f"{claim.id}: {len(result.probes)} points", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(out / f"{stem}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths
