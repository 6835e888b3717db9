"""Sweep descriptions: the registry of named tasks, grids of points, and TOML configs checked before anything runs."""

from __future__ import annotations

import importlib
import inspect
import itertools
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..engine._validate import shown
from .store import canonical

__all__ = ["TASKS", "SweepConfig", "check_n_jobs", "check_params", "get_task", "grid", "load_config"]

#: Sweepable tasks by name (what a TOML config may ask for), as ``module:function`` under ``solvable.sims``.
_SIMS = __package__.rpartition(".")[0]  # the tasks live in the families of solvable.sims

TASKS: dict[str, str] = {
    "diagonal.limit": "diagonal:sweep_limit",
    "diagonal.gd_phase": "diagonal:sweep_gd_phase",
    "deep_linear.limit": "deep_linear:sweep_limit",
    "ufm.collapse": "ufm:sweep_collapse",
    "matrix_sensing.recovery": "matrix_sensing:sweep_recovery",
    "lsa.icl": "lsa:sweep_icl",
}


def get_task(name: str) -> Callable[..., dict[str, Any]]:
    """The function behind a task name of :data:`TASKS`."""
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}; got {shown(name)}")
    module, qualname = TASKS[name].split(":")
    return getattr(importlib.import_module(f"{_SIMS}.{module}"), qualname)


def grid(**axes: Iterable[Any]) -> list[dict[str, Any]]:
    """The Cartesian product of parameter lists, as a list of dicts (last axis fastest)."""
    names = list(axes)
    values = []
    for name in names:
        vals = list(axes[name]) if not isinstance(axes[name], (str, bytes)) else None
        if not vals:
            raise ValueError(f"grid axis {shown(name)} must be a non-empty list of values")
        values.append(vals)
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


@dataclass(frozen=True)
class SweepConfig:
    """A sweep described in TOML (see :func:`load_config`)."""

    task: str
    store: Path
    fixed: dict[str, Any] = field(default_factory=dict)
    axes: dict[str, list[Any]] = field(default_factory=dict)
    n_jobs: int = -1
    executor: str = "loky"

    def points(self) -> list[dict[str, Any]]:
        return [{**self.fixed, **p} for p in grid(**self.axes)]


_CONFIG_KEYS = {"task", "store", "fixed", "grid", "n_jobs", "executor"}


def check_params(task: str | Callable[..., Any], names: Iterable[str], values: Mapping[str, Any] | None = None) -> None:
    """Check parameter names (and, where the task annotates them, value types) against a task's signature.

    ``task``: a name in :data:`TASKS`, or the function itself (a :func:`functools.partial` is checked against
    what it leaves to set; a task taking ``**kwargs`` accepts any further name).

    Raises ValueError naming an unknown or missing parameter and the accepted
    ones, or TypeError naming a value of the wrong type.
    """
    fn = get_task(task) if isinstance(task, str) else task
    label = task if isinstance(task, str) else getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None),
                                                                                        "__name__", repr(fn))
    sig = inspect.signature(fn)
    accepted = [p for p in sig.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    open_ended = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    allowed = {p.name for p in accepted}
    given = set(names)
    unknown = sorted(given - allowed)
    if unknown and not open_ended:
        raise ValueError(f"task {shown(label)} has no parameter {', '.join(map(repr, unknown))}; "
                         f"its parameters are {sorted(allowed)}")
    missing = sorted(p.name for p in accepted if p.default is inspect.Parameter.empty and p.name not in given)
    if missing:
        raise ValueError(f"task {shown(label)} needs {', '.join(map(repr, missing))}; give them in [fixed] or [grid]")
    kinds = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
    for name, value in (values or {}).items():
        if name not in sig.parameters:  # taken by **kwargs: nothing to check it against
            continue
        ann = str(sig.parameters[name].annotation)
        want = [kinds[t.strip()] for t in ann.split("|") if t.strip() in kinds]
        if not want or (value is None and "None" in ann):
            continue
        ok = any(isinstance(value, k) and not (isinstance(value, bool) and bool not in k) for k in want)
        if not ok:
            raise TypeError(f"task {shown(label)}: {name} must be {ann}; got {shown(value)}")


def check_n_jobs(n_jobs: Any) -> int:
    """``n_jobs`` as joblib reads it, or a ValueError naming the accepted range: 1 .. cores for that many
    workers, -1 .. -cores for all cores but ``-n_jobs - 1`` (joblib's convention); 0 and a negative value beyond
    the cores (which joblib would turn into no worker at all) are refused."""
    cores = os.cpu_count() or 1
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -cores:
        raise ValueError(f"n_jobs must be an integer in 1 .. N (N workers) or -1 .. -{cores} (all {cores} cores but "
                         f"-n_jobs - 1); got {shown(n_jobs)}")
    return n_jobs


def load_config(path: str | os.PathLike) -> SweepConfig:
    """Read a TOML sweep description::

        task = "diagonal.limit"
        store = "sweeps/alpha"          # relative to the file
        n_jobs = 2
        [fixed]
        n = 50
        d = 200
        [grid]
        alpha = [0.01, 0.1, 1.0]
        seed = [0, 1, 2]

    Only the keys above are accepted; values must be numbers, strings,
    booleans or lists of them, and every parameter is checked against the
    task's signature before anything runs. Nothing in the file is imported or
    evaluated.
    """
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read sweep config {path}: {exc}") from exc
    unknown = set(doc) - _CONFIG_KEYS
    if unknown:
        raise ValueError(f"unknown keys in {path}: {sorted(unknown)}; allowed: {sorted(_CONFIG_KEYS)}")
    task = doc.get("task")
    get_task(task)
    store = doc.get("store")
    if not isinstance(store, str) or not store:
        raise ValueError("store must be a directory path (a string)")
    n_jobs = check_n_jobs(doc.get("n_jobs", -1))
    executor = doc.get("executor", "loky")
    if executor not in ("loky", "threading", "sequential"):
        raise ValueError(f"executor must be 'loky', 'threading' or 'sequential' in a config; got {shown(executor)}")
    fixed, axes = doc.get("fixed", {}), doc.get("grid", {})
    if not isinstance(fixed, dict) or not isinstance(axes, dict):
        raise ValueError("[fixed] and [grid] must be tables")
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid.{name} must be a non-empty list")
    canonical(fixed)
    canonical(axes)
    both = sorted(set(fixed) & set(axes))
    if both:
        raise ValueError(f"{both} appear in both [fixed] and [grid]; give each parameter once")
    names = list(fixed) + list(axes)
    check_params(task, names, fixed)
    for name, values in axes.items():
        for v in values:
            check_params(task, names, {name: v})
    return SweepConfig(task=task, store=(path.parent / store), fixed=fixed, axes=axes, n_jobs=n_jobs,
                       executor=executor)
