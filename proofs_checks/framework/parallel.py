"""Claims in parallel: worker processes on this machine (``verify -j N``) or a dask cluster (``--scheduler``).

A claim's check is a pure function of its :class:`~proofs_checks.framework.registry.Context`, so where it runs does not change
its result; what must not be split is a *measurement* two claims share (:func:`registry.measurement`, cached per
process). :func:`claim_groups` finds, from each check's code, the measurements it reads, and joins claims that read
one into a group that a single worker runs in order, so every measurement is still computed once.

Each worker gets its share of the machine's BLAS threads (``threadpoolctl``): N processes each running the full
thread pool of an OpenBLAS oversubscribe the cores and the Monte Carlo claims slow down several-fold.

A worker that dies mid-group (killed, out of memory) is retried once on a fresh worker; if it dies again its claims
are reported as ``error`` with the reason, never dropped. The results come back in the order asked for, whatever
order they finished in, and each says where it ran (host and process).
"""

from __future__ import annotations

import dis
import importlib
import inspect
import os
import socket
import types
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Callable, Iterable, Sequence

from solvable.sims.engine._validate import shown

from .registry import Claim, Evidence, _REGISTRY

__all__ = ["Ran", "check_jobs", "claim_groups", "measurements_of", "run_groups", "where"]

_PACKAGE = __package__.rpartition(".")[0]  # solvable.proofs_checks: the claims and this framework


def where() -> str:
    """This process's place: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def check_jobs(jobs: Any) -> int:
    """``jobs`` as a positive int (``-j``): the number of worker processes."""
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise TypeError(f"jobs must be a positive int; got {type(jobs).__name__}")
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1; got {shown(jobs)}")
    return jobs


def _functions_read(fn: Callable, seen: set[int]) -> Iterable[Any]:
    """Module-level objects that ``fn``'s code (and its nested functions' code) loads as globals, or as attributes
    of this package's modules loaded as globals, following the functions of this package that it reaches."""
    fn = inspect.unwrap(fn)  # a measurement's own code may read another measurement
    code = getattr(fn, "__code__", None)
    if code is None or id(code) in seen:
        return
    seen.add(id(code))
    glob = fn.__globals__
    found: list[Any] = []
    stack = [code]
    while stack:
        c = stack.pop()
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
        owner = None  # the package module just loaded, whose attribute may come next
        for ins in dis.get_instructions(c):
            if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") and ins.argval in glob:
                obj = glob[ins.argval]
                found.append(obj)
                owner = obj if isinstance(obj, types.ModuleType) and obj.__name__.startswith(_PACKAGE) else None
                continue
            if ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and owner is not None and hasattr(owner, ins.argval):
                found.append(getattr(owner, ins.argval))
            owner = None
    for obj in found:
        yield obj
        if inspect.isfunction(obj) and obj.__module__.startswith(_PACKAGE):
            yield from _functions_read(obj, seen)


def measurements_of(claim: Claim) -> frozenset[str]:
    """The names of the shared measurements (:func:`registry.measurement`) that ``claim``'s check reads."""
    return frozenset(obj.__measurement__ for obj in _functions_read(claim.check, set())
                     if callable(obj) and hasattr(obj, "__measurement__"))


