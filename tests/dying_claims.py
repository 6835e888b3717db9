"""Claims for tests/test_parallel.py only: cheap, deterministic, and two that kill their worker process.

Imported by the test and, by name, in each worker process that runs them (proofs_checks.framework.parallel imports a claim's
module before it looks the claim up). Their model, ``testonly``, is no family: the test removes them from the
registry when it is done.
"""

import os
from pathlib import Path

import numpy as np

from solvable.proofs_checks.framework.registry import Context, Evidence, claim, measurement

_REASON = "a test claim: the error is exact arithmetic"


@measurement
def shared_draw(ctx: Context) -> np.ndarray:
    return np.random.default_rng(ctx.seed).standard_normal(5)


def _evidence(value: float) -> Evidence:
    return Evidence(predicted=value, observed=value, error=0.0, tolerance=1.0, error_measure="none",
                    tolerance_reason=_REASON, false_alarm=0.0)


@claim(id="testonly.first", source="test", statement="reads the shared draw", kind="closed_form", resolves=None,
       resolves_reason=_REASON)
def first(ctx: Context) -> Evidence:
    return _evidence(float(shared_draw(ctx).sum()))


@claim(id="testonly.second", source="test", statement="reads the shared draw too", kind="closed_form", resolves=None,
       resolves_reason=_REASON)
def second(ctx: Context) -> Evidence:
    return _evidence(float(shared_draw(ctx).max()))


@claim(id="testonly.alone", source="test", statement="reads nothing shared", kind="closed_form", resolves=None,
       resolves_reason=_REASON)
def alone(ctx: Context) -> Evidence:
    return _evidence(float(ctx.seed))


@claim(id="testonly.dies_once", source="test", statement="kills its worker the first time", kind="closed_form",
       resolves=None, resolves_reason=_REASON)
def dies_once(ctx: Context) -> Evidence:
    marker = Path(os.environ["SOLVABLE_TEST_MARKER"])
    if not marker.exists():
        marker.write_text("died")
        os._exit(3)
    return _evidence(1.0)


@claim(id="testonly.always_dies", source="test", statement="kills its worker every time", kind="closed_form",
       resolves=None, resolves_reason=_REASON)
def always_dies(ctx: Context) -> Evidence:
    os._exit(3)
