"""The ``solvable`` command line (also ``python -m proofs_checks``).

``solvable verify``   run the claims, print a table, write a report; exit 1 if any fails
``solvable list``     list the registered claims
``solvable figure``   reproduce a paper figure (or all of them)
``solvable sweep``    run a parameter sweep described in a TOML file (resumable)
``solvable info``     the backends found, their devices, the BLAS in use and its threads
``solvable check``    search a claim's hypothesis space for a counterexample and shrink it
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from solvable.sims.engine._validate import shown
from solvable.sims.engine.backend import BACKENDS, DTYPES, namespace, resolve_device
from solvable.sims.engine.trajectory import environment

from . import registry
from .report import FigureError, check_json_path, check_report_dir, format_table, slowest, write_json, write_report
from .runner import run_claims

__all__ = ["main"]


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--seed must be a non-negative integer; got {shown(text)}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"--seed must be a non-negative integer; got {value}")
    return value


def _bounded(flag: str, cast: type, low: float, *, strict: bool) -> Callable[[str], Any]:
    """An argparse type: ``cast(text)`` at least ``low`` (above it if ``strict``), else an error naming the flag
    and the accepted range."""
    rng = f"{'>' if strict else '>='} {low:g}"

    def parse(text: str) -> Any:
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be {'an integer' if cast is int else 'a number'} {rng}; "
                                             f"got {shown(text)}") from None
        if not (value > low if strict else value >= low) or value != value:
            raise argparse.ArgumentTypeError(f"{flag} must be {rng}; got {shown(value)}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="solvable", description="Solvable models of deep-learning theory, checked.")
    sub = p.add_subparsers(dest="command", required=True)

    v = sub.add_parser("verify", help="run the claims and write a report")
    v.add_argument("--model", choices=registry.MODELS, help="only this model family")
    v.add_argument("--claim", action="append", metavar="ID", help="only this claim (repeatable)")
    v.add_argument("--backend", default="numpy", choices=sorted(BACKENDS), help="array backend for the simulations")
    v.add_argument("--device", help="the backend's device: cuda, cuda:N for torch; an ordinal for cupy "
                                    "(default: the backend's own; see `solvable info`)")
    v.add_argument("--quick", action="store_true", help="small sizes (seconds per claim), as in the test suite")
    v.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="run the claim at this point of its parameter space (repeatable; see `solvable check --list`)")
    v.add_argument("--seed", type=_seed, default=0, help="seed of every random draw (default 0)")
    v.add_argument("--dtype", default="float64", choices=DTYPES, help="precision of the simulations")
    v.add_argument("--report", metavar="DIR",
                   help="report directory (default ./report, or ./report-quick with --quick: never mixed up)")
    v.add_argument("--no-report", action="store_true", help="do not write the report directory")
    v.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    v.add_argument("--no-timing", action="store_true", help="leave run times out of the JSON (bit-identical reruns)")
    v.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    v.add_argument("-j", "--jobs", type=_bounded("--jobs", int, 1, strict=False), default=1, metavar="N",
                   help="run the claims in N worker processes, each with its share of the BLAS threads (claims "
                        "that share a measurement run together; the results are those of the serial run)")
    v.add_argument("--scheduler", metavar="ADDRESS",
                   help="run the claims on this dask.distributed scheduler's workers (e.g. tcp://host:8786)")

    ls = sub.add_parser("list", help="list the registered claims")
    ls.add_argument("--model", choices=registry.MODELS)

    f = sub.add_parser("figure", help="reproduce a paper figure")
    f.add_argument("name", nargs="?", help="figure name (see `solvable figure --list`)")
    f.add_argument("--all", action="store_true", help="every figure")
    f.add_argument("--list", action="store_true", help="list the figures")
    f.add_argument("--out", default="figures_out", metavar="DIR", help="output directory (default ./figures_out)")
    f.add_argument("--quick", action="store_true", help="small sizes")
    f.add_argument("--backend", default="numpy", choices=sorted(BACKENDS),
                   help="array backend for the figure's simulations (with --all, the figures that compute on the "
                        "host stay there)")
    f.add_argument("--device", help="the backend's device, as for verify")
    f.add_argument("--store", metavar="DIR",
                   help="a figure computed as a sweep (diagonal_phase): its store (default <out>/stores/<name>); a "
                        "rerun resumes there, and a store computed elsewhere on the same grid is drawn as it is")
    f.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sw = sub.add_parser("sweep", help="run a parameter sweep described in a TOML file")
    sw.add_argument("config", nargs="?", help="TOML file: task, store, [fixed], [grid] (see solvable.sims.sweep)")
    sw.add_argument("--n-jobs", type=int, help="parallel workers (overrides the file)")
    sw.add_argument("--scheduler", metavar="ADDRESS",
                    help="run the points on this dask.distributed scheduler's workers (overrides the file's executor)")
    sw.add_argument("--out", metavar="CSV", help="table file (default: <store>/table.csv)")
    sw.add_argument("--retry-failed", action="store_true", help="compute again the points stored as failed")
    sw.add_argument("--list-tasks", action="store_true", help="list the sweepable tasks and their parameters")
    sw.add_argument("--no-progress", action="store_true")

    c = sub.add_parser("check", help="search a claim's hypothesis space for a counterexample and shrink it, or run "
                                      "claims over seeds (--seeds): their false-alarm rate, measured")
    c.add_argument("claim", nargs="*", help="claim id (see --list); with --seeds any number of them (default: every "
                                            "claim, or --model's)")
    c.add_argument("--seeds", metavar="SEEDS", help="run the claims at these seeds instead of searching (e.g. 1-20 or "
                                                    "1,4,9) and report, per claim, how many passed, the seeds that "
                                                    "failed, the smallest margin and the coarsest resolution")
    c.add_argument("--model", choices=registry.MODELS, help="with --seeds: only this family's claims")
    c.add_argument("--json", metavar="FILE", help="with --seeds: write every verdict and the summary as JSON")
    c.add_argument("--table", nargs=2, metavar=("QUICK.json", "FULL.json"),
                   help="print the Markdown table of two --seeds runs (quick and full sizes), as the README shows it")
    c.add_argument("--list", action="store_true", help="the claims that declare a space, with their parameters")
    c.add_argument("--examples", type=_bounded("--examples", int, 1, strict=False), default=30, help="points to try (default 30)")
    c.add_argument("--seed", type=_seed, help="seed of the search and of the claim's draws: a reproducible search "
                                              "(default: a fresh one that keeps its failures in the report's "
                                              "example database and replays them first)")
    c.add_argument("--time-budget", type=_bounded("--time-budget", float, 0, strict=True), metavar="SECONDS", help="start no new point after this")
    c.add_argument("--min-examples", type=_bounded("--min-examples", int, 1, strict=False), default=1, metavar="N",
                   help="points run whatever the time budget (default 1)")
    c.add_argument("--shrink-budget", type=_bounded("--shrink-budget", float, 0, strict=False), default=120.0,
                   metavar="SECONDS",
                   help="seconds of shrinking after the first failure (default 120)")
    c.add_argument("--set", action="append", metavar="KEY=VALUE", default=[], help="hold a parameter fixed")
    c.add_argument("--full", action="store_true", help="full sizes at each point (default: quick)")
    c.add_argument("--backend", default="numpy", choices=sorted(BACKENDS))
    c.add_argument("--device", help="the backend's device, as for verify")
    c.add_argument("--report", metavar="DIR",
                   help="report directory whose check/ folder gets the explored points, their plot and hypothesis's "
                        "example database (default ./report-quick, or ./report with --full: the next `solvable "
                        "verify` report there shows them)")
    c.add_argument("--no-progress", action="store_true")

    i = sub.add_parser("info", help="the backends found, their devices, the BLAS in use and its threads")
    i.add_argument("--json", action="store_true", help="print JSON")
    return p


def _parse_sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set takes KEY=VALUE; got {shown(item)}")
        out[key.strip()] = value.strip()
    return out


def _seeds(args: argparse.Namespace) -> int:
    """``solvable check --seeds``: the claims over seeds, a table of their passes, exit 1 if any failed."""
    from .seeds import format_seeds, parse_seeds, run_seeds, summarise, write_seeds

    seeds = parse_seeds(args.seeds)
    claims = [registry.get(c) for c in args.claim] if args.claim else registry.all_claims(args.model)
    if args.json:
        check_json_path(args.json)
    if _backend_missing(args):
        return 2

    def show(rec) -> None:
        if not args.no_progress:
            print(f"  seed {rec.seed:>3}  {rec.claim:<45} {rec.verdict:<11} margin "
                  f"{'-' if rec.margin is None else f'{rec.margin:.3f}'}  {rec.seconds:.1f} s", file=sys.stderr,
                  flush=True)

    print(f"running {len(claims)} claim(s) at {len(seeds)} seed(s) ({'full' if args.full else 'quick'} sizes)",
          file=sys.stderr)
    records = run_seeds(claims, seeds, quick=not args.full, backend=args.backend, device=args.device, progress=show)
    summary = summarise(records)
    print(format_seeds(summary))
    if args.json:
        write_seeds(records, args.json, {"seeds": seeds, "quick": not args.full, "backend": args.backend,
                                         "versions": environment(), "command": "solvable " + " ".join(sys.argv[1:])})
        print(f"results: {args.json}")
    return 0 if all(s.ok for s in summary) else 1


def _check(args: argparse.Namespace) -> int:
    from .search import reproducer, search, write_search

    if args.table:
        from .seeds import load_seeds, markdown_rows, summarise

        print(markdown_rows(summarise(load_seeds(args.table[0])), summarise(load_seeds(args.table[1]))))
        return 0
    if args.seeds is not None:
        return _seeds(args)
    if args.model or args.json:
        raise ValueError("--model and --json apply to --seeds runs")
    if len(args.claim) > 1:
        raise ValueError("a search takes one claim; --seeds runs several")
    args.claim = args.claim[0] if args.claim else None
    if args.list or not args.claim:
        for c in registry.all_claims():
            if c.space is not None:
                print(f"{c.id}\n{c.space.describe()}")
        return 0
    claim = registry.get(args.claim)
    if claim.space is None:
        with_space = [c.id for c in registry.all_claims() if c.space is not None]
        raise ValueError(f"claim {claim.id} declares no parameter space; these do: {', '.join(with_space)}")
    fixed = claim.space.point(_parse_sets(args.set))
    if _backend_missing(args):
        return 2
    out = check_report_dir(args.report or ("report" if args.full else "report-quick")) / "check"

    def show(probe) -> None:
        if not args.no_progress:
            mark = "ok  " if probe.passed else "FAIL"
            point = dict(sorted(probe.point.items()))
            print(f"  {mark} error/tolerance {probe.ratio:8.3g}  at {point}", file=sys.stderr, flush=True)

    print(f"searching {claim.id} ({'full' if args.full else 'quick'} sizes, "
          f"{'seed ' + str(args.seed) if args.seed is not None else 'fresh draws'}) over\n"
          f"{claim.space.describe()}", file=sys.stderr)
    result = search(claim, examples=args.examples, seed=args.seed, time_budget=args.time_budget,
                    quick=not args.full, backend=args.backend, device=args.device, database=out / "hypothesis-db",
                    fixed=fixed, progress=show, shrink_budget=args.shrink_budget,
                    min_examples=args.min_examples)
    paths = write_search(result, claim, out)
    worst = result.worst
    print(f"{claim.id}: {len(result.probes)} points in {result.seconds:.0f} s (stopped: {result.stopped})")
    if worst is not None:
        print(f"worst error/tolerance {worst.ratio:.3g} at {worst.point}")
    unreached = [p for p in result.probes if not p.reached]
    if unreached:
        print(f"{len(unreached)} point(s) out of the check's reach (neither passed nor failed), e.g. "
              f"{unreached[0].point}: {unreached[0].message}")
    print("explored points: " + ", ".join(str(p) for p in paths))
    if result.counterexample is not None:
        ce = result.counterexample
        print(f"COUNTEREXAMPLE (shrunk): {ce.point}, error/tolerance {ce.ratio:.3g}"
              f"{' (' + ce.message + ')' if ce.message else ''}\nreproduce: "
              f"{reproducer(claim.id, ce.point, quick=not args.full, seed=args.seed or 0)}")
        return 1
    return 0


def _info(args: argparse.Namespace) -> int:
    import json

    from .info import collect, format_info

    info = collect()
    print(json.dumps(info, indent=2) if args.json else format_info(info))
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from solvable.sims import sweep

    if args.list_tasks:
        import inspect

        for name in sorted(sweep.TASKS):
            print(f"{name}{inspect.signature(sweep.get_task(name))}")
        return 0
    if not args.config:
        raise ValueError("give a CONFIG.toml (or --list-tasks)")
    cfg = sweep.load_config(args.config)
    n_jobs = cfg.n_jobs if args.n_jobs is None else sweep.check_n_jobs(args.n_jobs)
    executor = "dask" if args.scheduler else cfg.executor
    result = sweep.run(cfg.task, cfg.points(), cfg.store, executor=executor, n_jobs=n_jobs, client=args.scheduler,
                       progress=not args.no_progress, retry_failed=args.retry_failed)
    out = Path(args.out) if args.out else cfg.store / "table.csv"
    if hasattr(result, "to_csv"):
        result.to_csv(out, index=False)
    else:  # pragma: no cover - without pandas
        import csv

        with open(out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=sorted({k for r in result for k in r}))
            writer.writeheader()
            writer.writerows(result)
    failed = [r for r in (result.to_dict("records") if hasattr(result, "to_dict") else result)
              if r.get("sweep_status") == "failed"]
    print(f"{len(cfg.points())} points, table: {out}")
    if failed:
        print(f"{len(failed)} point(s) failed (tracebacks in their files under {cfg.store}; "
              f"rerun with --retry-failed):", file=sys.stderr)
        for r in failed:
            print(f"  {r['sweep_error']}", file=sys.stderr)
        return 1
    return 0


def _backend_missing(args: argparse.Namespace) -> bool:
    """Check ``--backend`` and ``--device`` before anything runs: an uninstalled backend is one message
    (True: exit 2), not a table of "unsupported"; a device the backend lacks raises ValueError (exit 2)."""
    try:
        resolve_device(namespace(args.backend), args.device)
    except ImportError as exc:
        print(f"solvable {args.command}: {exc}", file=sys.stderr)
        return True
    return False


def _verify(args: argparse.Namespace) -> int:
    if _backend_missing(args):
        return 2
    report = None if args.no_report else check_report_dir(args.report or ("report-quick" if args.quick else "report"))
    if args.json:
        check_json_path(args.json, report)
    if args.claim:
        claims = [registry.get(c) for c in args.claim]
    else:
        claims = registry.all_claims(args.model)
    point = None
    if args.set:
        values = _parse_sets(args.set)
        if not args.claim:
            raise ValueError("--set runs named claims at a point: give --claim ID")
        for c in claims:
            if c.space is None:
                raise ValueError(f"claim {c.id} declares no parameter space; --set applies to the claims that do "
                                 f"(`solvable check --list`)")
            point = c.space.point(values)
    results = run_claims(claims, backend=args.backend, quick=args.quick, seed=args.seed, dtype=args.dtype,
                         progress=not args.no_progress, device=args.device, point=point, jobs=args.jobs,
                         scheduler=args.scheduler, expected=_last_times(report, args.quick))
    print(format_table(results))
    print(slowest(results))
    meta = {"backend": args.backend, "device": args.device, "point": point, "quick": args.quick, "seed": args.seed, "dtype": args.dtype,
            "versions": environment(), "command": "solvable " + " ".join(sys.argv[1:])}
    status = 0 if all(r.ok for r in results) else 1
    # power is part of a claim's contract at its own sizes (a point of its space has other sizes)
    weak = [r.claim.id for r in results if not r.keeps_power]
    if weak and point is None:
        print(f"solvable verify: these claims resolve less than they promise or accept a named alternative: "
              f"{', '.join(weak)}", file=sys.stderr)
        status = 1
    if report is not None:
        try:
            print(f"report: {write_report(results, report, meta)}")
        except FigureError as exc:
            print(f"report: {exc.index} (incomplete)\nsolvable verify: {exc}", file=sys.stderr)
            status = 1
    if args.json:
        write_json(results, args.json, meta, timing=not args.no_timing)
        print(f"results: {args.json}")
    return status


def _last_times(report: Path | None, quick: bool) -> dict[str, float]:
    """Seconds per claim from the report directory's last run of the same size (the longest start first)."""
    try:
        doc = json.loads((report / "results.json").read_text())
        if bool(doc["meta"].get("quick")) != quick:
            return {}
        return {c["id"]: float(c["seconds"]) for c in doc["claims"] if "seconds" in c}
    except (OSError, TypeError, ValueError, KeyError):  # no earlier run, or one written without times
        return {}


