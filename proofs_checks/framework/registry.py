"""Claims: a paper's statement, its source, and the check that sets prediction beside simulation.

A claim is registered with :func:`claim`::

    @claim(
        id="diagonal.implicit_bias",
        source="Woodworth et al. 2020, Theorem 1",
        statement="The gradient-flow limit minimises Q_alpha over the interpolators.",
        kind="simulation",
    )
    def implicit_bias(ctx: Context) -> Evidence:
        ...

and returns :class:`Evidence`: predicted and observed values, the error
measure, the tolerance with the reason for its size, the named conditions
that must also hold, and a verdict computed from those numbers alone.

A claim reads in three parts: a *measurement* (the simulation, a function of
the :class:`Context` decorated with :func:`measurement`, so that claims which
share it run it once per context), the *check* that turns measurement and
prediction into :class:`Evidence`, and an optional *figure*
``figure(fig, evidence)`` that draws the evidence's details (given to
:func:`claim`).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import re
import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, TypeVar

import numpy as np

from solvable.sims.sweep._json import jsonable
from solvable.sims.engine._validate import shown

__all__ = ["KINDS", "MODELS", "RESOLVES", "Claim", "Context", "Evidence", "OutOfReach", "PrecisionError", "all_claims",
           "claim", "clear_measurements", "get", "jsonable", "load_all", "measurement", "measurements_read", "require_precision",
           "resolution", "symbolic_evidence"]

#: Kinds of claim. ``simulation``: a simulated algorithm against a prediction;
#: ``closed_form``: a closed form against an independent numerical reference;
#: ``symbolic``: an identity proved by sympy; ``convex``: a convex program
#: against a closed form or another program; ``rate_fit``: a fitted rate
#: against the paper's.
KINDS = ("simulation", "closed_form", "symbolic", "convex", "rate_fit")

#: What a claim needs of the array backend. ``any``: its simulation runs on
#: whatever backend is asked for; ``numpy``: something in its loop is
#: CPU/NumPy-only (it reports "unsupported" elsewhere); ``none``: it simulates
#: nothing, so the backend does not matter.
BACKEND_NEEDS = ("any", "numpy", "none")

#: Model families in the order they are listed; each has a module
#: ``proofs_checks.<model>`` that registers its claims on import.
MODELS = ("diagonal", "deep_linear", "matrix_sensing", "ufm", "lsa")


#: Which changes of a headline prediction its resolution is about (see :class:`Evidence`).
SIDES = ("both", "below", "above")

#: Relative changes of a headline prediction tried by :func:`resolution`: 1e-12 up to 90 % (a factor 0.1 below).
_DELTAS = np.geomspace(1e-12, 0.9, 241)


def resolution(score: Callable[[float], float], tolerance: float, sides: str = "both") -> float:
    """The smallest relative change of a prediction that the evidence rejects, beyond which every change does.

    ``score(f)`` is the error the evidence gives the prediction multiplied by ``f``; a change ``delta`` is
    rejected on a side when ``score(1 +- delta) > tolerance``. Returned: the smallest ``delta`` from which every
    larger one on a geometric grid of 241 points from 1e-12 to 0.9 is rejected on each side asked for, refined
    by bisection against the grid point below it; ``inf`` when a change of 90 % is not rejected.
    """
    if sides not in SIDES:
        raise ValueError(f"sides must be one of {SIDES}; got {shown(sides)}")
    signs = {"both": (1.0, -1.0), "below": (-1.0,), "above": (1.0,)}[sides]

    def rejects(delta: float, sign: float) -> bool:
        value = float(score(1.0 + sign * delta))
        return not value <= tolerance  # NaN: rejected, as a NaN error fails

    worst = 0.0
    for sign in signs:
        flags = np.array([rejects(float(d), sign) for d in _DELTAS])
        if not flags[-1]:
            return math.inf
        held = np.flatnonzero(~flags)
        first = 0 if held.size == 0 else int(held[-1]) + 1
        if first == 0:
            delta = float(_DELTAS[0])
        else:
            lo, hi = float(_DELTAS[first - 1]), float(_DELTAS[first])
            for _ in range(40):
                mid = math.sqrt(lo * hi)
                lo, hi = (lo, mid) if rejects(mid, sign) else (mid, hi)
            delta = hi
        worst = max(worst, delta)
    return worst


@dataclass(frozen=True)
class Evidence:
    """What a check found.

    Attributes
    ----------
    predicted, observed : number, str or short list
        The paper's value and the measured one, of one quantity (summaries;
        full arrays go to ``details``); a bound is written as a string such as
        ``"< 1"``.
    quantity : str
        What ``predicted`` and ``observed`` are (the table's column header for them).
    error : float
        The discrepancy, measured as ``error_measure`` says.
    tolerance : float
        The largest error that still passes.
    error_measure : str
        How ``error`` is computed.
    unit : str
        The unit of ``error`` and ``tolerance`` (both are in the same one):
        ``"budget"`` when the error is a ratio to its stated budget (the
        tolerance is then 1), or e.g. ``"standard errors"``, ``"relative"``.
    tolerance_reason : str
        Why the tolerance has that size (discretisation, finite alpha or time,
        solver accuracy...), never "tuned until green".
    conditions : mapping of str to bool
        Further requirements of the statement, each named and computed from
        numbers (e.g. ``{"every run converged": ...}``).
    details : dict
        Further numbers for the report, the JSON and the claim's figure.
    note : str
        A finding worth reporting (e.g. where the simulation departs from the
        paper). It never decides the verdict.
    score : callable, optional
        ``score(f)``: the error this evidence gives the headline prediction
        multiplied by ``f`` (the same computation as ``error``, from the stored
        observations: nothing is rerun), so that ``score(1) == error``. From it
        :attr:`resolution` follows. Kept out of the JSON.
    sides : {"both", "below", "above"}
        Which changes of the headline the resolution is about: ``"both"`` for a
        predicted value, ``"below"`` for a predicted upper bound (only a tighter
        bound can be refuted by data), ``"above"`` for a lower bound.
    alternatives : mapping of str to float
        Named wrong predictions (e.g. Sigma^-1/2 in place of Sigma^-1) and the
        error this evidence gives each, in the unit of ``error``: the
        structural power of the check (each rejected when above the tolerance).
    false_alarm : float, optional
        The probability that the check fails although the statement holds:
        0 for a deterministic budget (round-off, discretisation and truncation
        bounds), the test's level for a statistical one (the test that bounds
        it named in ``tolerance_reason``).

    The verdict :attr:`passed` is ``error <= tolerance`` (a NaN error fails)
    and every condition true.
    """

    predicted: Any
    observed: Any
    error: float
    tolerance: float
    error_measure: str
    tolerance_reason: str
    quantity: str = ""
    unit: str = "budget"
    conditions: Mapping[str, bool] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    score: Callable[[float], float] | None = field(default=None, compare=False, repr=False)
    sides: str = "both"
    alternatives: Mapping[str, float] = field(default_factory=dict)
    false_alarm: float | None = None
    resolution: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "error", float(self.error))
        object.__setattr__(self, "tolerance", float(self.tolerance))
        object.__setattr__(self, "conditions", {str(k): bool(v) for k, v in dict(self.conditions).items()})
        object.__setattr__(self, "alternatives", {str(k): float(v) for k, v in dict(self.alternatives).items()})
        if not self.tolerance_reason.strip():
            raise ValueError("every tolerance needs its reason")
        if self.sides not in SIDES:
            raise ValueError(f"sides must be one of {SIDES}; got {shown(self.sides)}")
        if self.false_alarm is not None and not 0.0 <= self.false_alarm < 1.0:
            raise ValueError(f"false_alarm must be a probability in [0, 1); got {shown(self.false_alarm)}")
        if self.score is not None:
            again = float(self.score(1.0))
            same = again == self.error or (math.isnan(again) and math.isnan(self.error))
            if not (same or abs(again - self.error) <= 1e-9 * max(abs(self.error), 1e-300)):
                raise ValueError(f"score(1) must reproduce the error: {again!r} against {self.error!r}")
            object.__setattr__(self, "resolution", resolution(self.score, self.tolerance, self.sides))

    @property
    def rejected_alternatives(self) -> list[str]:
        """The named alternatives this evidence rejects (their error above the tolerance)."""
        return [name for name, err in self.alternatives.items() if not err <= self.tolerance]

    @property
    def within_tolerance(self) -> bool:
        return bool(math.isfinite(self.error) and self.error <= self.tolerance)

    @property
    def failed_conditions(self) -> list[str]:
        return [name for name, ok in self.conditions.items() if not ok]

    @property
    def passed(self) -> bool:
        """``error <= tolerance`` and every condition holds."""
        return self.within_tolerance and not self.failed_conditions

    @property
    def margin(self) -> float:
        """How far from failing: ``1 - error / tolerance`` (1: no error; 0: at the tolerance; < 0: failed)."""
        if not math.isfinite(self.error):
            return -math.inf
        if self.tolerance > 0:
            return 1.0 - self.error / self.tolerance
        return 1.0 if self.error <= 0 else -math.inf

    @property
    def near_limit(self) -> bool:
        """A pass within 10 % of its tolerance: worth a look (a right budget, or a fragile check)."""
        return self.passed and self.margin < NEAR_LIMIT


@dataclass(frozen=True)
class Context:
    """What a check is asked to do.

    Attributes
    ----------
    backend : str
        Array backend for the simulations (see :func:`sims.engine.backend.namespace`).
    quick : bool
        Small sizes (seconds), as in the test suite; full sizes otherwise.
    seed : int
        Seed of every random draw (problems, initialisations, SGD schedules).
    dtype : {"float64", "float32"}
        Precision of the simulations.
    device : str, optional
        The backend's device ("cuda", "cuda:1" for torch; a device ordinal
        such as "0" for cupy; ``None``: the backend's default, which for
        torch is the CPU). Problems are drawn on the host, moved once.
    point : tuple of (name, value)
        A point of the claim's :class:`~proofs_checks.framework.space.Space` (sorted by
        name); empty: the claim's own fixed point.
    """

    backend: str = "numpy"
    quick: bool = False
    seed: int = 0
    dtype: str = "float64"
    device: str | None = None
    point: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str, default: Any) -> Any:
        """The value of parameter ``name`` at this context's point (``verify --set``, ``solvable check``),
        or ``default``: the claim's fixed point."""
        return dict(self.point).get(name, default)


