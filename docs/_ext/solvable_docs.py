"""Sphinx extension: the pages of the site that are generated, never kept by hand.

* ``catalogue/``: one page per model family from the claims registry -- each claim's statement, source, formula,
  kind, backends, hypothesis space and the resolution it promises; and, from a ``solvable verify`` results file
  (``$SOLVABLE_REPORT``, by default ``report/results.json`` of the repository when ``make verify`` has run), its
  measured error and tolerance with their units and reasons, margin, resolution, verdict and figure.
* ``gallery/``: every reproduced paper figure, computed and drawn by its module in :mod:`solvable.figures` when the
  site is built (``$SOLVABLE_GALLERY``: ``quick``, the default, or ``full`` for the papers' sizes), the figures
  computed in one worker process per core.

Both are written when the builder starts, before Sphinx reads its sources.
"""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

FAMILIES = {
    "diagonal": "Diagonal linear networks",
    "deep_linear": "Deep linear and scalar networks",
    "matrix_sensing": "Matrix sensing",
    "ufm": "The unconstrained feature model (neural collapse)",
    "lsa": "Linear self-attention in-context learning",
}


def _md(text: str) -> str:
    """Plain text as Markdown: the claims' texts use `code` spans; stars and dollars are literal."""
    return str(text).replace("\\", "\\\\").replace("*", "\\*").replace("$", "\\$").replace("<", "&lt;")


def _number(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.3g}"
    if isinstance(x, list) and len(x) > 8:
        return "[" + ", ".join(_number(v) for v in x[:8]) + ", ...]"
    if isinstance(x, list):
        return "[" + ", ".join(_number(v) for v in x) + "]"
    return str(x)


def _report(root: Path) -> tuple[dict[str, dict], dict, Path | None]:
    """The records of a results file by claim id, its metadata, and its directory (for the figures)."""
    path = Path(os.environ.get("SOLVABLE_REPORT", root / "report" / "results.json"))
    if not path.is_file():
        return {}, {}, None
    doc = json.loads(path.read_text())
    return {r["id"]: r for r in doc.get("claims", [])}, doc.get("meta", {}), path.parent


