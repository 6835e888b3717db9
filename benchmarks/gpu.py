"""solvable on a GPU (CuPy, torch-cuda) against JAX + diffrax on the same card and NumPy on the host.

Three measurements, each printed as seconds and ratios from one process on one machine:

1. **Gradient flow of the diagonal-network batch** (issue 14's workload): n = 50, d = 200, a
   5-sparse teacher, alpha = logspace(-3, 0.5, B) for B in {64, 1024}, rtol = 1e-8, to each run's
   convergence threshold. solvable in reduced coordinates (the default, Rosenbrock-W) and in full
   coordinates (Dormand-Prince) on every GPU backend, against JAX + diffrax (``jit(vmap(...))``,
   Dopri5 on the full system, the peer a GPU user would pick; compilation timed apart) and against
   solvable on NumPy; torch runs eagerly and compiled (``compile=True``, ``sims.engine.compiled``). Agreement:
   the largest relative distance of the limits w_inf from solvable-NumPy-reduced's.
2. **Gradient descent throughput** at B = 1024, n = 500, d = 4000 and B = 4096, n = 1000,
   d = 8000: FLOP/s of GD steps (two products of 2 B n d each) against the FP64 matrix-product
   throughput of the same card measured here (the same (B, d) x (d, n) product, timed alone), and
   against NumPy on the host; torch runs eagerly and compiled (``compile=True``, ``sims.engine.compiled``).
3. **A claim**: ``solvable verify --quick --claim diagonal.implicit_bias`` on each backend.

Run ``python benchmarks/gpu.py`` where a GPU is present (``--part flow|gd|claim``, ``--batches 64``);
without one it says so and exits. ``--smoke`` runs every part at toy sizes on whatever backends are
present (NumPy counts as the "device"), to test the script itself; its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from solvable.sims import diagonal
from solvable.sims.engine.backend import namespace

RTOL = 1e-8
T_MAX = 1e6
HERE = Path(__file__).resolve().parent


def gpu_backends(smoke: bool) -> list[tuple[str, str, str | None]]:
    """(label, backend, device) of every GPU backend present; NumPy stands in with ``smoke``."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    from gpu import available

    out = []
    if available("cupy"):
        out.append(("cupy", "cupy", None))
    if available("torch"):
        out.append(("torch-cuda", "torch", "cuda"))
    if not out and smoke:
        out.append(("numpy (smoke)", "numpy", None))
    return out


def synchronize(backend: str) -> None:
    if backend == "cupy":
        import cupy

        cupy.cuda.Device().synchronize()
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()


def timed(backend: str, fn):
    synchronize(backend)
    start = time.perf_counter()
    out = fn()
    synchronize(backend)
    return time.perf_counter() - start, out