#: A pass whose margin is below this fraction of its tolerance is flagged in the table and the report.
NEAR_LIMIT = 0.1

#: The resolution every numeric claim promises, quick and full mode: a headline prediction off by 5 % (quick)
#: or 2 % (full) is rejected. A claim that promises less says why in ``resolves_reason``.
RESOLVES = (0.05, 0.02)

Check = Callable[[Context], Evidence]
Figure = Callable[[Any, Evidence], None]
T = TypeVar("T")

_MEASUREMENTS: dict[tuple[str, Context], Any] = {}


def measurement(fn: Callable[[Context], T]) -> Callable[[Context], T]:
    """Cache a measurement (a simulation shared by claims) per :class:`Context`.

    Claims that read the same measurement run it once for a given backend,
    size, seed and dtype; :func:`clear_measurements` empties every cache at
    once (tests that perturb the code call it).
    """
    name = f"{fn.__module__}.{fn.__qualname__}"

    @functools.wraps(fn)
    def cached(ctx: Context) -> T:
        if not isinstance(ctx, Context):
            raise TypeError(f"a measurement takes a Context; got {type(ctx).__name__}")
        key = (name, ctx)
        for reads in _READING:
            reads.add(name)
        if key not in _MEASUREMENTS:
            _MEASUREMENTS[key] = fn(ctx)
        return _MEASUREMENTS[key]

    cached.__measurement__ = name  # read by proofs_checks.framework.parallel to keep the claims that share it together
    return cached


