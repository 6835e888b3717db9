"""Parameter sweeps that survive interruption: a directory store, joblib or dask, a table at the end.

A sweep runs a *task* -- a plain function of keyword arguments returning a
dict of numbers, strings or short lists -- on every point of a grid:

>>> points = grid(alpha=[0.01, 0.1], seed=[0, 1])
>>> len(points)
4

Every finished point is written at once to the store directory as
``<key>.json``, where ``key`` is a stable hash of the task name and its
canonical parameters; the file is written under a temporary name and renamed,
so an interrupted sweep loses at most the points in flight and a rerun skips
everything already stored. Results are gathered into a table (a
:class:`pandas.DataFrame` when pandas is installed, else a list of dicts).

Execution: joblib's ``loky`` processes by default; ``executor="dask"`` (with a
``distributed.Client`` or a scheduler address) for clusters; or any
:class:`concurrent.futures.Executor`. Progress is shown with tqdm.

Sweeps are also described by TOML files (:func:`load_config`), parsed with
:mod:`tomllib`: tasks are looked up by name in :data:`TASKS`, never imported
or evaluated from the file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import numbers
import os
import tomllib
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from . import diagonal
from ._json import jsonable

__all__ = ["TASKS", "SweepConfig", "Store", "grid", "load_config", "point_key", "run", "table"]

_FORMAT = "solvable.sweep-point/1"


#: Sweepable tasks by name (what a TOML config may ask for).
TASKS: dict[str, Callable[..., dict[str, Any]]] = {"diagonal.limit": diagonal.sweep_limit}


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"sweep parameters must be finite; got {v}")
        return int(v) if v.is_integer() and abs(v) < 2**53 else v  # 1 and 1.0 are the same point
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(value.items())}
    raise TypeError(f"sweep parameters must be numbers, strings, booleans or lists of them; got {type(value).__name__}")


def point_key(task: str, params: Mapping[str, Any]) -> str:
    """Stable hash of a task name and its parameters (key order and int/float spelling do not matter)."""
    canon = json.dumps({"task": task, "params": _canonical(dict(params))}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:24]


def grid(**axes: Iterable[Any]) -> list[dict[str, Any]]:
    """The Cartesian product of parameter lists, as a list of dicts (last axis fastest)."""
    names = list(axes)
    values = []
    for name in names:
        vals = list(axes[name]) if not isinstance(axes[name], (str, bytes)) else None
        if not vals:
            raise ValueError(f"grid axis {name!r} must be a non-empty list of values")
        values.append(vals)
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


@dataclass(frozen=True)
class Store:
    """A directory of finished points, one JSON file each."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        self.path.mkdir(parents=True, exist_ok=True)

    def file(self, key: str) -> Path:
        return self.path / f"{key}.json"

    def has(self, key: str) -> bool:
        return self.file(key).exists()

    def write(self, key: str, task: str, params: Mapping[str, Any], result: Mapping[str, Any]) -> None:
        doc = {"format": _FORMAT, "task": task, "params": _canonical(dict(params)), "result": _jsonable(result)}
        final = self.file(key)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, sort_keys=True))
        os.replace(tmp, final)  # atomic: a reader sees the whole point or none of it

    def read(self, key: str) -> dict[str, Any]:
        """One stored point (``params`` and ``result``); a malformed file raises ValueError."""
        try:
            doc = json.loads(self.file(key).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"cannot read sweep point {self.file(key)}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT or not isinstance(doc.get("result"), dict):
            raise ValueError(f"{self.file(key)} is not a {_FORMAT} file")
        return doc

    def records(self) -> list[dict[str, Any]]:
        """Every stored point as one flat record (parameters and results side by side)."""
        out = []
        for f in sorted(self.path.glob("*.json")):
            doc = self.read(f.stem)
            out.append({**doc["params"], **doc["result"], "task": doc["task"], "key": f.stem})
        return out


def _jsonable(x: Any) -> Any:
    try:
        return jsonable(x, strict=True)
    except TypeError as exc:
        raise TypeError(f"a sweep task must return numbers, strings or lists: {exc}") from exc


def _call(task: Callable[..., Mapping[str, Any]], params: dict[str, Any]) -> dict[str, Any]:
    result = task(**params)
    if not isinstance(result, Mapping):
        raise TypeError(f"a sweep task must return a dict; got {type(result).__name__}")
    return _jsonable(result)


def table(records: list[dict[str, Any]]) -> Any:
    """Records as a :class:`pandas.DataFrame` if pandas is installed, else as they are."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas ships with the test and dask extras
        return records
    return pd.DataFrame.from_records(records)


def run(
    task: str | Callable[..., Mapping[str, Any]],
    points: Iterable[Mapping[str, Any]],
    store: str | os.PathLike | Store,
    *,
    executor: str | Executor = "loky",
    n_jobs: int = -1,
    client: Any = None,
    progress: bool = True,
) -> Any:
    """Run ``task`` on every point not already in ``store``; return the table of all points asked for.

    Parameters
    ----------
    task : str or callable
        A name in :data:`TASKS` or a picklable module-level function.
    points : iterable of dict
        Keyword arguments of each call (see :func:`grid`).
    store : path or Store
        Directory holding one JSON file per finished point.
    executor : {"loky", "threading", "sequential", "dask"} or concurrent.futures.Executor
    n_jobs : int
        Parallel workers for joblib backends (-1: all cores).
    client : distributed.Client or str, optional
        With ``executor="dask"``: the client, or a scheduler address to connect to.
    progress : bool
        Show a tqdm progress bar.
    """
    from tqdm import tqdm

    name = task if isinstance(task, str) else getattr(task, "__qualname__", repr(task))
    if isinstance(task, str):
        if task not in TASKS:
            raise ValueError(f"task must be one of {sorted(TASKS)}; got {task!r}")
        fn = TASKS[task]
    elif callable(task):
        fn = task
    else:
        raise TypeError("task must be a task name or a callable")
    st = store if isinstance(store, Store) else Store(Path(store))
    pts = [dict(p) for p in points]
    keys = [point_key(name, p) for p in pts]
    todo = [(k, p) for k, p in zip(keys, pts) if not st.has(k)]
    todo = list({k: p for k, p in todo}.items())  # a point asked twice runs once
    bar = tqdm(total=len(todo), desc=f"sweep {name}", unit="point", disable=not progress, leave=False)
    try:
        if isinstance(executor, Executor):
            futures = {executor.submit(_call, fn, p): (k, p) for k, p in todo}
            for fut in as_completed(futures):
                k, p = futures[fut]
                st.write(k, name, p, fut.result())
                bar.update()
        elif executor in ("loky", "threading", "sequential", "dask"):
            import joblib

            if executor == "dask":
                try:
                    import distributed
                except ImportError as exc:
                    raise ImportError("executor='dask' needs dask.distributed: pip install 'solvable[dask]'") from exc
                if client is None:
                    raise ValueError("executor='dask' needs client= (a distributed.Client or a scheduler address)")
                if isinstance(client, str):
                    client = distributed.Client(client)
                ctx = joblib.parallel_config(backend="dask")
            else:
                ctx = joblib.parallel_config(backend=executor, n_jobs=1 if executor == "sequential" else n_jobs)
            with ctx:
                parallel = joblib.Parallel(return_as="generator_unordered")
                jobs = (joblib.delayed(_keyed)(fn, k, p) for k, p in todo)
                for k, p, result in parallel(jobs):
                    st.write(k, name, p, result)
                    bar.update()
        else:
            raise ValueError(f"executor must be 'loky', 'threading', 'sequential', 'dask' or an Executor; got {executor!r}")
    finally:
        bar.close()
    records = []
    for k, p in zip(keys, pts):
        doc = st.read(k)
        records.append({**p, **doc["result"]})
    return table(records)


def _keyed(fn: Callable[..., Mapping[str, Any]], key: str, params: dict[str, Any]) -> tuple[str, dict, dict]:
    return key, params, _call(fn, params)


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
    booleans or lists of them. Nothing in the file is imported or evaluated.
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
    if not isinstance(task, str) or task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}; got {task!r}")
    store = doc.get("store")
    if not isinstance(store, str) or not store:
        raise ValueError("store must be a directory path (a string)")
    fixed, axes = doc.get("fixed", {}), doc.get("grid", {})
    if not isinstance(fixed, dict) or not isinstance(axes, dict):
        raise ValueError("[fixed] and [grid] must be tables")
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid.{name} must be a non-empty list")
    _canonical(fixed)
    _canonical(axes)
    n_jobs = doc.get("n_jobs", -1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer; got {n_jobs!r}")
    executor = doc.get("executor", "loky")
    if executor not in ("loky", "threading", "sequential"):
        raise ValueError(f"executor must be 'loky', 'threading' or 'sequential' in a config; got {executor!r}")
    return SweepConfig(task=task, store=(path.parent / store), fixed=fixed, axes=axes, n_jobs=n_jobs,
                       executor=executor)
