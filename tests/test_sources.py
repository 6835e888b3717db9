"""The sources themselves: no control characters (a lost backslash in a docstring, \\t or \\a or \\f, turns
LaTeX such as \\top, \\alpha or \\frac into a tab, a bell or a form feed, and \\n-abla into a line break)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("sims", "theory", "proofs_checks", "figures", "solvable", "tests", "benchmarks", "notebooks")


def test_no_control_characters_in_sources():
    bad = []
    for folder in FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            # on the raw text: str.splitlines() would itself split at a form feed (a lost backslash of \frac)
            for hit in re.finditer(r"[\x00-\x09\x0b-\x1f]|^abla\b", text, flags=re.MULTILINE):
                bad.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, hit.start()) + 1}")
    assert not bad, "control characters (a lost backslash?) at " + ", ".join(bad)