def write_catalogue(out: Path, root: Path) -> None:
    """``out/index.md`` and one page per family."""
    from solvable.proofs_checks.framework import registry

    records, meta, report_dir = _report(root)
    if out.exists():
        shutil.rmtree(out)
    (out / "figures").mkdir(parents=True)
    claims = registry.all_claims()
    if records:
        mode = "quick sizes" if meta.get("quick") else "full size"
        where = (f"The measured columns come from `solvable verify` at {mode} (seed {meta.get('seed', '?')}, "
                 f"backend {meta.get('backend', 'numpy')}), the results file the site was built with.")
    else:
        where = ("No results file was found when the site was built (`make verify` writes `report/results.json`; "
                 "`SOLVABLE_REPORT` names another): the pages give each claim's statement, source and promised "
                 "resolution, and `solvable verify` measures the rest.")
    index = ["# Claims catalogue", "",
             f"Every claim of the registry ({len(claims)}), by model family, generated when the site is built. "
             + where, "", "```{toctree}", ":maxdepth: 1", ""]
    index += [family for family in FAMILIES] + ["```", ""]
    index += ["| claim | kind | verdict | margin | resolution |", "|---|---|---|---|---|"]
    for c in claims:
        r = records.get(c.id, {})
        index.append(f"| [`{c.id}`]({c.model}.md#{c.id.replace('.', '-').replace('_', '-')}) | {c.kind} | "
                     f"{r.get('verdict', '')} | {_number(r['margin']) if r.get('margin') is not None else ''} | "
                     f"{_number(r['resolution']) if r.get('resolution') is not None else ''} |")
    (out / "index.md").write_text("\n".join(index) + "\n")
    for family, title in FAMILIES.items():
        page = [f"# {title}", ""]
        for c in (c for c in claims if c.model == family):
            page += [f"({c.id.replace('.', '-').replace('_', '-')})=", f"## `{c.id}`", "", _md(c.statement), ""]
            if c.formula:
                page += ["$$", c.formula, "$$", ""]
            page += [f"- **Source:** {_md(c.source)}", f"- **Kind:** {c.kind}; **backends:** {c.backends}"]
            target = c.resolves
            if target is not None:
                page.append(f"- **Promised resolution:** quick {target[0]:g}, full {target[1]:g} (the smallest "
                            f"relative error of the prediction the claim rejects)"
                            + (f"; {_md(c.resolves_reason)}" if c.resolves_reason else ""))
            else:
                page.append("- **Promised resolution:** none (its prediction is not one number)"
                            + (f"; {_md(c.resolves_reason)}" if c.resolves_reason else ""))
            if c.space is not None:
                params = ", ".join(f"`{p.name}` in [{p.low:g}, {p.high:g}]" for p in c.space.params)
                page.append(f"- **Hypothesis space** (`solvable check {c.id}`): {params}")
            r = records.get(c.id)
            if r:
                page += [f"- **Verdict:** {r['verdict']}"
                         + (f", margin {_number(r['margin'])}" if r.get("margin") is not None else "")
                         + (f", resolution {_number(r['resolution'])}" if r.get("resolution") is not None else ""),
                         f"- **Predicted:** {_md(_number(r.get('predicted')))}; **observed:** "
                         f"{_md(_number(r.get('observed')))}",
                         f"- **Error:** {_number(r.get('error'))}, {_md(r.get('error_measure') or '')}",
                         f"- **Tolerance:** {_number(r.get('tolerance'))}, {_md(r.get('tolerance_reason') or '')}"]
                fig = report_dir / "figures" / f"{c.id}.png" if report_dir else None
                if fig is not None and fig.is_file():
                    shutil.copy(fig, out / "figures" / fig.name)
                    page += ["", f"![{c.id}](figures/{fig.name})"]
            page.append("")
        (out / f"{family}.md").write_text("\n".join(page) + "\n")


def write_gallery(out: Path) -> None:
    """``out/index.md``: every figure of :mod:`solvable.figures`, drawn now by its module."""
    import importlib

    from solvable import figures

    quick = os.environ.get("SOLVABLE_GALLERY", "quick") != "full"
    if out.exists():
        shutil.rmtree(out)
    (out / "img").mkdir(parents=True)
    names = figures.names()
    workers = max(1, min(len(names), len(os.sched_getaffinity(0))))
    with ProcessPoolExecutor(workers) as pool:  # the library's own function: nothing of this file is pickled
        for done in [pool.submit(figures.make, name, out / "img", quick=quick) for name in names]:
            done.result()
    size = ("at the small sizes of `solvable figure NAME --quick` (each figure says so in its corner; "
            "`SOLVABLE_GALLERY=full make docs` draws the papers' sizes)") if quick else "at the papers' sizes"
    page = ["# Figure gallery", "",
            f"Every reproduced paper figure, computed and drawn by its module in `solvable.figures` when this site "
            f"was built, {size}. `solvable figure NAME` draws one; `solvable figure --all` draws them all.", ""]
    for name in names:
        doc = (importlib.import_module(f"solvable.figures.{name}").__doc__ or name).strip()
        title, _, rest = doc.partition("\n")
        page += [f"## {name}", "", f"**{_md(title.strip())}**", ""]
        if rest.strip():
            page += [_md(textwrap.dedent(rest).strip()), ""]
        page += [f"![{name}](img/{name}.png)", "", f"Module: `solvable.figures.{name}` (`figures/{name}.py`).", ""]
    (out / "index.md").write_text("\n".join(page) + "\n")


def _generate(app: Any) -> None:
    src = Path(app.srcdir)
    write_catalogue(src / "catalogue", src.parent)
    write_gallery(src / "gallery")


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _generate)
    return {"version": "1", "parallel_read_safe": True}
