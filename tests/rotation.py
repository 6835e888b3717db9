"""Which share of the slow checks a run takes, rotating with the commit: the same share for the same commit (a
failure reproduces), the next share at the next commit, the whole after a few."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path


def _rotation() -> int:
    """The commit count of the checkout, or the day when there is no git."""
    try:
        out = subprocess.run(["git", "rev-list", "--count", "HEAD"], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).parent)
        return int(out.stdout.strip())
    except (OSError, subprocess.CalledProcessError, ValueError):
        return datetime.date.today().toordinal()


ROTATION = _rotation()


def share(items: list, parts: int) -> list:
    """The items of this run's share when they are cut into ``parts`` interleaved shares."""
    return [x for k, x in enumerate(items) if k % parts == ROTATION % parts]
