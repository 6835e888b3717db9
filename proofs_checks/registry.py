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
measure, the tolerance with the reason for its size, and a verdict.
"""

from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from solvable.sims._json import jsonable

__all__ = ["KINDS", "MODELS", "Claim", "Context", "Evidence", "PrecisionError", "all_claims", "claim", "get",
           "jsonable", "load_all", "require_precision", "symbolic_evidence"]

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
MODELS = ("diagonal", "deep_linear", "ufm")


@dataclass(frozen=True)
class Evidence:
    """What a check found.

    Attributes
    ----------
    predicted, observed : number, str or short list
        The paper's value and the measured one (summaries; full arrays go to
        ``details``).
    error : float
        The discrepancy, measured as ``error_measure`` says.
    tolerance : float
        The largest error that still passes.
    error_measure : str
        How ``error`` is computed.
    tolerance_reason : str
        Why the tolerance has that size (discretisation, finite alpha or time,
        solver accuracy...), never "tuned until green".
    passed : bool, optional
        Defaults to ``error <= tolerance`` (a NaN error fails).
    details : dict
        Further numbers for the report and JSON (per-run errors, residuals).
    figure : callable, optional
        ``figure(fig)`` draws the evidence on a matplotlib figure.
    note : str
        A finding worth reporting (e.g. where the simulation departs from the paper).
    """

    predicted: Any
    observed: Any
    error: float
    tolerance: float
    error_measure: str
    tolerance_reason: str
    passed: bool | None = None
    details: dict[str, Any] = field(default_factory=dict)
    figure: Callable[[Any], None] | None = field(default=None, compare=False)
    note: str = ""

    def __post_init__(self) -> None:
        error, tol = float(self.error), float(self.tolerance)
        object.__setattr__(self, "error", error)
        object.__setattr__(self, "tolerance", tol)
        if self.passed is None:
            object.__setattr__(self, "passed", bool(math.isfinite(error) and error <= tol))
        else:
            object.__setattr__(self, "passed", bool(self.passed))
        if not self.tolerance_reason.strip():
            raise ValueError("every tolerance needs its reason")


@dataclass(frozen=True)
class Context:
    """What a check is asked to do.

    Attributes
    ----------
    backend : str
        Array backend for the simulations (see :func:`sims.backend.namespace`).
    quick : bool
        Small sizes (seconds), as in the test suite; full sizes otherwise.
    seed : int
        Seed of every random draw (problems, initialisations, SGD schedules).
    dtype : {"float64", "float32"}
        Precision of the simulations.
    """

    backend: str = "numpy"
    quick: bool = False
    seed: int = 0
    dtype: str = "float64"


Check = Callable[[Context], Evidence]


class PrecisionError(Exception):
    """A claim's tolerance is finer than the requested dtype can deliver (reported, not failed)."""


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

    def supports(self, backend: str) -> bool:
        """Whether the check can run its simulation on ``backend``."""
        return self.backends in ("any", "none") or backend == "numpy"


_REGISTRY: dict[str, Claim] = {}
_ID = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


def claim(*, id: str, source: str, statement: str, kind: str, backends: str = "any") -> Callable[[Check], Check]:
    """Register ``check(ctx: Context) -> Evidence`` as a claim.

    The model is the part of ``id`` before the dot.
    """
    if not _ID.match(id):
        raise ValueError(f"claim id must look like 'model.name' in lower case; got {id!r}")
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    if backends not in BACKEND_NEEDS:
        raise ValueError(f"backends must be one of {BACKEND_NEEDS}; got {backends!r}")
    if not source.strip() or not statement.strip():
        raise ValueError("a claim needs a source and a statement")

    def register(check: Check) -> Check:
        if id in _REGISTRY and _REGISTRY[id].check.__qualname__ != check.__qualname__:
            raise ValueError(f"claim {id!r} is registered twice")
        _REGISTRY[id] = Claim(id=id, model=id.split(".")[0], source=source, statement=statement,
                              kind=kind, check=check, backends=backends)
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
        raise ValueError(f"model must be one of {MODELS}; got {model!r}")
    order = {m: i for i, m in enumerate(MODELS)}
    claims = [c for c in _REGISTRY.values() if model is None or c.model == model]
    return sorted(claims, key=lambda c: order.get(c.model, len(order)))


def get(claim_id: str) -> Claim:
    """The claim called ``claim_id``."""
    load_all()
    if claim_id not in _REGISTRY:
        raise ValueError(f"unknown claim {claim_id!r}; `solvable list` shows them")
    return _REGISTRY[claim_id]


def symbolic_evidence(checks: dict[str, bool], numeric_gap: float, module: str) -> Evidence:
    """Evidence for a symbolic claim: every identity proved, and the numeric code equal to the symbolic expressions."""
    failed = [k for k, ok in checks.items() if not ok]
    return Evidence(
        predicted="all identities hold",
        observed=f"{len(checks) - len(failed)} of {len(checks)} hold; numeric gap {numeric_gap:.1e}",
        error=len(failed) + (numeric_gap > 1e-12),
        tolerance=0,
        error_measure=f"identities sympy could not prove, plus one if {module} departs from the symbolic expressions "
                      "by more than 1e-12 (relative) at sample points",
        tolerance_reason="a proof has no tolerance; 1e-12 is ~100 ulps for two evaluations of one closed form",
        details={"identities": checks, "numeric_gap": numeric_gap},
        note=("unproved: " + ", ".join(failed)) if failed else "",
    )
