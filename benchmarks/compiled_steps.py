"""Compiled steps (``compile=True``, torch.compile) against the eager ones and NumPy, on one device.

**Gradient descent** on the diagonal network (issue 14's model): a batch of B runs, n samples, d
coordinates, float64. One GD step is two matrix products (X w and X^T r, 4 B n d FLOP) and some twenty
elementwise passes over the (B, 2d) parameters, each a loop of its own in an eager library; a compiled
step fuses those passes. For each size the script prints, from one process on one machine:

* seconds per step of solvable on NumPy, on torch eagerly and on torch compiled (the fixed cost of a
  call, compilation included, removed by differencing two step counts), and the compiled step's speed-up;
* the first compiled call's time (the compilation, served from TorchInductor's cache on later runs);
* the fraction of the machine's FP64 matrix-product throughput each achieves (the same (B, d) x (d, n)
  product timed alone with torch on the same device): 100 % would be a step that costs its products only;
* the largest relative difference of the final parameters from the eager torch run.

**Gradient flow** of the same model (issue 14's flow workload: n = 50, d = 200, B = 64,
alpha = logspace(-3, 0.5), rtol = 1e-8, to convergence) in reduced coordinates (Rosenbrock-W) and in
full ones (Dormand-Prince): seconds of a whole run on NumPy, torch eager and torch compiled (the
compilation timed apart, by a first run), and the largest relative distance of the limits w_inf from
NumPy's.

Run ``python benchmarks/compiled_steps.py`` (``--device cuda`` on a GPU; ``--quick``: the two small GD
sizes and B = 8 for the flow; ``--part gd|flow``).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from solvable.sims import diagonal

SIZES = [(8, 50, 200), (64, 50, 200), (256, 200, 1000), (1024, 500, 4000)]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_flops(batch: int, n: int, d: int, device: str, reps: int = 10) -> float:
    """FLOP/s of the (B, d) x (d, n) float64 product with torch on ``device``, best of three."""
    import torch

    rng = np.random.default_rng(0)
    a = torch.asarray(rng.standard_normal((batch, d)), device=device)
    b = torch.asarray(rng.standard_normal((d, n)), device=device)
    a @ b
    best = np.inf
    for _ in range(3):
        _sync(device)
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2.0 * batch * n * d * reps / best


def per_step(problem, batch: int, backend: str, device, steps: int, **kw) -> tuple[float, float, np.ndarray]:
    """(seconds per step, first call's seconds, final parameters) of solvable's GD."""
    alphas = np.full(batch, 0.1)

    def run(s):
        if backend == "torch":
            _sync(str(device))
        t = time.perf_counter()
        tr = diagonal.simulate(problem, alphas, algorithm="gd", lr=1e-3, steps=s, t_eval=[0, s], loss_tol=0.0,
                               backend=backend, device=device, **kw)
        if backend == "torch":
            _sync(str(device))
        return time.perf_counter() - t, tr

    first, _ = run(2)
    short = min(run(2)[0] for _ in range(3))
    long, tr = min((run(2 + steps) for _ in range(3)), key=lambda r: r[0])
    return (long - short) / steps, first, np.concatenate([tr.final["u"], tr.final["v"]], axis=1)


def flow_table(device: str, quick: bool) -> None:
    batch = 8 if quick else 64
    problem = diagonal.Problem.random(50, 200, 5, seed=0)
    alphas = np.logspace(-3, 0.5, batch)
    print(f"\ngradient flow, diagonal network: B = {batch}, n = 50, d = 200, rtol = 1e-8, to convergence")
    print(f"{'coordinates':12s} | {'numpy s':>8s} {'torch s':>8s} {'compiled s':>11s} {'speed-up':>9s} "
          f"{'compile s':>10s} | {'rel. err of w_inf: torch':>25s} {'compiled':>9s}")
    for coords in ("reduced", "full"):
        kw = dict(t_max=1e6, rtol=1e-8, coordinates=coords)

        def run(backend, dev=None, **extra):
            if backend == "torch":
                _sync(device)
            t = time.perf_counter()
            tr = diagonal.simulate(problem, alphas, backend=backend, device=dev, **kw, **extra)
            if backend == "torch":
                _sync(device)
            return time.perf_counter() - t, tr.final["w"]

        host, w_ref = run("numpy") if device == "cpu" else (float("nan"), run("numpy")[1])
        run("torch", device)  # the backend's own first-call costs
        eager, w_eager = run("torch", device)
        first = run("torch", device, compile=True)[0]
        comp, w_comp = run("torch", device, compile=True)
        err = [float(np.max(np.linalg.norm(w - w_ref, axis=1) / np.linalg.norm(w_ref, axis=1)))
               for w in (w_eager, w_comp)]
        print(f"{coords:12s} | {host:8.2f} {eager:8.2f} {comp:11.2f} {eager / comp:8.1f}x {first - comp:10.1f} | "
              f"{err[0]:25.1e} {err[1]:9.1e}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch's device: cpu (default) or cuda")
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--part", action="append", choices=["gd", "flow"], help="only this part")
    args = parser.parse_args()
    import torch

    on_host = args.device == "cpu"
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, torch {torch.__version__}"
          f" ({torch.get_num_threads()} threads), device {args.device}"
          + ("" if on_host else f" ({torch.cuda.get_device_name()})"))
    parts = args.part or ["gd", "flow"]
    if "gd" in parts:
        gd_table(args.device, args.quick, on_host)
    if "flow" in parts:
        flow_table(args.device, args.quick)


def gd_table(device: str, quick: bool, on_host: bool) -> None:
    print("\ngradient descent, diagonal network, float64")
    print(f"{'B':>5s} {'n':>4s} {'d':>5s} | {'numpy ms':>9s} {'torch ms':>9s} {'compiled ms':>12s} "
          f"{'speed-up':>9s} {'compile s':>10s} | {'of matmul: numpy':>17s} {'torch':>6s} {'compiled':>9s} "
          f"| {'max rel diff':>12s}")
    for batch, n, d in SIZES[:2] if quick else SIZES:
        problem = diagonal.Problem.random(n, d, 5, seed=0)
        steps = max(20, min(2000, int(2e8 / (batch * n * d))))
        flop = 4.0 * batch * n * d
        mm = matmul_flops(batch, n, d, device)
        host = per_step(problem, batch, "numpy", None, steps)[0] if on_host else float("nan")
        eager, _, ref = per_step(problem, batch, "torch", device, steps)
        comp, first, got = per_step(problem, batch, "torch", device, steps, compile=True)
        rel = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
        print(f"{batch:5d} {n:4d} {d:5d} | {host * 1e3:9.3f} {eager * 1e3:9.3f} {comp * 1e3:12.3f} "
              f"{eager / comp:8.1f}x {first:10.1f} | {flop / host / mm:17.0%} {flop / eager / mm:6.0%} "
              f"{flop / comp / mm:9.0%} | {rel:12.1e}", flush=True)


if __name__ == "__main__":
    main()
