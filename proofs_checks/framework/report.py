"""The terminal table, the JSON results file and the report directory."""

from __future__ import annotations

import html
import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

from .registry import RESOLVES, jsonable
from .runner import Result

__all__ = ["FigureError", "check_json_path", "check_report_dir", "draw_claim", "draw_evidence", "format_table", "mathml", "results_document", "slowest", "write_json", "write_report"]

#: The files a report writes at its top level, removed before it is written again: a report that stops half way
#: never leaves the last run's page beside this run's results.
REPORT_FILES = ("index.html", "summary.md", "results.json")


class FigureError(RuntimeError):
    """Claims' figures that could not be drawn; raised by :func:`write_report` after the whole report is written
    (each such claim's section says why), so that a fault in one figure neither loses the run nor passes unseen.

    Attributes
    ----------
    index : Path
        The report's ``index.html``.
    failures : dict of str -> str
        Claim id -> the exception, as one line.
    """

    def __init__(self, index: Path, failures: dict[str, str]) -> None:
        super().__init__(f"{len(failures)} claim figure(s) could not be drawn: " + "; ".join(
            f"{cid}: {msg}" for cid, msg in failures.items()))
        self.index = index
        self.failures = failures


#: LaTeX that latex2mathml passes through as literal text, and what it renders instead (\\arg\\min became the
#: identifier "\\arg" followed by "min").
_MATHML_REWRITES = ((r"\arg\min", r"\operatorname*{argmin}"), (r"\arg\max", r"\operatorname*{argmax}"),
                    (r"\arg", r"\operatorname{arg}"))


def mathml(latex: str) -> str:
    """A claim's LaTeX formula as MathML (rendered by the browser itself: the report needs no script, works offline)."""
    from latex2mathml.converter import convert

    for old, new in _MATHML_REWRITES:
        latex = latex.replace(old, new)
    return convert(latex, display="block")


def _short(x: Any, width: int = 22) -> str:
    """A compact rendering of a number or a short list."""
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4g}"
    if isinstance(x, (list, tuple)):
        parts = [_short(v, width) for v in x[:3]]
        s = "[" + ", ".join(parts) + (", …]" if len(x) > 3 else "]")
    else:
        s = str(x)
    return s if len(s) <= width else s[: width - 1] + "…"


def _verdict(r: Result) -> str:
    """The verdict as a word, flagging a pass within 10 % of its tolerance."""
    if r.verdict in ("failed", "error"):
        return r.verdict.upper()
    if r.evidence is not None and r.evidence.near_limit:
        return "passed (near limit)"
    return r.verdict


def _margin(ev: Any) -> str:
    return "-" if ev is None else ("-inf" if ev.margin == float("-inf") else f"{100 * ev.margin:.0f}%")


def _percent(x: float) -> str:
    if x != x:
        return "nan"
    if x == float("inf"):
        return "> 90%"
    return f"{100 * x:.2g}%" if x < 0.01 else f"{100 * x:.0f}%" if x >= 0.1 else f"{100 * x:.1f}%"


def _resolution(r: Result) -> str:
    """The claim's resolution at this size, its promise, and a mark where it falls short; or its alternatives."""
    ev = r.evidence
    if ev is None:
        return "-"
    target = r.resolution_target
    if ev.resolution is not None:
        text = _percent(ev.resolution)
        if target is not None:
            text += f" (of {_percent(target)})" + ("" if ev.resolution <= target else " SHORT")
        return text
    if ev.alternatives:
        return f"rejects {len(ev.rejected_alternatives)}/{len(ev.alternatives)} alternatives"
    return "-"


def power_lines(r: Result) -> list[str]:
    """The claim's power and size in words: its resolution against its promise (or why it promises none), the
    named alternatives it rejects, its declared false-alarm rate."""
    ev, out = r.evidence, []
    if ev is None:
        return out
    target = r.resolution_target
    if ev.resolution is not None:
        out.append(f"resolution: {_percent(ev.resolution)} -- the smallest relative change of the headline prediction "
                   f"its evidence rejects" + (f" ({'meets' if ev.resolution <= target else 'FALLS SHORT OF'} the "
                                              f"{_percent(target)} it promises at this size)" if target is not None
                                              else ""))
    if target is None or r.claim.resolves != RESOLVES:
        if r.claim.resolves_reason:
            out.append(f"resolution promised: {r.claim.resolves_reason}")
    for name, err in ev.alternatives.items():
        out.append(f"alternative {'rejected' if name in ev.rejected_alternatives else 'NOT REJECTED'}: {name} "
                   f"(error {err:.3g} against tolerance {ev.tolerance:.3g})")
    if ev.false_alarm is not None:
        out.append(f"false-alarm rate: {ev.false_alarm:.2g}" + (" (a deterministic budget)" if ev.false_alarm == 0
                                                                else ""))
    return out