#: The open :func:`measurements_read` blocks.
_READING: list[set[str]] = []


@contextlib.contextmanager
def measurements_read() -> Iterator[set[str]]:
    """The names of the measurements read (computed or found in the cache) inside the block: what
    :func:`proofs_checks.framework.parallel.measurements_of` must find in a claim's code."""
    reads: set[str] = set()
    _READING.append(reads)
    try:
        yield reads
    finally:
        _READING.remove(reads)


def clear_measurements() -> None:
    """Forget every cached measurement."""
    _MEASUREMENTS.clear()


class PrecisionError(Exception):
    """A claim's tolerance is finer than the requested dtype can deliver (reported, not failed)."""


class OutOfReach(Exception):
    """At this point of its space the claim cannot test its statement: a limit the theorem takes (alpha -> 0,
    t -> infinity) is not reached by the check's resources there, or the drawn instance falls outside the
    regime the statement is about (a hypothesis no parameter range can express, such as "few entries: the
    nuclear norm does not recover M*").

    Raised before the simulation it would judge, from an independent criterion stated in the message (the
    exact finite-alpha prediction still far from the limit; a convex solve); reported as "unsupported" by
    ``solvable verify`` and as an out-of-reach point (neither passed nor failed) by ``solvable check``,
    never as a pass.
    """


