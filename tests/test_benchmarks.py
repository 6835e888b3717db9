"""The benchmarks stay ready to run: at toy sizes (the GPU one with NumPy standing in for the device)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # 9 s: in the slow step
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


@pytest.mark.slow  # 5 s
def test_teacher_student_benchmark_runs_and_compares_the_same_iterates():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "teacher_student.py"), "--quick"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "plain NumPy loop" in out and "engine floor" in out
    assert float(out.rsplit("=", 1)[-1]) < 1e-10  # the eigenbasis run and the loop on the data: one trajectory


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


DEVICE_CHECK = ROOT / "benchmarks" / "device_check.sh"


def _device_parts() -> list[tuple[str, int, list[str]]]:
    """(name, time limit in s, command) of every ``part`` line of benchmarks/device_check.sh."""
    lines = [line.split() for line in DEVICE_CHECK.read_text().splitlines() if line.startswith("part ")]
    return [(words[1], int(words[2]), words[3:]) for words in lines]


def test_device_check_fits_one_device_command():
    """A lent device runs one command for at most 600 s; the script's install takes some 20 of them."""
    assert subprocess.run(["bash", "-n", str(DEVICE_CHECK)]).returncode == 0
    parts = _device_parts()
    assert [name for name, _, _ in parts] == ["info", "flow64", "gd", "compiled", "flow1024", "claim", "gpu_tests"]
    assert sum(limit for _, limit, _ in parts) <= 570
    scripts = [cmd[1] for _, _, cmd in parts if cmd[0] == "python3" and cmd[1].endswith(".py")]
    assert len(scripts) == 5 and all((ROOT / s).is_file() for s in scripts)


@pytest.mark.slow
def test_device_check_runs_without_a_device(tmp_path):
    """The whole script where no GPU is: the linked package imports (PYTHONSAFEPATH keeps the checkout's own
    solvable/ off the path), every part writes its log and ends within its limit, the benchmarks say there
    is nothing to measure and the gpu tests are collected and skipped, not broken."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho no GPU here\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    out = tmp_path / "out"
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "OUT": str(out)}
    env.pop("PYTHONPATH", None)
    subprocess.run(["bash", str(DEVICE_CHECK)], env=env, check=True, timeout=600, capture_output=True)
    logs = {p.stem: p.read_text() for p in out.glob("*.log")}
    assert sorted(logs) == sorted(name for name, _, _ in _device_parts())
    assert "devices:" in logs["info"] and logs["info"].count("exit 0 after") == 1
    for name in ("flow64", "gd", "flow1024", "claim"):
        assert "nothing to measure" in logs[name] and "exit 0 after" in logs[name], logs[name][-2000:]
    assert " skipped" in logs["gpu_tests"] and "error" not in logs["gpu_tests"].lower(), logs["gpu_tests"][-2000:]


@pytest.mark.slow  # 9 s: in the slow step
def test_claim_traffic_counts_a_claim():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "claim_traffic.py"), "--claim",
                           "deep_linear.saxe_modes"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (row,) = [line.split() for line in proc.stdout.splitlines() if line.startswith("deep_linear.saxe_modes")]
    verdicts, reads, uploads, ops, launches = row[1], int(row[2]), int(row[3]), int(row[4]), int(row[5])
    assert verdicts == "passed/passed"
    # every run reads its statuses back and moves its problem up at least once; the steps are operations,
    # most of them launches
    assert 0 < reads < ops and 0 < uploads < ops and ops > 10_000
    assert ops / 2 < launches < ops