def format_table(results: Sequence[Result]) -> str:
    """A fixed-width table: claim, quantity, predicted, observed, error, tolerance, unit, margin, verdict.

    Error and tolerance are in one unit, named; the margin is ``1 - error/tolerance`` (how far from failing).
    """
    head = ("claim", "quantity", "predicted", "observed", "error", "tolerance", "unit", "margin", "resolution", "backend",
            "verdict")
    rows = []
    for r in results:
        ev = r.evidence
        rows.append((
            r.claim.id,
            _short(ev.quantity, 30) if ev else "-",
            _short(ev.predicted) if ev else "-",
            _short(ev.observed) if ev else "-",
            _short(ev.error) if ev else "-",
            _short(ev.tolerance) if ev else "-",
            _short(ev.unit, 16) if ev else "-",
            _margin(ev),
            _resolution(r),
            r.backend,
            _verdict(r),
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
    near = [r.claim.id for r in results if r.evidence is not None and r.evidence.near_limit]
    if near:
        out.append(f"passed within 10% of the tolerance (look at the budget): {', '.join(near)}")
    short = [r.claim.id for r in results if r.meets_resolution is False]
    if short:
        out.append(f"resolve less than they promise (see their resolution): {', '.join(short)}")
    out.append(f"{passed} passed, {failed} failed, {unsupported} unsupported, of {len(results)} claims")
    return "\n".join(out)


def _ran(r: Result, meta: dict[str, Any]) -> str:
    """Where and how long a claim ran: host (and process), backend, device, seconds."""
    device = meta.get("device")
    return (f"ran on {r.host or 'this host'}, backend {r.backend}" + (f" ({device})" if device else "")
            + f", in {r.seconds:.1f} s" + ("; retried once after its worker died" if r.retried else ""))


def slowest(results: Sequence[Result], n: int = 5) -> str:
    """The ``n`` slowest claims with their seconds, and the total (the work a parallel run shares out)."""
    top = sorted(results, key=lambda r: -r.seconds)[:n]
    total = sum(r.seconds for r in results)
    return (f"slowest: {', '.join(f'{r.claim.id} {r.seconds:.1f} s' for r in top)}; "
            f"{total:.0f} s of claims in all")


def results_document(results: Sequence[Result], meta: dict[str, Any], timing: bool = True) -> dict[str, Any]:
    """The JSON document: run metadata and one record per claim."""
    return jsonable({
        "meta": meta,
        "summary": {v: sum(r.verdict == v for r in results) for v in ("passed", "failed", "error", "unsupported")},
        "claims": [r.to_json(timing=timing) for r in results],
    })


def check_report_dir(path: str | os.PathLike) -> Path:
    """``path`` as a report directory: absent (it will be made) or a directory; a file there is a ValueError."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--report must name a directory; {path} is a file")
    return path


def check_json_path(path: str | os.PathLike, report: str | os.PathLike | None = None) -> Path:
    """``path`` as the JSON results file: its directory must exist (or be the report directory, which the run
    makes), and it must not be a directory; otherwise a ValueError, before any claim runs."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--json must name a file; {path} is a directory")
    parent = path.parent
    if not parent.is_dir() and (report is None or parent.resolve() != Path(report).resolve()):
        raise ValueError(f"--json: the directory {parent} does not exist (create it first, or give --report "
                         f"{parent} so that the run makes it)")
    return path


def write_json(results: Sequence[Result], path: str | os.PathLike, meta: dict[str, Any], timing: bool = True) -> Path:
    """Write :func:`results_document` to ``path`` (sorted keys, stable formatting)."""
    path = Path(path)
    path.write_text(json.dumps(results_document(results, meta, timing), indent=2, sort_keys=True) + "\n")
    return path


def _prose(text: str) -> str:
    """Escaped text for the HTML page, with Markdown's `inline code` as <code> (the claims' texts use it)."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _anchor(claim_id: str) -> str:
    """A section id for a claim (letters, digits and dashes: valid in HTML and Markdown links)."""
    return claim_id.replace(".", "-").replace("_", "-")


def _numbers(x: Any) -> list[float] | None:
    """``x`` as a flat list of floats, or None when it is not all numbers (bounds such as "< 1" are parsed)."""
    items = x if isinstance(x, (list, tuple)) else [x]
    out = []
    for v in items:
        if isinstance(v, bool) or isinstance(v, (list, tuple)):
            return None
        if isinstance(v, str):
            text = v.replace("<=", "").replace("<", "").split(",")[0].split("..")[-1].strip()
            try:
                out.append(float(text))
            except ValueError:
                return None
        else:
            try:
                out.append(float(v))
            except (TypeError, ValueError):
                return None
    return out


def draw_evidence(fig: Any, ev: Any) -> None:
    """The figure of a claim that has none of its own: prediction against observation, and the error against its
    tolerance band."""
    pred, obs = _numbers(ev.predicted), _numbers(ev.observed)
    comparable = pred is not None and obs is not None and len(pred) in (1, len(obs))
    ax = fig.add_subplot(1, 2, 1) if comparable else None
    if ax is not None:
        x = list(range(1, len(obs) + 1))
        bound = isinstance(ev.predicted, str) or (isinstance(ev.predicted, (list, tuple))
                                                   and any(isinstance(v, str) for v in ev.predicted))
        ax.plot(x, pred if len(pred) == len(obs) else pred * len(obs), "-" if bound else "s", color="C3",
                label="predicted bound" if bound else "predicted")
        ax.plot(x, obs, "o", color="C0", label="observed")
        ax.set_xticks(x)
        ax.set_xlabel("case (in the order of the quantity's description)")
        ax.set_ylabel(ev.quantity[:60] or "value", fontsize=7)
        ax.legend(fontsize=7)
    ax2 = fig.add_subplot(1, 2, 2) if comparable else fig.add_subplot(1, 1, 1)
    error = ev.error if ev.error == ev.error else 0.0
    ax2.barh([0], [max(error, 0.0)], color="C2" if ev.passed else "C3", height=0.5, label="error")
    ax2.axvspan(0, ev.tolerance, color="C2", alpha=0.15, label="tolerance band")
    ax2.axvline(ev.tolerance, color="k", lw=0.8)
    ax2.set_yticks([])
    ax2.set_xlim(0, max(ev.tolerance, error) * 1.15 or 1.0)
    ax2.set_xlabel(f"error and tolerance ({ev.unit})")
    ax2.set_title(f"margin {100 * ev.margin:.0f}% of the tolerance" if ev.margin > -1e300 else "failed", fontsize=8)
    ax2.legend(fontsize=7, loc="lower right")


def draw_claim(result: Result, path: str | os.PathLike, quick: bool = False) -> Path | None:
    """Draw ``result``'s figure (the claim's own, or :func:`draw_evidence`) to ``path``; None without evidence."""
    ev = result.evidence
    if ev is None:
        return None
    draw = result.claim.figure or draw_evidence
    from solvable.figures._style import figure

    path = Path(path)
    with figure(path, (6.4, 4.0), dpi=110) as fig:
        draw(fig, ev)
        fig.suptitle(result.claim.id + (" (quick mode: small sizes)" if quick else ""), fontsize=10)
    return path


def _draw(result: Result, fig_dir: Path, quick: bool, failures: dict[str, str]) -> Path | None:
    """:func:`draw_claim` into ``fig_dir``; an exception is kept in ``failures`` (the report goes on)."""
    try:
        return draw_claim(result, fig_dir / f"{result.claim.id}.png", quick)
    except Exception as exc:  # noqa: BLE001 - any fault of one figure is reported, after the rest is written
        failures[result.claim.id] = f"{type(exc).__name__}: {exc}"
        return None


def _explored(claim: Any, out: Path) -> tuple[list[str], str | None]:
    """A claim's hypothesis space and, when ``solvable check`` searched it into ``out/check``, what it found:
    lines of text and the plot's path relative to ``out``."""
    if claim.space is None:
        return [], None
    lines = ["hypothesis space: " + "; ".join(
        f"{p.name} in [{p.low:g}, {p.high:g}]{' (log)' if p.log else ''}" for p in claim.space.params)
        + "".join(f"; {statement}" for statement, _ in claim.space.constraints)]
    stem = claim.id.replace(".", "_")
    found = out / "check" / f"{stem}.json"
    if not found.exists():
        lines.append(f"not searched here yet: `solvable check {claim.id} --report {out}`")
        return lines, None
    data = json.loads(found.read_text())
    ratios = [p["ratio"] for p in data["probes"] if p["ratio"] is not None]
    tested = [p for p in data["probes"] if p.get("reached", True)] or data["probes"]
    worst = max(tested, key=lambda p: (not p["passed"], p["ratio"] if p["ratio"] is not None else 1e300))
    lines.append(f"searched {len(data['probes'])} points (stopped: {data['stopped']}); worst error/tolerance "
                 f"{max(ratios) if ratios else float('nan'):.3g} at {worst['point']}")
    unreached = [p for p in data["probes"] if not p.get("reached", True)]
    if unreached:
        lines.append(f"{len(unreached)} point(s) out of the check's reach (neither passed nor failed), e.g. "
                     f"{unreached[0]['point']}: {unreached[0]['message']}")
    if data.get("counterexample"):
        ce = data["counterexample"]
        lines.append(f"COUNTEREXAMPLE {ce['point']}: reproduce with `{ce['command']}`")
    plot = out / "check" / f"{stem}.png"
    return lines, (f"check/{stem}.png" if plot.exists() else None)