def require_precision(ctx: Context, relative: float, what: str) -> None:
    """Raise :class:`PrecisionError` if ``ctx.dtype`` cannot resolve ``relative`` accuracy.

    A dtype resolves about ``100 eps`` after the round-off of a long
    computation (float32: ~1e-5; float64: ~2e-14).
    """
    eps = float(np.finfo(np.dtype(ctx.dtype)).eps)
    if relative < 100 * eps:
        raise PrecisionError(
            f"{what} needs relative accuracy {relative:.0e}, below what {ctx.dtype} delivers (~{100 * eps:.0e}); "
            f"rerun with --dtype float64"
        )


@dataclass(frozen=True)
class Claim:
    """A registered claim (see :func:`claim`)."""

    id: str
    model: str
    source: str
    statement: str
    kind: str
    check: Check = field(compare=False, repr=False)
    backends: str = "any"
    figure: Figure | None = field(default=None, compare=False, repr=False)
    precision: tuple[float, str] | None = None
    formula: str = ""
    space: Any = field(default=None, compare=False, repr=False)
    resolves: tuple[float, float] | None = RESOLVES
    resolves_reason: str = ""

    def resolution_target(self, quick: bool) -> float | None:
        """The resolution this claim promises in quick or full mode (None: its prediction is not a number)."""
        return None if self.resolves is None else self.resolves[0 if quick else 1]

    def run(self, ctx: Context) -> Evidence:
        """The claim's check under ``ctx``, after its precision requirement (:class:`PrecisionError` if unmet)
        and, at a point, after validating the point against the claim's space (ValueError if it is outside)."""
        if ctx.point:
            if self.space is None:
                raise ValueError(f"claim {self.id} declares no parameter space; --set applies to the claims "
                                 f"that do (see `solvable check --list`)")
            self.space.point(dict(ctx.point))
        if self.precision is not None:
            require_precision(ctx, *self.precision)
        return self.check(ctx)

    def supports(self, backend: str) -> bool:
        """Whether the check can run its simulation on ``backend``."""
        return self.backends in ("any", "none") or backend == "numpy"


_REGISTRY: dict[str, Claim] = {}
_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


