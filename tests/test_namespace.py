"""The installed distribution lives under one namespace: ``solvable.*``; nothing else is importable at top level."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("name", ["theory", "sims", "figures", "proofs_checks"])
def test_no_top_level_layer_packages(tmp_path, name):
    # cwd elsewhere: the repository root is not on sys.path, only what pip installed
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({name!r}) is not None)"
    assert subprocess.run([sys.executable, "-c", code], cwd=tmp_path).returncode == 0, f"{name} is importable"
    sub = f"import solvable.{name}, sys; print(solvable.{name}.__name__)"
    out = subprocess.run([sys.executable, "-c", sub], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"solvable.{name}"


def test_python_m_solvable_is_the_console_script(tmp_path):
    out = subprocess.run([sys.executable, "-m", "solvable", "list", "--model", "ufm"], cwd=tmp_path,
                         capture_output=True, text=True, check=True)
    assert "ufm.convex_value" in out.stdout


def test_a_users_own_sims_folder_does_not_shadow_ours(tmp_path):
    (tmp_path / "sims").mkdir()
    (tmp_path / "sims" / "__init__.py").write_text("MINE = True\n")
    code = "import sims, solvable.sims.engine.flow as f; print(sims.MINE, f.Flow.__name__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "Flow"]