def write_report(results: Sequence[Result], out_dir: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Write ``results.json``, ``summary.md``, ``index.html`` and ``figures/*.png`` to ``out_dir``.

    The last run's files there are removed first (``check/``, which ``solvable check`` writes, is kept).
    Returns the path of ``index.html``; raises :class:`FigureError` after writing everything if a claim's
    figure could not be drawn.
    """
    out = Path(out_dir)
    check_report_dir(out)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:
        (out / name).unlink(missing_ok=True)
    for old in fig_dir.glob("*.png"):
        old.unlink()
    write_json(results, out / "results.json", meta)
    failures: dict[str, str] = {}
    figures = {r.claim.id: _draw(r, fig_dir, bool(meta.get("quick")), failures) for r in results}

    md = ["# solvable verify", "",
          f"backend `{meta.get('backend')}`, {'quick' if meta.get('quick') else 'full'} mode, seed {meta.get('seed')}", "",
          "| claim | quantity | predicted | observed | error | tolerance | unit | margin | resolution | verdict |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        ev = r.evidence
        cells = [f"[`{r.claim.id}`](#{_anchor(r.claim.id)})", ev.quantity if ev else "-",
                 _short(ev.predicted, 40) if ev else "-", _short(ev.observed, 40) if ev else "-",
                 _short(ev.error) if ev else "-", _short(ev.tolerance) if ev else "-", ev.unit if ev else "-",
                 _margin(ev), _resolution(r), _verdict(r)]
        md.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    md.append("")
    for r in results:
        md += [f"## {r.claim.id}", "", f"*{r.claim.source}* — {r.claim.statement}", ""]
        if r.claim.formula:
            md += [f"$$ {r.claim.formula} $$", ""]
        if r.evidence is not None:
            md += [f"- {r.evidence.quantity}: predicted {_short(r.evidence.predicted, 200)}, observed "
                   f"{_short(r.evidence.observed, 200)}"]
        if r.evidence is not None:
            ev = r.evidence
            md += [f"- error: {ev.error:.4g} {ev.unit} — {ev.error_measure}",
                   f"- tolerance: {ev.tolerance:.4g} {ev.unit} — {ev.tolerance_reason}",
                   f"- margin: {_margin(ev)} of the tolerance left" + (" (near limit)" if ev.near_limit else "")]
            md += [f"- condition {'holds' if ok else 'FAILS'}: {name}" for name, ok in ev.conditions.items()]
            md += [f"- {line}" for line in power_lines(r)]
            if ev.note:
                md.append(f"- note: {ev.note}")
        if r.message:
            md.append(f"- {r.verdict}: {r.message}")
        md.append(f"- {_ran(r, meta)}")
        space_lines, space_plot = _explored(r.claim, out)
        md += [f"- {line}" for line in space_lines]
        if figures.get(r.claim.id):
            md += ["", f"![{r.claim.id}](figures/{r.claim.id}.png)"]
        if r.claim.id in failures:
            md += ["", f"- FIGURE FAILED: {failures[r.claim.id]}"]
        if space_plot:
            md += ["", f"![explored region of {r.claim.id}]({space_plot})"]
        md.append("")
    (out / "summary.md").write_text("\n".join(md))

    esc = html.escape
    rows = []
    for r in results:
        ev = r.evidence
        colour = {"passed": "#d7f5d7", "unsupported": "#eeeeee"}.get(r.verdict, "#f8d0d0")
        if ev is not None and ev.near_limit:
            colour = "#fff1c2"
        cells = [f"<a href='#{_anchor(r.claim.id)}'><code>{esc(r.claim.id)}</code></a>", _prose(ev.quantity) if ev else "-",
                 esc(_short(ev.predicted, 40)) if ev else "-", esc(_short(ev.observed, 40)) if ev else "-",
                 esc(_short(ev.error)) if ev else "-", esc(_short(ev.tolerance)) if ev else "-",
                 esc(ev.unit) if ev else "-", esc(_margin(ev)), esc(_resolution(r)), esc(_verdict(r))]
        rows.append(f"<tr style='background:{colour}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    sections = []
    for r in results:
        ev = r.evidence
        body = [f"<h2 id='{_anchor(r.claim.id)}'>{esc(r.claim.id)}</h2>",
                f"<p><em>{_prose(r.claim.source)}</em> — {_prose(r.claim.statement)}</p>"]
        if r.claim.formula:
            body.append(mathml(r.claim.formula))
        if ev is not None:
            body.append(f"<p>{_prose(ev.quantity)}: predicted {esc(_short(ev.predicted, 300))}; observed "
                        f"{esc(_short(ev.observed, 300))}.</p>")
            body.append(f"<p>Error {ev.error:.4g} {esc(ev.unit)}: {_prose(ev.error_measure)}.<br>Tolerance "
                        f"{ev.tolerance:.4g} {esc(ev.unit)}: {_prose(ev.tolerance_reason)}.<br>Margin {esc(_margin(ev))} "
                        f"of the tolerance{' (near limit)' if ev.near_limit else ''}.</p>")
            if ev.conditions:
                items = "".join(f"<li>{'holds' if ok else '<strong>FAILS</strong>'}: {_prose(name)}</li>"
                                for name, ok in ev.conditions.items())
                body.append(f"<p>Conditions:</p><ul>{items}</ul>")
            lines = power_lines(r)
            if lines:
                body.append("<p>" + "<br>".join(_prose(line) for line in lines) + "</p>")
            if ev.note:
                body.append(f"<p><strong>Note:</strong> {_prose(ev.note)}</p>")
        if r.message:
            body.append(f"<p><strong>{esc(r.verdict)}:</strong> {_prose(r.message)}</p>")
        body.append(f"<p><small>{esc(_ran(r, meta))}</small></p>")
        if figures.get(r.claim.id):
            body.append(f"<img src='figures/{esc(r.claim.id)}.png' alt='{esc(r.claim.id)}' style='max-width:640px'>")
        if r.claim.id in failures:
            body.append(f"<p><strong>Figure failed:</strong> {_prose(failures[r.claim.id])}</p>")
        space_lines, space_plot = _explored(r.claim, out)
        if space_lines:
            body.append("<p>" + "<br>".join(_prose(line) for line in space_lines) + "</p>")
        if space_plot:
            body.append(f"<img src='{esc(space_plot)}' alt='explored region of {esc(r.claim.id)}' "
                        "style='max-width:480px'>")
        sections.append("\n".join(body))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>solvable verify</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{padding:4px 8px;"
        "border-bottom:1px solid #ccc;vertical-align:top;font-size:90%}table{border-collapse:collapse}</style>"
        "</head><body><h1>solvable verify</h1>"
        f"<p>backend <code>{esc(str(meta.get('backend')))}</code>, {'quick' if meta.get('quick') else 'full'} mode, "
        f"seed {esc(str(meta.get('seed')))}; details in <a href='results.json'>results.json</a>.</p>"
        "<table><tr><th>claim</th><th>quantity</th><th>predicted</th><th>observed</th><th>error</th>"
        "<th>tolerance</th><th>unit</th><th>margin</th><th>resolution</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
        + "".join(sections) + "</body></html>"
    )
    index = out / "index.html"
    index.write_text(page)
    if failures:
        raise FigureError(index, failures)
    return index
