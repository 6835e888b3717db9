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
import inspect
import json
import os
import sys
import time
import traceback
from concurrent.futures import Executor, as_completed
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from ..engine._validate import shown
from .config import TASKS, SweepConfig, check_n_jobs, check_params, get_task, grid, load_config
from .store import Store, canonical, json_result, point_key

__all__ = ["run", "table", "task_id"]


def task_id(task: Callable[..., Any]) -> str:
    """A stable identity for a task: ``module:qualname``, plus the canonical bound arguments of a partial.

    ``module`` is the shortest package path that exports the very function under its name (a family's face,
    ``solvable.sims.diagonal``, rather than the file inside it that defines it), so moving a task between the files
    of a package keeps the keys of the points already stored.

    Raises
    ------
    ValueError
        For a lambda, a closure or a nested function (it cannot be found
        again by name, so a resumed sweep could not tell its points apart).
    TypeError
        For anything else that is not a plain function or a partial of one.
    """
    if isinstance(task, functools.partial):
        bound = {"args": canonical(list(task.args)), "keywords": canonical(dict(task.keywords))}
        return f"{task_id(task.func)}{json.dumps(bound, sort_keys=True, separators=(',', ':'))}"
    qualname, module = getattr(task, "__qualname__", None), getattr(task, "__module__", None)
    if not inspect.isfunction(task) or not qualname or not module:
        raise TypeError(f"a sweep task must be a module-level function or a functools.partial of one; "
                        f"got {type(task).__name__}")
    if "<lambda>" in qualname or "<locals>" in qualname:
        raise ValueError(f"a sweep task must be a module-level function: {module}.{qualname} is a lambda or a "
                         f"closure, which a resumed sweep cannot find again (use functools.partial to fix arguments)")
    return f"{_public_module(task, module, qualname)}:{qualname}"


def _public_module(task: Callable[..., Any], module: str, qualname: str) -> str:
    """The shortest loaded parent of ``module`` whose attribute ``qualname`` is ``task`` itself, else ``module``."""
    parts = module.split(".")
    for k in range(1, len(parts)):
        parent = sys.modules.get(".".join(parts[:k]))
        if parent is not None and getattr(parent, qualname, None) is task:
            return ".".join(parts[:k])
    return module


def _keyed(fn: Callable[..., Mapping[str, Any]], key: str, params: dict[str, Any]) -> tuple[str, dict | None, str | None]:
    """Run one point; a raising task gives its traceback instead of a result (the sweep goes on)."""
    try:
        result = fn(**params)
        if not isinstance(result, Mapping):
            raise TypeError(f"a sweep task must return a dict; got {type(result).__name__}")
        return key, json_result(result), None
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
        raise ValueError(f"executor must be 'loky', 'threading', 'sequential', 'dask' or an Executor; got {shown(executor)}")
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
        if isinstance(client, str):  # a connection of our own: closed when the sweep ends, not left to reconnect
            with distributed.Client(client) as own, joblib.parallel_config(backend="dask", client=own):
                yield from joblib.Parallel(return_as="generator_unordered")(
                    joblib.delayed(_keyed)(fn, k, p) for k, p in todo)
            return
        ctx = joblib.parallel_config(backend="dask", client=client)
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
    check_n_jobs(n_jobs)
    st = store if isinstance(store, Store) else Store(Path(store))
    pts = [dict(p) for p in points]
    for k, p in enumerate(pts):  # every point before any runs: a misspelt key is one error, not a failed point each
        try:
            check_params(task if isinstance(task, str) else fn, p, p)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"point {k} ({shown(p)}): {exc}") from None
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