def claim_groups(claims: Sequence[Claim]) -> list[list[Claim]]:
    """``claims`` partitioned so that claims reading a common measurement share a group (in the given order, groups
    ordered by their first claim)."""
    parent = list(range(len(claims)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, c in enumerate(claims):
        for m in measurements_of(c):
            if m in owner:
                a, b = root(owner[m]), root(i)
                parent[max(a, b)] = min(a, b)
            else:
                owner[m] = i
    groups: dict[int, list[Claim]] = {}
    for i, c in enumerate(claims):
        groups.setdefault(root(i), []).append(c)
    return list(groups.values())


@dataclass(frozen=True)
class Ran:
    """What a worker sends back for one claim: the runner's result without the claim object (its functions are
    not picklable) and without the evidence's score (a closure; its resolution is already computed)."""

    claim_id: str
    verdict: str
    backend: str
    seconds: float
    evidence: Evidence | None
    message: str
    host: str
    retried: bool = False


def _portable(evidence: Evidence | None) -> Evidence | None:
    if evidence is None or evidence.score is None:
        return evidence
    bare = object.__new__(Evidence)
    bare.__dict__.update(evidence.__dict__)
    object.__setattr__(bare, "score", None)
    return bare


def _run_group(run: Callable[..., Any], ids: tuple[str, ...], modules: tuple[str, ...], options: dict[str, Any],
               threads: int | None, retried: bool = False) -> list[Ran]:
    """Worker entry point: ``run(claim, **options)`` for the claims ``ids`` in order, in this process (their
    measurements cached here)."""
    if _STARTED is not None:
        _STARTED.put(ids)
    for name in modules:  # the claims' modules register them on import (a test's claims live outside the families)
        importlib.import_module(name)
    here = where()
    limiter = None
    if threads is not None:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(threads)
    try:
        out = []
        for cid in ids:
            r = run(_REGISTRY[cid], **options)
            out.append(Ran(cid, r.verdict, r.backend, r.seconds, _portable(r.evidence), r.message, here, retried))
        return out
    finally:
        if limiter is not None:
            limiter.restore_original_limits()


#: In a worker process: where it reports each group it starts (set by :func:`_init_worker`).
_STARTED: Any = None


def _init_worker(threads: int, started: Any) -> None:
    """Pool initialiser: the environment variables that BLAS libraries read when they load, and the queue on which
    the worker says which group it starts (so that a broken pool's suspects are known)."""
    global _STARTED
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ[var] = str(threads)
    _STARTED = started


def run_groups(groups: Sequence[Sequence[Claim]], run: Callable[..., Any], options: dict[str, Any], jobs: int = 1,
               scheduler: str | Any = None, on_done: Callable[[list[Ran]], None] | None = None) -> dict[str, Ran]:
    """Run each group on a worker, ``run(claim, **options)`` for each of its claims (a module-level function: it
    travels to the worker by name); ``{claim id: Ran}`` for every claim of every group.

    ``jobs`` worker processes here (spawned, each with ``cpu_count // jobs`` BLAS threads), or, with ``scheduler``
    (a dask.distributed scheduler address or Client), the cluster's workers. When a worker dies the pool cannot say
    whose it was: the groups that had started and not finished are each run again alone, in a pool of their own
    (the retry), the groups not yet started go on as before; a group whose worker dies while it runs alone is
    reported as errors. ``on_done`` is called with each finished group's results (the progress bar).
    """
    check_jobs(jobs)
    work = [(tuple(c.id for c in g), tuple(sorted({c.check.__module__ for c in g}))) for g in groups]
    out: dict[str, Ran] = {}

    def finish(ran: list[Ran]) -> None:
        for r in ran:
            out[r.claim_id] = r
        if on_done is not None:
            on_done(ran)

    def lost(ids: tuple[str, ...], why: str) -> list[Ran]:
        return [Ran(cid, "error", options.get("backend", "numpy"), 0.0, None,
                    f"its worker died twice ({why}); not retried again", "", True)
                for cid in ids]

    if scheduler is not None:
        _run_on_dask(work, run, options, scheduler, finish, lost)
        return out
    threads = max(1, (os.cpu_count() or 1) // jobs)
    spawn = get_context("spawn")
    todo, alone = list(work), []
    while todo or alone:
        isolated = not todo
        batch = [alone.pop(0)] if isolated else todo
        todo = []
        started = spawn.SimpleQueue()
        broken: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        with ProcessPoolExecutor(max_workers=1 if isolated else min(jobs, len(batch)), mp_context=spawn,
                                 initializer=_init_worker, initargs=(threads, started)) as pool:
            futures = {pool.submit(_run_group, run, ids, mods, options, threads, isolated): (ids, mods)
                       for ids, mods in batch}
            for fut in as_completed(futures):
                try:
                    finish(fut.result())
                except BrokenProcessPool:
                    broken.append(futures[fut])
        if not broken:
            continue
        if isolated:  # alone in its pool: its own worker died, for the second time
            (ids, _), = broken
            finish(lost(ids, "the second time running alone in its pool: killed, or out of memory"))
            continue
        began = set()
        while not started.empty():
            began.add(started.get())
        alone += [g for g in broken if g[0] in began]
        todo = [g for g in broken if g[0] not in began]
    return out


def _run_on_dask(work: list[tuple[tuple[str, ...], tuple[str, ...]]], run: Callable[..., Any], options: dict[str, Any],
                 scheduler: Any,
                 finish: Callable[[list[Ran]], None], lost: Callable[[tuple[str, ...], str], list[Ran]]) -> None:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError("--scheduler needs dask.distributed: pip install 'solvable[dask]'") from exc
    client = distributed.Client(scheduler) if isinstance(scheduler, str) else scheduler
    try:
        pending = {client.submit(_run_group, run, ids, mods, options, None, pure=False): (ids, mods, 0)
                   for ids, mods in work}
        done = distributed.as_completed(list(pending))
        for fut in done:
            ids, mods, tried = pending.pop(fut)
            try:
                finish(fut.result())
            except distributed.KilledWorker as exc:
                if tried:
                    finish(lost(ids, str(exc)))
                else:
                    again = client.submit(_run_group, run, ids, mods, options, None, True, pure=False)
                    pending[again] = (ids, mods, 1)
                    done.add(again)
    finally:
        if isinstance(scheduler, str):
            client.close()
