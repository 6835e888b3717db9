"""Every teaching notebook (jupytext py:percent) executes in its fast mode; its asserts are its tests."""

import os
from pathlib import Path

import pytest

#: Appended to each notebook: every plot a student sees has labelled axes and a title.
CHECK_FIGURES = """# %%
import matplotlib.pyplot as plt
for num in plt.get_fignums():
    for ax in plt.figure(num).axes:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title(), f"figure {num}: unlabelled axes"
"""
NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.py"))


# 8-45 s each (2 min in all): in CI's slow step, which keeps the default suite under its 10 minutes on 2 cores
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, monkeypatch):
    import jupytext  # the notebooks extra, installed by `make test`
    from nbclient import NotebookClient

    nb = jupytext.read(path)
    nb.cells.append(jupytext.reads(CHECK_FIGURES, fmt="py:percent").cells[0])
    monkeypatch.setenv("SOLVABLE_FAST", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    root = str(path.parents[1])
    monkeypatch.setenv("PYTHONPATH", root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "np.float64(" not in text and "np.int64(" not in text, "values print as numbers"


def test_there_are_notebooks():
    assert NOTEBOOKS