# ----------------------------------------------------------------------------------------------
# 1. gradient flow
# ----------------------------------------------------------------------------------------------
def diffrax_gpu(problem, alphas, tol):
    """(compile s, run s, limits) of JAX + diffrax Dopri5 on the full system, jit(vmap), on JAX's default device."""
    spec = importlib.util.spec_from_file_location("diagonal_flow_bench", HERE / "diagonal_flow.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.diffrax_runs(problem, alphas, tol, reduced=False)


def flow_table(batch: int, backends, smoke: bool, coordinates=("reduced", "full")) -> None:
    n, d = (10, 30) if smoke else (50, 200)
    problem = diagonal.Problem.random(n, d, 5 if not smoke else 2, seed=0)
    alphas = np.logspace(-3, 0.5, batch)
    tol = diagonal.default_loss_tol(problem, np.repeat(alphas[:, None], problem.d, 1), "float64", RTOL)
    rows = []
    sec, ref = timed("numpy", lambda: diagonal.simulate(problem, alphas, t_max=T_MAX, rtol=RTOL))
    rows.append(("solvable numpy, reduced", sec, ref.final["w"], int(ref.stop_step.max())))
    if batch <= 64 or smoke:
        sec, tr = timed("numpy", lambda: diagonal.simulate(problem, alphas, t_max=T_MAX, rtol=RTOL,
                                                            coordinates="full"))
        rows.append(("solvable numpy, full", sec, tr.final["w"], int(tr.stop_step.max())))
    for label, backend, device in backends:
        for coords in coordinates:
            for compile in (False, True) if backend == "torch" else (False,):  # torch.compile: sims.engine.compiled
                run = lambda: diagonal.simulate(problem, alphas, t_max=T_MAX, rtol=RTOL,  # noqa: E731
                                                coordinates=coords, backend=backend, device=device, compile=compile)
                if compile:  # traced per shape: the first run of this batch compiles, the second is timed
                    first, _ = timed(backend, run)
                elif not smoke:  # kernels compile on first use: warm up on a small batch
                    diagonal.simulate(problem, alphas[:2], t_max=T_MAX, rtol=RTOL, coordinates=coords,
                                      backend=backend, device=device)
                sec, tr = timed(backend, run)
                rows.append((f"solvable {label}{' compiled' if compile else ''}, {coords} "
                             f"(sync every {tr.meta['sync_every']})"
                             + (f" [+{first - sec:.1f} s compile]" if compile else ""), sec, tr.final["w"],
                             int(tr.stop_step.max())))
                print(f"  {rows[-1][0]}: {sec:.2f} s", flush=True)
    if importlib.util.find_spec("diffrax") is not None and not smoke:
        try:
            import jax

            comp, sec, w = diffrax_gpu(problem, alphas, tol)
            rows.append((f"jax + diffrax Dopri5, full, {jax.devices()[0].platform} [+{comp:.1f} s compile]", sec, w,
                         None))
        except Exception as exc:  # report, do not hide, a peer that fails
            print(f"jax + diffrax failed: {type(exc).__name__}: {exc}")
    jax_rows = [r for r in rows if r[0].startswith("jax")]
    base = jax_rows[0][1] if jax_rows else rows[0][1]
    base_name = "jax" if jax_rows else "numpy reduced"
    w_ref = ref.final["w"]
    print(f"\nflow: B = {batch}, n = {problem.n}, d = {problem.d}, alpha in [{alphas[0]:g}, {alphas[-1]:g}], "
          f"rtol = {RTOL:g}")
    print(f"{'method':80s} {'seconds':>8s} {'x ' + base_name:>12s} {'steps':>7s} {'max rel. err':>13s}")
    for name, sec, w, steps in rows:
        rel = float(np.max(np.linalg.norm(w - w_ref, axis=1) / np.linalg.norm(w_ref, axis=1)))
        print(f"{name:80s} {sec:8.2f} {sec / base:12.2f} {'' if steps is None else steps:>7} {rel:13.1e}")


# ----------------------------------------------------------------------------------------------
# 2. gradient descent throughput
# ----------------------------------------------------------------------------------------------
def matmul_tflops(backend: str, device, batch: int, n: int, d: int, reps: int = 10) -> float:
    """FP64 TFLOP/s of the (B, d) x (d, n) product alone, on the backend's device."""
    from solvable.sims.engine.backend import asarray

    xp = namespace(backend)
    rng = np.random.default_rng(0)
    a = asarray(rng.standard_normal((batch, d)), xp, "float64", device)
    b = asarray(rng.standard_normal((d, n)), xp, "float64", device)
    xp.matmul(a, b)
    sec, _ = timed(backend, lambda: [xp.matmul(a, b) for _ in range(reps)])
    return 2.0 * batch * n * d * reps / sec / 1e12


def gd_tflops(backend: str, device, problem, batch: int, steps: int, compile: bool = False) -> float:
    """TFLOP/s of solvable's GD on the diagonal network: 4 B n d FLOP per step (X w and X^T r),
    the fixed cost (moving the problem, recording, compiling) removed by differencing two step counts."""
    alphas = np.full(batch, 0.1)

    def run(s):
        return diagonal.simulate(problem, alphas, algorithm="gd", lr=1e-3, steps=s, t_eval=[0, s], loss_tol=0.0,
                                 backend=backend, device=device, compile=compile)

    run(2)
    reps = 1 if backend == "numpy" else 3  # the host takes seconds a step at the large size
    short = min(timed(backend, lambda: run(2))[0] for _ in range(reps))
    long = min(timed(backend, lambda: run(2 + steps))[0] for _ in range(reps))
    return 4.0 * batch * problem.n * problem.d * steps / max(long - short, 1e-9) / 1e12


def gd_table(backends, smoke: bool) -> None:
    sizes = [(64, 50, 200)] if smoke else [(1024, 500, 4000), (4096, 1000, 8000)]
    print("\ngradient descent, diagonal network, FP64")
    print(f"{'backend':23s} {'B':>5s} {'n':>5s} {'d':>5s} {'matmul TFLOP/s':>15s} {'GD TFLOP/s':>11s} "
          f"{'GD / matmul':>12s}")
    for batch, n, d in sizes:
        problem = diagonal.Problem.random(n, d, 5 if not smoke else 2, seed=0)
        host_steps = 2 if not smoke else 5
        mm = matmul_tflops("numpy", None, batch, n, d, reps=3)
        gd = gd_tflops("numpy", None, problem, batch, host_steps)
        print(f"{'numpy (host)':23s} {batch:5d} {n:5d} {d:5d} {mm:15.2f} {gd:11.2f} {gd / mm:12.0%}")
        for label, backend, device in backends:
            mm = matmul_tflops(backend, device, batch, n, d)
            for compile in (False, True) if backend == "torch" else (False,):  # torch.compile: sims.engine.compiled
                gd = gd_tflops(backend, device, problem, batch, 50 if not smoke else 5, compile)
                name = label + (" compiled" if compile else "")
                print(f"{name:23s} {batch:5d} {n:5d} {d:5d} {mm:15.2f} {gd:11.2f} {gd / mm:12.0%}")


# ----------------------------------------------------------------------------------------------
# 3. one claim, quick
# ----------------------------------------------------------------------------------------------
def claim_table(backends, claim: str = "diagonal.implicit_bias") -> None:
    print(f"\nsolvable verify --quick --claim {claim}")
    for label, backend, device in [("numpy", "numpy", None)] + list(backends):
        cmd = [sys.executable, "-m", "solvable", "verify", "--quick", "--claim", claim, "--backend", backend,
               "--no-report", "--no-progress"] + (["--device", device] if device else [])
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        sec = time.perf_counter() - start
        verdict = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-300:]
        print(f"{label:14s} {sec:8.1f} s  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append", choices=["flow", "gd", "claim"], help="only this part")
    parser.add_argument("--batches", default="64,1024", help="flow batch sizes (default 64,1024)")
    parser.add_argument("--coordinates", default="reduced,full", help="flow: which coordinates on the GPU")
    parser.add_argument("--smoke", action="store_true", help="toy sizes, NumPy as the device: tests the script")
    args = parser.parse_args()
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # JAX shares the card with CuPy and torch
    backends = gpu_backends(args.smoke)
    if not backends:
        print("no GPU backend with a CUDA device here (cupy, torch): nothing to measure. "
              "Run on a machine with a GPU, or --smoke to test the script.")
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}; "
          f"GPU backends: {', '.join(b[0] for b in backends)}")
    parts = args.part or ["flow", "gd", "claim"]
    if "flow" in parts:
        for batch in ([8] if args.smoke else [int(b) for b in args.batches.split(",")]):
            flow_table(batch, backends, args.smoke, tuple(args.coordinates.split(",")))
    if "gd" in parts:
        gd_table(backends, args.smoke)
    if "claim" in parts and not args.smoke:
        claim_table(backends)


if __name__ == "__main__":
    main()
