"""The one result type for convex predictions, and the solve-and-certify step.

Every convex program in :mod:`theory` returns a :class:`ConvexSolution`: the
minimiser, the optimal value and a certificate -- the KKT residuals (primal
feasibility, dual feasibility, stationarity, complementarity, duality gap) --
computed by us from the returned primal/dual pair, not read off the solver.
A solver that stops short of optimality raises :class:`SolverError` with the
solver's status, so a prediction is never silently inaccurate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ConvexSolution", "SolverError", "DEFAULT_SOLVER", "solve", "check_matrix", "check_vector"]

#: Conic interior-point solver used unless a caller asks for another.
DEFAULT_SOLVER = "CLARABEL"


class SolverError(RuntimeError):
    """A convex solver did not reach optimality (the status says how it ended)."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(f"{message} (solver status: {status})")
        self.status = status


@dataclass(frozen=True)
class ConvexSolution:
    """Optimum of a convex program together with its optimality certificate.

    Attributes
    ----------
    x : ndarray
        The minimiser.
    value : float
        The optimal objective value.
    kkt_residual : float
        The largest of the relative residuals in :attr:`residuals`.
    residuals : dict of str -> float
        Each KKT condition's relative residual, by name.
    dual : ndarray or None
        Multipliers of the equality constraints, in the convention
        ``grad f(x) = A^T dual`` for ``min f(x) s.t. A x = b``.
    status : str
        The solver's final status ("optimal", or "closed form").
    solver : str
    """

    x: np.ndarray
    value: float
    kkt_residual: float
    residuals: dict[str, float] = field(default_factory=dict)
    dual: np.ndarray | None = None
    status: str = "optimal"
    solver: str = DEFAULT_SOLVER

    @classmethod
    def certified(cls, x: Any, value: float, residuals: dict[str, float], **kw: Any) -> "ConvexSolution":
        res = {k: float(v) for k, v in residuals.items()}
        return cls(x=np.asarray(x, dtype=float), value=float(value), kkt_residual=max(res.values(), default=0.0),
                   residuals=res, **kw)


def solve(problem: Any, solver: str | None = None, *, allow_inaccurate: bool = False, **options: Any) -> str:
    """Solve a :class:`cvxpy.Problem`; raise :class:`SolverError` unless it is optimal.

    ``infeasible``, ``unbounded`` and solver crashes always raise.
    ``optimal_inaccurate`` raises too, unless ``allow_inaccurate``: a caller
    that refines the point itself and certifies the result with its own KKT
    residuals (as :func:`theory.diagonal.implicit_bias` does) may start from it;
    the returned status then says so.
    """
    import warnings

    import cvxpy as cp

    solver = solver or DEFAULT_SOLVER
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Solution may be inaccurate")
            problem.solve(solver=solver, **options)
    except cp.error.SolverError as exc:
        raise SolverError(f"{solver} failed: {exc}", "solver_error") from exc
    if problem.status == cp.OPTIMAL or (allow_inaccurate and problem.status == cp.OPTIMAL_INACCURATE):
        return str(problem.status)
    raise SolverError(f"{solver} did not reach optimality", str(problem.status))


def check_matrix(name: str, a: Any, *, ndim: int = 2) -> np.ndarray:
    """A finite real array of ``ndim`` dimensions, each of size >= 1, or a clear error."""
    if isinstance(a, (str, bytes)) or a is None:
        raise TypeError(f"{name} must be a real {ndim}-D array; got {type(a).__name__}")
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged input and the like
        raise TypeError(f"{name} must be a real {ndim}-D array: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array; got dtype {arr.dtype}")
    if arr.dtype.kind == "b":
        raise TypeError(f"{name} must be a real numeric array, not booleans")
    arr = arr.astype(float)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{name} must have every dimension >= 1; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    return arr


def check_vector(name: str, a: Any) -> np.ndarray:
    """A finite real 1-D array, or a clear error."""
    return check_matrix(name, a, ndim=1)
