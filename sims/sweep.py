"""Parameter sweeps that survive interruption: a directory store, joblib or dask, a table at the end.

A sweep runs a *task* -- a plain function of keyword arguments returning a
dict of numbers, strings or short lists -- on every point of a grid:

>>> points = grid(alpha=[0.01, 0.1], seed=[0, 1])
>>> len(points)
4

Every finished point is written at once to the store directory as
``<key>.json``, where ``key`` is a stable hash of the task's identity and its
canonical parameters; the file is written under a temporary name and renamed,
so an interrupted sweep loses at most the points in flight and a rerun skips
everything already stored. A task is identified by its module and qualified
name, plus the canonical bound arguments when it is a :func:`functools.partial`
(a lambda or a closure cannot be found again, and is refused). A point whose
task raises is stored as *failed* with its traceback; the sweep goes on, the
table marks it (columns ``sweep_status`` and ``sweep_error``), and a rerun
with ``retry_failed=True`` computes it again. Before a point is computed its
store entry is claimed with an exclusive lock file (``<key>.lock``, holding
the claimant's host and process id), so two processes running the same sweep
on one store compute each point once; a lock whose process has died (a
killed sweep) is taken over. Results are gathered into a table (a
:class:`pandas.DataFrame` when pandas is installed, else a list of dicts).

Execution: joblib's ``loky`` processes by default; ``executor="dask"`` (with a
``distributed.Client`` or a scheduler address) for clusters; or any
:class:`concurrent.futures.Executor`. Progress is shown with tqdm.

Sweeps are also described by TOML files (:func:`load_config`), parsed with
:mod:`tomllib`: tasks are looked up by name in :data:`TASKS`, never imported
or evaluated from the file, and the parameters are checked against the task's
signature before anything runs.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import itertools
import json
import math
import numbers
import os
import socket
import time
import tomllib
import traceback
from concurrent.futures import Executor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ._json import jsonable

__all__ = ["TASKS", "SweepConfig", "Store", "check_params", "get_task", "grid", "load_config", "point_key", "run",
           "table", "task_id"]

_FORMAT = "solvable.sweep-point/1"

#: Sweepable tasks by name (what a TOML config may ask for), as ``module:function`` under ``solvable.sims``.
TASKS: dict[str, str] = {
    "diagonal.limit": "diagonal:sweep_limit",
    "deep_linear.limit": "deep_linear:sweep_limit",
    "ufm.collapse": "ufm:sweep_collapse",
}


def get_task(name: str) -> Callable[..., dict[str, Any]]:
    """The function behind a task name of :data:`TASKS`."""
    if not isinstance(name, str) or name not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}; got {name!r}")
    module, qualname = TASKS[name].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module}"), qualname)


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


def task_id(task: Callable[..., Any]) -> str:
    """A stable identity for a task: ``module:qualname``, plus the canonical bound arguments of a partial.

    Raises
    ------
    ValueError
        For a lambda, a closure or a nested function (it cannot be found
        again by name, so a resumed sweep could not tell its points apart).
    TypeError
        For anything else that is not a plain function or a partial of one.
    """
    if isinstance(task, functools.partial):
        bound = {"args": _canonical(list(task.args)), "keywords": _canonical(dict(task.keywords))}
        return f"{task_id(task.func)}{json.dumps(bound, sort_keys=True, separators=(',', ':'))}"
    qualname, module = getattr(task, "__qualname__", None), getattr(task, "__module__", None)
    if not inspect.isfunction(task) or not qualname or not module:
        raise TypeError(f"a sweep task must be a module-level function or a functools.partial of one; "
                        f"got {type(task).__name__}")
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise ValueError(f"a sweep task must be a module-level function: {module}.{qualname} is a lambda or a "
                         f"closure, which a resumed sweep cannot find again (use functools.partial to fix arguments)")
    return f"{module}:{qualname}"


def point_key(task: str, params: Mapping[str, Any]) -> str:
    """Stable hash of a task identity and its parameters (key order and int/float spelling do not matter)."""
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's live process
        return True
    return True


@dataclass(frozen=True)
class Store:
    """A directory of finished points, one JSON file each, and the lock files of points being computed."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        self.path.mkdir(parents=True, exist_ok=True)

    def file(self, key: str) -> Path:
        return self.path / f"{key}.json"

    def lock(self, key: str) -> Path:
        return self.path / f"{key}.lock"

    def has(self, key: str) -> bool:
        return self.file(key).exists()

    def failed(self, key: str) -> bool:
        return self.has(key) and self.read(key).get("status") == "failed"

    def claim(self, key: str) -> bool:
        """Take the exclusive right to compute ``key``; False if it is stored or another live process holds it."""
        if self.has(key):
            return False
        me = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.lock(key), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._stale(key):
                    return False
                self.lock(key).unlink(missing_ok=True)  # its process died: take the point over
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(me)
            if self.has(key):  # finished by its previous holder just before we took the lock
                self.release(key)
                return False
            return True
        return False

    def _stale(self, key: str) -> bool:
        try:
            host, pid = self.lock(key).read_text().split()
        except (OSError, ValueError):
            return False  # being written right now
        return host == socket.gethostname() and not _alive(int(pid))

    def release(self, key: str) -> None:
        self.lock(key).unlink(missing_ok=True)

    def write(self, key: str, task: str, params: Mapping[str, Any], result: Mapping[str, Any] | None = None, *,
              error: str | None = None) -> None:
        """Store a finished point (``result``) or a failed one (``error``: its traceback), then release its lock."""
        doc = {"format": _FORMAT, "task": task, "params": _canonical(dict(params)),
               "status": "failed" if error is not None else "ok",
               "result": {} if result is None else _jsonable(result)}
        if error is not None:
            doc["error"] = error
        final = self.file(key)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc, sort_keys=True))
        os.replace(tmp, final)  # atomic: a reader sees the whole point or none of it
        self.release(key)

    def read(self, key: str) -> dict[str, Any]:
        """One stored point (``params``, ``status``, ``result``); a malformed file raises ValueError."""
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
            out.append({**doc["params"], **doc["result"], "task": doc["task"], "key": f.stem,
                        "sweep_status": doc.get("status", "ok"), "sweep_error": doc.get("error", "")})
        return out


