"""What a claim would cost a GPU, counted without one: host reads, uploads, operations and kernel launches.

On a GPU, eager array code pays one kernel launch (some 5-10 us) per operation that computes and a wait
for the queue per host read, whatever the array sizes; at the sizes of ``solvable verify --quick`` that,
not the arithmetic, is its time. This script runs claims in quick mode on ``array_api_strict`` (the
array API's reference library, on the host) with the counters of ``tests/traffic.py`` and prints, per
claim, its host reads, its uploads, its device operations (every array made), its kernel launches (the
operations less views and same-dtype casts, one per library call), its NumPy time and the time those
launches would take at a given cost per launch, against that NumPy time: issue 14's target
"``verify --quick`` on CuPy no slower than on NumPy" in numbers measured here.

    python benchmarks/claim_traffic.py                        # diagonal.implicit_bias (issue 14's claim)
    python benchmarks/claim_traffic.py --claim ID [--claim ID ...] [--launch-us 10]

A claim that holds CPU-only code in its loop is reported as unsupported on array_api_strict, as by
``solvable verify``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from traffic import traffic  # noqa: E402

from solvable.proofs_checks.framework import registry  # noqa: E402
from solvable.proofs_checks.framework.registry import clear_measurements  # noqa: E402
from solvable.proofs_checks.framework.runner import run_claim  # noqa: E402


def count(claim_id: str) -> dict[str, float | int | str]:
    """One claim, quick: its NumPy time, and its traffic on array_api_strict (measurements not shared
    with other claims, so each count is the claim's own)."""
    claim = registry.get(claim_id)
    clear_measurements()
    start = time.perf_counter()
    host = run_claim(claim, "numpy", quick=True)
    numpy_s = time.perf_counter() - start
    clear_measurements()
    with traffic() as counts:
        strict = run_claim(claim, "array_api_strict", quick=True, device="device1")
    return {"claim": claim_id, "numpy_s": numpy_s, "verdicts": f"{host.verdict}/{strict.verdict}", **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--claim", action="append", help="claim id (repeatable; default diagonal.implicit_bias)")
    parser.add_argument("--launch-us", type=float, default=10.0, help="cost of one kernel launch, us (default 10)")
    args = parser.parse_args()
    print(f"claims in quick mode; counted on array_api_strict; launches at {args.launch_us:g} us")
    print(f"{'claim':34s} {'verdicts':>19s} {'reads':>7s} {'uploads':>8s} {'operations':>11s} {'launches':>10s} "
          f"{'NumPy s':>8s} {'launch s':>9s} {'launch/NumPy':>13s}")
    for claim_id in args.claim or ["diagonal.implicit_bias"]:
        c = count(claim_id)
        launch = c["launches"] * args.launch_us * 1e-6
        print(f"{c['claim']:34s} {c['verdicts']:>19s} {c['reads']:7d} {c['up']:8d} {c['ops']:11d} {c['launches']:10d} "
              f"{c['numpy_s']:8.2f} {launch:9.1f} {launch / c['numpy_s']:12.1f}x", flush=True)


if __name__ == "__main__":
    main()
