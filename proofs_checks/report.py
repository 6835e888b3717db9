"""The terminal table, the JSON results file and the report directory."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any, Sequence

from .registry import jsonable
from .runner import Result

__all__ = ["format_table", "results_document", "write_json", "write_report"]


def _short(x: Any, width: int = 22) -> str:
    """A compact rendering of a number or a short list."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}"
    if isinstance(x, (list, tuple)):
        parts = [_short(v, width) for v in x[:3]]
        s = "[" + ", ".join(parts) + (", …]" if len(x) > 3 else "]")
    else:
        s = str(x)
    return s if len(s) <= width else s[: width - 1] + "…"


def format_table(results: Sequence[Result]) -> str:
    """A fixed-width table: claim, source, predicted, observed, error, tolerance, verdict."""
    head = ("claim", "source", "predicted", "observed", "error", "tolerance", "backend", "verdict")
    rows = []
    for r in results:
        ev = r.evidence
        rows.append((
            r.claim.id,
            _short(r.claim.source, 34),
            _short(ev.predicted) if ev else "-",
            _short(ev.observed) if ev else "-",
            _short(ev.error) if ev else "-",
            _short(ev.tolerance) if ev else "-",
            r.backend,
            r.verdict.upper() if r.verdict in ("failed", "error") else r.verdict,
        ))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    for r in results:
        if r.message:
            out.append(f"  {r.claim.id}: {r.message}")
        if r.evidence is not None and r.evidence.failed_conditions:
            out.append(f"  {r.claim.id}: does not hold: {'; '.join(r.evidence.failed_conditions)}")
        if r.evidence is not None and r.evidence.note:
            out.append(f"  {r.claim.id}: note: {r.evidence.note}")
    passed = sum(r.verdict == "passed" for r in results)
    failed = sum(not r.ok for r in results)
    unsupported = sum(r.verdict == "unsupported" for r in results)
    out.append(f"{passed} passed, {failed} failed, {unsupported} unsupported, of {len(results)} claims")
    return "\n".join(out)


def results_document(results: Sequence[Result], meta: dict[str, Any], timing: bool = True) -> dict[str, Any]:
    """The JSON document: run metadata and one record per claim."""
    return jsonable({
        "meta": meta,
        "summary": {v: sum(r.verdict == v for r in results) for v in ("passed", "failed", "error", "unsupported")},
        "claims": [r.to_json(timing=timing) for r in results],
    })


def write_json(results: Sequence[Result], path: str | os.PathLike, meta: dict[str, Any], timing: bool = True) -> Path:
    """Write :func:`results_document` to ``path`` (sorted keys, stable formatting)."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results_document(results, meta, timing), indent=2, sort_keys=True) + "\n")
    return path


def _draw(result: Result, fig_dir: Path) -> Path | None:
    ev = result.evidence
    if ev is None or result.claim.figure is None:
        return None
    from solvable.figures._style import figure

    path = fig_dir / f"{result.claim.id}.png"
    with figure(path, (6.4, 4.0), dpi=110) as fig:
        result.claim.figure(fig, ev)
        fig.suptitle(result.claim.id, fontsize=10)
    return path


def write_report(results: Sequence[Result], out_dir: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Write ``results.json``, ``summary.md``, ``index.html`` and ``figures/*.png`` to ``out_dir``.

    Returns the path of ``index.html``.
    """
    out = Path(out_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    write_json(results, out / "results.json", meta)
    figures = {r.claim.id: _draw(r, fig_dir) for r in results}

    md = ["# solvable verify", "",
          f"backend `{meta.get('backend')}`, {'quick' if meta.get('quick') else 'full'} mode, seed {meta.get('seed')}", "",
          "| claim | source | statement | predicted | observed | error | tolerance | verdict |",
          "|---|---|---|---|---|---|---|---|"]
    for r in results:
        ev = r.evidence
        cells = [f"`{r.claim.id}`", r.claim.source, r.claim.statement,
                 _short(ev.predicted, 40) if ev else "-", _short(ev.observed, 40) if ev else "-",
                 _short(ev.error) if ev else "-", _short(ev.tolerance) if ev else "-", r.verdict]
        md.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    md.append("")
    for r in results:
        md += [f"## {r.claim.id}", "", f"*{r.claim.source}* — {r.claim.statement}", ""]
        if r.evidence is not None:
            ev = r.evidence
            md += [f"- error measure: {ev.error_measure}", f"- tolerance: {ev.tolerance:.3g} — {ev.tolerance_reason}"]
            md += [f"- condition {'holds' if ok else 'FAILS'}: {name}" for name, ok in ev.conditions.items()]
            if ev.note:
                md.append(f"- note: {ev.note}")
        if r.message:
            md.append(f"- {r.verdict}: {r.message}")
        if figures.get(r.claim.id):
            md += ["", f"![{r.claim.id}](figures/{r.claim.id}.png)"]
        md.append("")
    (out / "summary.md").write_text("\n".join(md))

    esc = html.escape
    rows = []
    for r in results:
        ev = r.evidence
        colour = {"passed": "#d7f5d7", "unsupported": "#eeeeee"}.get(r.verdict, "#f8d0d0")
        rows.append(
            f"<tr style='background:{colour}'><td><code>{esc(r.claim.id)}</code></td><td>{esc(r.claim.source)}</td>"
            f"<td>{esc(r.claim.statement)}</td><td>{esc(_short(ev.predicted, 40)) if ev else '-'}</td>"
            f"<td>{esc(_short(ev.observed, 40)) if ev else '-'}</td><td>{esc(_short(ev.error)) if ev else '-'}</td>"
            f"<td>{esc(_short(ev.tolerance)) if ev else '-'}</td><td>{esc(r.verdict)}</td></tr>"
        )
    sections = []
    for r in results:
        ev = r.evidence
        body = [f"<h2 id='{esc(r.claim.id)}'>{esc(r.claim.id)}</h2>",
                f"<p><em>{esc(r.claim.source)}</em> — {esc(r.claim.statement)}</p>"]
        if ev is not None:
            body.append(f"<p>Error: {esc(ev.error_measure)}. Tolerance {ev.tolerance:.3g}: {esc(ev.tolerance_reason)}</p>")
            if ev.conditions:
                items = "".join(f"<li>{'holds' if ok else '<strong>FAILS</strong>'}: {esc(name)}</li>"
                                for name, ok in ev.conditions.items())
                body.append(f"<p>Conditions:</p><ul>{items}</ul>")
            if ev.note:
                body.append(f"<p><strong>Note:</strong> {esc(ev.note)}</p>")
        if r.message:
            body.append(f"<p><strong>{esc(r.verdict)}:</strong> {esc(r.message)}</p>")
        if figures.get(r.claim.id):
            body.append(f"<img src='figures/{esc(r.claim.id)}.png' alt='{esc(r.claim.id)}' style='max-width:640px'>")
        sections.append("\n".join(body))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>solvable verify</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{padding:4px 8px;"
        "border-bottom:1px solid #ccc;vertical-align:top;font-size:90%}table{border-collapse:collapse}</style>"
        "</head><body><h1>solvable verify</h1>"
        f"<p>backend <code>{esc(str(meta.get('backend')))}</code>, {'quick' if meta.get('quick') else 'full'} mode, "
        f"seed {esc(str(meta.get('seed')))}; details in <a href='results.json'>results.json</a>.</p>"
        "<table><tr><th>claim</th><th>source</th><th>statement</th><th>predicted</th><th>observed</th>"
        "<th>error</th><th>tolerance</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
        + "".join(sections) + "</body></html>"
    )
    index = out / "index.html"
    index.write_text(page)
    return index
