"""Every reproduced paper figure draws in quick mode with labelled axes, and says "quick mode" on itself."""

from __future__ import annotations

import importlib

import pytest

from solvable import figures


@pytest.mark.parametrize("name", figures.names())
def test_figure_axes_are_labelled(name, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    module = importlib.import_module(f"solvable.figures.{name}")
    data = module.compute(quick=True)
    fig = plt.figure(figsize=module.SIZE)
    try:
        module.draw(fig, data)
        titled = bool(fig._suptitle and fig._suptitle.get_text())
        for i, ax in enumerate(fig.axes):
            where = f"{name}, axes {i}"
            assert ax.get_xlabel().strip(), f"{where}: no x label"
            assert ax.get_ylabel().strip(), f"{where}: no y label"
            assert titled or ax.get_title().strip(), f"{where}: no title and no figure title"
    finally:
        plt.close(fig)


def test_quick_figures_say_so(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    fig = plt.figure()
    figures.stamp(fig, True)
    assert any("quick mode" in t.get_text() for t in fig.texts)
    plt.close(fig)
    calls = []
    monkeypatch.setattr(figures, "stamp", lambda fig, quick: calls.append(quick))
    (path,) = figures.make("deep_linear_saxe", tmp_path, quick=True)
    assert path.is_file() and calls == [True]
