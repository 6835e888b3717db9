"""The benchmarks stay ready to run: at toy sizes (the GPU one with NumPy standing in for the device)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_benchmark_runs_in_smoke_mode():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--smoke"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "flow: B = 8" in out and "gradient descent, diagonal network, FP64" in out
    # every flow row agrees with the reference to the stopping band (1e-5 at rtol 1e-8)
    rows = [line for line in out.splitlines() if line.startswith("solvable")]
    assert len(rows) == 4 and all(float(r.split()[-1]) < 1e-4 for r in rows)


def test_reduced_coordinates_benchmark_runs_in_smoke_mode():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reduced_coordinates.py"), "--smoke"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if "largest end-state difference" in line]
    assert len(rows) == 2 and rows[0].startswith("deep linear") and rows[1].startswith("UFM")
    assert all(float(r.rsplit(" ", 1)[-1]) < 1e-6 for r in rows)  # the reductions agree with the full flow


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed (extra solvable[torch])")
def test_compiled_steps_benchmark_runs_and_agrees():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compiled_steps.py"), "--quick", "--part", "gd"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [line for line in proc.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 2
    # the compiled run takes the eager run's steps: the final parameters agree to round-off
    assert all(float(r.split()[-1]) < 1e-12 for r in rows)
