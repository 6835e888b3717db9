"""The generated pages of the documentation site (docs/_ext/solvable_docs.py): the claims catalogue from the
registry (and a results file), the gallery from the figure modules; and the guide's Python examples."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from solvable.proofs_checks.framework import registry

ROOT = Path(__file__).resolve().parents[1]


def _extension():
    spec = importlib.util.spec_from_file_location("solvable_docs", ROOT / "docs" / "_ext" / "solvable_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_catalogue_lists_every_claim_with_its_measured_verdict(tmp_path, monkeypatch):
    ext = _extension()
    report = tmp_path / "report"
    (report / "figures").mkdir(parents=True)
    (report / "figures" / "ufm.convex_value.png").write_bytes(b"\x89PNG")
    record = {"id": "ufm.convex_value", "verdict": "passed", "margin": 0.75, "resolution": 1e-6, "error": 2.5e-9,
              "tolerance": 1e-8, "error_measure": "relative gap of the values", "tolerance_reason": "solver accuracy",
              "predicted": 0.5, "observed": 0.5}
    (report / "results.json").write_text(json.dumps({"meta": {"quick": False, "seed": 0}, "claims": [record]}))
    monkeypatch.setenv("SOLVABLE_REPORT", str(report / "results.json"))
    ext.write_catalogue(tmp_path / "catalogue", tmp_path)
    pages = {p.stem: p.read_text() for p in (tmp_path / "catalogue").glob("*.md")}
    assert set(pages) == {"index", *ext.FAMILIES}
    for claim in registry.all_claims():
        assert f"## `{claim.id}`" in pages[claim.model], claim.id
        assert f"`{claim.id}`" in pages["index"]
    ufm = pages["ufm"].split("## `ufm.convex_value`")[1].split("\n## ")[0]
    assert "**Verdict:** passed, margin 0.75, resolution 1e-06" in ufm
    assert "**Tolerance:** 1e-08, solver accuracy" in ufm and "![ufm.convex_value](figures/" in ufm
    assert (tmp_path / "catalogue" / "figures" / "ufm.convex_value.png").is_file()
    assert "at full size (seed 0" in pages["index"]


def test_without_a_results_file_the_catalogue_says_so(tmp_path, monkeypatch):
    ext = _extension()
    monkeypatch.setenv("SOLVABLE_REPORT", str(tmp_path / "absent.json"))
    ext.write_catalogue(tmp_path / "catalogue", tmp_path)
    index = (tmp_path / "catalogue" / "index.md").read_text()
    assert "No results file was found" in index and "**Verdict:**" not in (tmp_path / "catalogue" / "lsa.md").read_text()


def test_the_gallery_draws_every_figure_its_module_names(tmp_path, monkeypatch):
    from solvable import figures

    ext = _extension()
    monkeypatch.setattr(figures, "names", lambda: ["deep_linear_saxe", "lsa_gamma"])  # two quick ones
    ext.write_gallery(tmp_path / "gallery")
    page = (tmp_path / "gallery" / "index.md").read_text()
    for name in ("deep_linear_saxe", "lsa_gamma"):
        assert f"![{name}](img/{name}.png)" in page
        assert (tmp_path / "gallery" / "img" / f"{name}.png").stat().st_size > 10_000


def test_the_guide_covers_every_page_of_the_toctree():
    index = (ROOT / "docs" / "index.md").read_text()
    listed = set(re.findall(r"^guide/(\w+)$", index, flags=re.M))
    assert listed == {p.stem for p in (ROOT / "docs" / "guide").glob("*.md")}


@pytest.mark.slow  # each page's examples as one script, in a scratch directory: about a minute in all
@pytest.mark.parametrize("page", sorted(p.name for p in (ROOT / "docs" / "guide").glob("*.md")
                                        if "```python" in p.read_text()))
def test_the_guides_examples_run(tmp_path, page):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "guide" / page).read_text(), flags=re.S)
    script = tmp_path / "examples.py"
    script.write_text("\n".join(blocks))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