def claim(*, id: str, source: str, statement: str, kind: str, backends: str = "any",
          figure: Figure | None = None, precision: tuple[float, str] | None = None,
          formula: str = "", space: Any = None, resolves: tuple[float, float] | None = RESOLVES,
          resolves_reason: str = "") -> Callable[[Check], Check]:
    """Register ``check(ctx: Context) -> Evidence`` as a claim.

    The model is the part of ``id`` before the dot. ``figure(fig, evidence)``,
    if given, draws the evidence (from its ``details``) on a matplotlib figure
    for the report. ``precision=(relative, what)``: the relative accuracy the
    check needs and of what; under a dtype that cannot deliver it the claim
    reports "unsupported" instead of running (see :func:`require_precision`).
    ``formula``: the statement's central formula in LaTeX (the report renders it as MathML).
    ``space``: the :class:`~proofs_checks.framework.space.Space` the theorem covers, which ``verify --set`` and
    ``solvable check`` explore; the check then reads its parameters with ``ctx.param(name, default)``.
    ``resolves=(quick, full)``: the relative change of the headline prediction that the evidence rejects in each
    mode (its :attr:`Evidence.resolution`; default 5 % and 2 %); ``None`` when the prediction is not a number
    (a symbolic identity; a structure tested against named alternatives). Anything but the default needs
    ``resolves_reason``: why the check does not resolve finer, and what it does resolve.
    """
    if not _ID.match(id):
        raise ValueError(f"claim id must look like 'model.name' in lower case; got {shown(id)}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {shown(kind)}")
    if backends not in BACKEND_NEEDS:
        raise ValueError(f"backends must be one of {BACKEND_NEEDS}; got {shown(backends)}")
    if not source.strip() or not statement.strip():
        raise ValueError("a claim needs a source and a statement")
    if kind == "symbolic" and resolves == RESOLVES:  # a proof has no tolerance to resolve
        resolves, resolves_reason = None, resolves_reason or (
            "an identity proved by sympy: exact, no tolerance to resolve; the numeric code is held to the symbolic "
            "expression at 1e-12 relative")
    if resolves is not None and (len(resolves) != 2 or not all(0 < r < 1 for r in resolves)):
        raise ValueError(f"resolves must be (quick, full) relative changes in (0, 1), or None; got {shown(resolves)}")
    if resolves != RESOLVES and not resolves_reason.strip():
        raise ValueError(f"claim {shown(id)} promises resolution {shown(resolves)}, not {RESOLVES}: say why in "
                         "resolves_reason")

    def register(check: Check) -> Check:
        if id in _REGISTRY and _REGISTRY[id].check.__qualname__ != check.__qualname__:
            raise ValueError(f"claim {shown(id)} is registered twice")
        _REGISTRY[id] = Claim(id=id, model=id.split(".")[0], source=source, statement=statement,
                              kind=kind, check=check, backends=backends, figure=figure, precision=precision,
                              formula=formula, space=space, resolves=None if resolves is None else tuple(resolves),
                              resolves_reason=resolves_reason)
        return check

    return register


def load_all() -> None:
    """Import every model's claims module (registration happens on import)."""
    for model in MODELS:
        importlib.import_module(f"solvable.proofs_checks.{model}")


def all_claims(model: str | None = None) -> list[Claim]:
    """Registered claims, in model order then registration order."""
    load_all()
    if model is not None and model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}; got {shown(model)}")
    order = {m: i for i, m in enumerate(MODELS)}
    claims = [c for c in _REGISTRY.values() if model is None or c.model == model]
    return sorted(claims, key=lambda c: order.get(c.model, len(order)))


def get(claim_id: str) -> Claim:
    """The claim called ``claim_id``."""
    load_all()
    if claim_id not in _REGISTRY:
        raise ValueError(f"unknown claim {shown(claim_id)}; `solvable list` shows them")
    return _REGISTRY[claim_id]


def symbolic_evidence(checks: dict[str, bool], numeric_gap: float, module: str) -> Evidence:
    """Evidence for a symbolic claim: every identity proved, and the numeric code equal to the symbolic expressions."""
    failed = [k for k, ok in checks.items() if not ok]
    return Evidence(
        predicted=len(checks),
        observed=len(checks) - len(failed),
        quantity="identities proved by sympy",
        unit="relative gap",
        error=numeric_gap,
        tolerance=1e-12,
        error_measure=f"largest relative departure of {module} from the symbolic expressions at sample points "
                      "(every identity must also be proved)",
        tolerance_reason="a proof has no tolerance; 1e-12 is ~100 ulps for two evaluations of one closed form",
        conditions={f"sympy proves: {name}": ok for name, ok in checks.items()},
        details={"identities": checks, "numeric_gap": numeric_gap},
        note=("unproved: " + ", ".join(failed)) if failed else "",
    )