def _jsonable(x: Any) -> Any:
    try:
        return jsonable(x, strict=True)
    except TypeError as exc:
        raise TypeError(f"a sweep task must return numbers, strings or lists: {exc}") from exc


def _keyed(fn: Callable[..., Mapping[str, Any]], key: str, params: dict[str, Any]) -> tuple[str, dict | None, str | None]:
    """Run one point; a raising task gives its traceback instead of a result (the sweep goes on)."""
    try:
        result = fn(**params)
        if not isinstance(result, Mapping):
            raise TypeError(f"a sweep task must return a dict; got {type(result).__name__}")
        return key, _jsonable(result), None
    except Exception:  # any failure of the task is the point's result
        return key, None, traceback.format_exc()


def table(records: list[dict[str, Any]]) -> Any:
    """Records as a :class:`pandas.DataFrame` if pandas is installed, else as they are."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas ships with the test and dask extras
        return records
    return pd.DataFrame.from_records(records)


def _resolve(task: str | Callable[..., Mapping[str, Any]]) -> tuple[str, Callable[..., Mapping[str, Any]]]:
    if isinstance(task, str):
        return task, get_task(task)
    if callable(task):
        return task_id(task), task
    raise TypeError("task must be a task name or a module-level function (or a functools.partial of one)")


def _submit(fn: Callable, todo: Iterable[tuple[str, dict]], executor: str | Executor, n_jobs: int,
            client: Any) -> Iterable[tuple[str, dict | None, str | None]]:
    """Results of ``todo`` as they finish, on the chosen executor (``todo`` is consumed as points are dispatched)."""
    if isinstance(executor, Executor):
        futures = [executor.submit(_keyed, fn, k, p) for k, p in todo]
        for fut in as_completed(futures):
            yield fut.result()
        return
    if executor not in ("loky", "threading", "sequential", "dask"):
        raise ValueError(f"executor must be 'loky', 'threading', 'sequential', 'dask' or an Executor; got {executor!r}")
    if executor == "sequential":
        for k, p in todo:
            yield _keyed(fn, k, p)
        return
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
        ctx = joblib.parallel_config(backend=executor, n_jobs=n_jobs)
    with ctx:
        yield from joblib.Parallel(return_as="generator_unordered")(joblib.delayed(_keyed)(fn, k, p) for k, p in todo)


def run(
    task: str | Callable[..., Mapping[str, Any]],
    points: Iterable[Mapping[str, Any]],
    store: str | os.PathLike | Store,
    *,
    executor: str | Executor = "loky",
    n_jobs: int = -1,
    client: Any = None,
    progress: bool = True,
    retry_failed: bool = False,
    poll: float = 0.2,
) -> Any:
    """Run ``task`` on every point not already in ``store``; return the table of all points asked for.

    Parameters
    ----------
    task : str or callable
        A name in :data:`TASKS`, a module-level function, or a
        :func:`functools.partial` of one (see :func:`task_id`).
    points : iterable of dict
        Keyword arguments of each call (see :func:`grid`).
    store : path or Store
        Directory holding one JSON file per finished (or failed) point.
    executor : {"loky", "threading", "sequential", "dask"} or concurrent.futures.Executor
    n_jobs : int
        Parallel workers for joblib backends (-1: all cores).
    client : distributed.Client or str, optional
        With ``executor="dask"``: the client, or a scheduler address to connect to.
    progress : bool
        Show a tqdm progress bar.
    retry_failed : bool
        Compute again the points stored as failed.
    poll : float
        Seconds between looks at points another live process is computing.

    Returns
    -------
    table
        One row per point asked for: its parameters, the task's results, and
        ``sweep_status`` (``"ok"`` or ``"failed"``) with ``sweep_error`` (the
        last line of the traceback; the whole one is in the point's file).
    """
    from tqdm import tqdm

    name, fn = _resolve(task)
    st = store if isinstance(store, Store) else Store(Path(store))
    pts = [dict(p) for p in points]
    keys = [point_key(name, p) for p in pts]
    if retry_failed:
        for k in set(keys):
            if st.failed(k):
                st.file(k).unlink(missing_ok=True)
    remaining = list({k: p for k, p in zip(keys, pts) if not st.has(k)}.items())  # a point asked twice runs once
    bar = tqdm(total=len(remaining), desc=f"sweep {name}", unit="point", disable=not progress, leave=False)
    try:
        while remaining:
            params: dict[str, dict] = {}  # claimed, not yet stored

            def claimed() -> Iterable[tuple[str, dict]]:
                # claims are taken as points are dispatched, so processes sharing a store share the work
                for k, p in remaining:
                    if st.claim(k):
                        params[k] = p
                        yield k, p

            computed = 0
            try:
                for key, result, error in _submit(fn, claimed(), executor, n_jobs, client):
                    st.write(key, name, params.pop(key), result, error=error)
                    computed += 1
                    bar.update()
            finally:
                for key in params:  # claimed but not finished (an exception or an interrupt): let others take them
                    st.release(key)
            remaining = [(k, p) for k, p in remaining if not st.has(k)]
            if remaining and not computed:
                time.sleep(poll)  # another process holds them: wait for its results
    finally:
        bar.close()
    records = []
    for k, p in zip(keys, pts):
        doc = st.read(k)
        error = doc.get("error", "")
        records.append({**p, **doc["result"], "sweep_status": doc.get("status", "ok"),
                        "sweep_error": error.strip().splitlines()[-1] if error else ""})
    return table(records)


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


def check_params(task: str, names: Iterable[str], values: Mapping[str, Any] | None = None) -> None:
    """Check parameter names (and, where the task annotates them, value types) against a task's signature.

    Raises ValueError naming an unknown or missing parameter and the accepted
    ones, or TypeError naming a value of the wrong type.
    """
    sig = inspect.signature(get_task(task))
    accepted = [p for p in sig.parameters.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    allowed = {p.name for p in accepted}
    given = set(names)
    unknown = sorted(given - allowed)
    if unknown:
        raise ValueError(f"task {task!r} has no parameter {', '.join(map(repr, unknown))}; "
                         f"its parameters are {sorted(allowed)}")
    missing = sorted(p.name for p in accepted if p.default is inspect.Parameter.empty and p.name not in given)
    if missing:
        raise ValueError(f"task {task!r} needs {', '.join(map(repr, missing))}; give them in [fixed] or [grid]")
    kinds = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,)}
    for name, value in (values or {}).items():
        ann = str(sig.parameters[name].annotation)
        want = [kinds[t.strip()] for t in ann.split("|") if t.strip() in kinds]
        if not want or (value is None and "None" in ann):
            continue
        ok = any(isinstance(value, k) and not (isinstance(value, bool) and bool not in k) for k in want)
        if not ok:
            raise TypeError(f"task {task!r}: {name} must be {ann}; got {value!r}")


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
    n_jobs = doc.get("n_jobs", -1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a non-zero integer; got {n_jobs!r}")
    executor = doc.get("executor", "loky")
    if executor not in ("loky", "threading", "sequential"):
        raise ValueError(f"executor must be 'loky', 'threading' or 'sequential' in a config; got {executor!r}")
    fixed, axes = doc.get("fixed", {}), doc.get("grid", {})
    if not isinstance(fixed, dict) or not isinstance(axes, dict):
        raise ValueError("[fixed] and [grid] must be tables")
    for name, values in axes.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"grid.{name} must be a non-empty list")
    _canonical(fixed)
    _canonical(axes)
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
