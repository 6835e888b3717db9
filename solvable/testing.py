"""Property-test the library's claims, or your own predictions, in your own test suite.

Two lines check a claim over its whole hypothesis space, with hypothesis's shrinking: a failure is an
``AssertionError`` that names the simplest failing point and the command that reproduces it.

>>> from solvable.testing import check_claim
>>> result = check_claim("deep_linear.saxe_modes", examples=3)   # doctest: +SKIP

:func:`points` gives the claim's space as a hypothesis strategy, for a test of your own prediction
against one of the simulators at the points the theorem covers (README, "Claims as properties").
"""

from __future__ import annotations

from typing import Any

from solvable.proofs_checks.framework import registry
from solvable.proofs_checks.framework.registry import Context, Evidence
from solvable.proofs_checks.framework.search import SearchResult, reproducer, search

__all__ = ["check_claim", "points", "run_at"]


def _claim(claim_id: str) -> registry.Claim:
    claim = registry.get(claim_id)
    if claim.space is None:
        with_space = [c.id for c in registry.all_claims() if c.space is not None]
        raise ValueError(f"claim {claim_id} declares no parameter space; these do: {', '.join(with_space)}")
    return claim


def check_claim(claim_id: str, *, examples: int = 20, seed: int | None = 0, quick: bool = True, backend: str = "numpy",
                time_budget: float | None = None, shrink_budget: float = 120.0, min_examples: int = 1,
                **fixed: Any) -> SearchResult:
    """Search ``claim_id``'s space (``fixed`` parameters held) and fail with the shrunk counterexample.

    Returns the :class:`~proofs_checks.framework.search.SearchResult` (every point tried, the worst error ratio)
    when no point fails; raises ``AssertionError`` naming the simplest failing point and the
    ``solvable verify --set ...`` command that reproduces it otherwise.
    """
    claim = _claim(claim_id)
    result = search(claim, examples=examples, seed=seed, quick=quick, backend=backend, time_budget=time_budget,
                    fixed=fixed, shrink_budget=shrink_budget, min_examples=min_examples)
    ce = result.counterexample
    if ce is not None:
        raise AssertionError(f"{claim_id} fails at {ce.point} (error / tolerance = {ce.ratio:.3g}"
                             f"{'; ' + ce.message if ce.message else ''}).\nReproduce with: "
                             f"{reproducer(claim_id, ce.point, quick=quick, seed=seed or 0)}")
    return result


def points(claim_id: str, **fixed: Any) -> Any:
    """The hypothesis strategy of ``claim_id``'s points (dicts of parameter values), ``fixed`` held."""
    claim = _claim(claim_id)
    held = claim.space.point(fixed)
    strategy = claim.space.strategy()
    return strategy.map(lambda p: {**p, **held}) if held else strategy


def run_at(claim_id: str, *, quick: bool = True, seed: int = 0, backend: str = "numpy", **point: Any) -> Evidence:
    """The claim's evidence at one point of its space (``solvable verify --set``, from Python)."""
    claim = _claim(claim_id)
    valid = claim.space.point(point)
    return claim.run(Context(backend=backend, quick=quick, seed=seed, point=tuple(sorted(valid.items()))))
