"""Module-level tasks for the sweep tests (subprocesses and loky workers import them by name)."""

from __future__ import annotations

import os
import time


def logged_square(x: int, log: str, delay: float = 0.0) -> dict:
    """Append ``x`` to ``log`` (one line per call, so the tests can count computations), wait, return x^2."""
    with open(log, "a") as fh:
        fh.write(f"{x} {os.getpid()}\n")
    time.sleep(delay)
    return {"y": x * x}


def task(x: int) -> dict:
    """Named like ``test_sweep.task``: its points must not share keys with that one."""
    return {"y": -x}