def _list(args: argparse.Namespace) -> int:
    claims = registry.all_claims(args.model)
    width = max((len(c.id) for c in claims), default=5)
    for c in claims:
        print(f"{c.id.ljust(width)}  [{c.kind}, backends: {c.backends}]  {c.source}\n{' ' * width}  {c.statement}")
    return 0


def _figure(args: argparse.Namespace) -> int:
    from solvable import figures

    if args.list:
        for name in figures.names():
            print(name)
        return 0
    if args.all == bool(args.name):
        raise SystemExit("solvable figure: give a figure NAME or --all (see --list)")
    if args.store is not None and args.all:
        raise SystemExit("solvable figure: --store belongs to one figure computed as a sweep; name it")
    names = figures.names() if args.all else [args.name]
    on_device = args.backend != "numpy" or args.device is not None
    if _backend_missing(args):
        return 2
    # --all on a backend: the figures that compute on the host run there and say so; one named figure that
    # cannot take the backend is refused by figures.make
    chosen = set(figures.on_backends()) if on_device and args.all else set(names)
    out = Path(args.out)
    size = "quick" if args.quick else "full-size"
    from tqdm import tqdm

    with tqdm(names, desc="figures", unit="figure", disable=len(names) == 1 or args.no_progress) as bar:
        for name in bar:
            bar.set_postfix_str(name)
            print(f"computing {name} ({size}{'' if args.quick else ': simulations can take minutes'})...",
                  file=sys.stderr, flush=True)
            start = time.perf_counter()
            kw = {"backend": args.backend, "device": args.device} if name in chosen else {}
            if args.store is not None:
                kw["store"] = args.store
            where = "" if name in chosen or not on_device else "  (computed on the host: NumPy only)"
            for path in figures.make(name, out, quick=args.quick, **kw):
                print(f"{path}  ({time.perf_counter() - start:.0f} s){where}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``solvable`` console script."""
    args = _parser().parse_args(argv)
    try:
        return {"verify": _verify, "list": _list, "figure": _figure, "sweep": _sweep,
                "info": _info, "check": _check}[args.command](args)
    except (ValueError, TypeError) as exc:  # bad argument values: a message, not a traceback
        print(f"solvable {args.command}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
