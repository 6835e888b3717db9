"""The README's Python examples run as written (in a scratch directory, in a fresh interpreter)."""

import re
import subprocess

import pytest
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow  # one 60-second script: in the slow step, which CI runs on every change
def test_readme_examples_run(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    # one script (later blocks build on earlier ones), run outside the repository: only the installed
    # solvable.* namespace is importable, as for a user
    script = tmp_path / "readme_examples.py"
    script.write_text("\n".join(blocks))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                          env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]


def test_readme_states_the_test_command_ci_runs():
    text = README.read_text()
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in text and "make test" in ci
