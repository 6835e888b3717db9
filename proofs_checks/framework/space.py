"""The hypothesis space of a claim: the parameters its theorem covers, their ranges, and its constraints.

A claim checks a few fixed points by default. Declaring its space (``@claim(..., space=Space(...))``)
lets a user run it at any point of that space (``solvable verify --claim ID --set alpha=0.02``), and
lets :mod:`proofs_checks.framework.search` search the whole space for a counterexample and shrink it
(``solvable check ID``). The check reads a parameter with ``ctx.param("alpha", default)``: the
default is the fixed point of ``solvable verify``, so a claim with a space behaves as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from solvable.sims.engine._validate import shown

__all__ = ["Param", "Space"]


@dataclass(frozen=True)
class Param:
    """One parameter of a theorem's hypotheses.

    Attributes
    ----------
    name : str
        As ``--set NAME=VALUE`` and ``ctx.param(NAME)`` spell it.
    low, high : float
        The closed range the theorem (and the claim's error budget) covers.
    log : bool
        Drawn log-uniformly (scales such as an initialisation size).
    integer : bool
        An integer parameter (a depth, a width).
    doc : str
        What it is, for ``solvable check`` and the report.
    """

    name: str
    low: float
    high: float
    log: bool = False
    integer: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise ValueError(f"parameter {self.name!r}: low and high must be finite with low <= high")
        if self.log and self.low <= 0:
            raise ValueError(f"parameter {self.name!r}: a log-uniform range needs low > 0")

    def parse(self, value: Any) -> float | int:
        """``value`` (a number or the text of one) checked against the range."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name} must be a number in [{self.low:g}, {self.high:g}]; got {shown(value)}") from None
        if self.integer:
            if number != round(number):
                raise ValueError(f"{self.name} must be an integer in [{self.low:g}, {self.high:g}]; got {shown(value)}")
            number = int(round(number))
        if not self.low <= number <= self.high:
            kind = "an integer" if self.integer else "a number"
            raise ValueError(f"{self.name} must be {kind} in [{self.low:g}, {self.high:g}] (the range the claim's "
                             f"theorem and error budget cover); got {shown(value)}")
        return number

    def strategy(self) -> Any:
        """A hypothesis strategy over the range (shrinking towards ``low``)."""
        from hypothesis import strategies as st

        if self.integer:
            return st.integers(int(self.low), int(self.high))
        if self.log:
            lo, hi = math.log10(self.low), math.log10(self.high)
            return st.floats(lo, hi, allow_nan=False).map(lambda e: min(max(10.0**e, self.low), self.high))
        return st.floats(self.low, self.high, allow_nan=False)


@dataclass(frozen=True)
class Space:
    """A claim's parameters and the theorem's other hypotheses as constraints on a point.

    Attributes
    ----------
    params : tuple of Param
    constraints : tuple of (str, callable)
        ``(statement, holds)``: ``holds(point) -> bool`` for a hypothesis of the theorem that the
        ranges alone do not say (``"n < d"``).
    key : str
        The parameter the error depends on most (finite alpha, depth): the x-axis of the search's plot.
    """

    params: tuple[Param, ...]
    constraints: tuple[tuple[str, Callable[[dict[str, Any]], bool]], ...] = ()
    key: str = ""

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if not names or len(set(names)) != len(names):
            raise ValueError("a Space needs at least one parameter and distinct names")
        if self.key and self.key not in names:
            raise ValueError(f"key {self.key!r} is not a parameter of the space ({names})")

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ValueError(f"unknown parameter {shown(name)}; this claim's parameters are {self.names}")

    def point(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` validated: known names, within range, and every constraint holding."""
        point = {name: self.param(name).parse(v) for name, v in values.items()}
        for statement, holds in self.constraints:
            full = {**{p.name: None for p in self.params}, **point}
            if all(full[n] is not None for n in self.names) and not holds(full):
                raise ValueError(f"the point {point} violates the theorem's hypothesis {statement!r}")
        return point

    def strategy(self) -> Any:
        """A hypothesis strategy of whole points that satisfy the constraints."""
        from hypothesis import strategies as st

        points = st.fixed_dictionaries({p.name: p.strategy() for p in self.params})
        for statement, holds in self.constraints:
            points = points.filter(holds)
        return points

    def describe(self) -> str:
        """One line per parameter and constraint."""
        lines = [f"  {p.name} in [{p.low:g}, {p.high:g}]{' (log)' if p.log else ''}{' (integer)' if p.integer else ''}"
                 f"{': ' + p.doc if p.doc else ''}" for p in self.params]
        lines += [f"  subject to {statement}" for statement, _ in self.constraints]
        return "\n".join(lines)
