"""Shared figure plumbing: a headless matplotlib figure, saved and closed."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def figure(path: str | Path, size: tuple[float, float], dpi: int = 120) -> Iterator[object]:
    """Yield a new figure; on exit lay it out, save it to ``path`` and close it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=size)
    try:
        yield fig
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
