"""GD steps per second on matrix sensing with a dense Gaussian operator, against the memory-bandwidth bound and peers.

n1 = n2 = 100, m = 5000 measurements (the operator is m x n1 n2 = 5e7 float64 entries, 400 MB), symmetric
factorisation k = 5, a batch of B runs. One GD step applies the operator and its adjoint once each, for the
whole batch at once: two matrix products that each read the operator once, so a step must move at least
2 x 8 m n1 n2 bytes. The script measures, in this process on this machine:

* the memory bandwidth (a NumPy reduction over a 400 MB array, best of five) and the peak of a large
  matrix product; the bound on a step is the larger of the operator's two reads at that bandwidth and its
  4 m n1 n2 B flops at that peak (a roofline: batch 1 is memory-bound, large batches compute-bound), and
  solvable's achieved fraction of it is printed;
* a plain NumPy loop over the measurements (``<A_i, M>`` one at a time, then the adjoint), per run;
* PyTorch on the same products when it is installed.

It also prints how the time per step grows with m and with the batch. Run:
``python benchmarks/matrix_sensing_gd.py`` (``--quick``: m = 1000).
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np

from solvable.sims import matrix_sensing as ms

N, RANK, K = 100, 3, 5


def bandwidth(nbytes: int) -> float:
    """Bytes per second of a streaming read (np.sum over a float64 array of ``nbytes``), best of five."""
    a = np.ones(nbytes // 8)
    best = np.inf
    for _ in range(5):
        t = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - t)
    return a.nbytes / best


def peak_flops() -> float:
    """Floating-point operations per second of a large float64 matrix product (this machine's BLAS, all cores)."""
    a = np.random.default_rng(0).standard_normal((2000, 2000))
    a @ a
    best = np.inf
    for _ in range(3):
        t = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - t)
    return 2 * 2000**3 / best


def solvable_steps(problem: ms.Problem, batch: int, steps: int) -> float:
    """Seconds per GD step of solvable's batched driver: a run of ``steps + 1`` steps minus a run of one,
    so that building the model (moving the operator, the initial draw) is not counted."""
    alphas = np.full(batch, 1e-3)

    def run(n: int) -> float:
        t = time.perf_counter()
        ms.simulate(problem, alphas, "gd", k=K, lr=0.05, steps=n, t_eval=[0, n], record_sv=False, loss_tol=0.0)
        return time.perf_counter() - t

    run(1)  # warm-up
    return (run(steps + 1) - run(1)) / steps


def loop_steps(problem: ms.Problem, steps: int) -> float:
    """Seconds per GD step of one run with a Python loop over the measurements."""
    A, y = problem.A, problem.y
    X = 1e-3 * np.random.default_rng(0).standard_normal((problem.n1, K))
    t = time.perf_counter()
    for _ in range(steps):
        M = X @ X.T
        G = np.zeros_like(M)
        for i in range(A.shape[0]):
            G += (np.sum(A[i] * M) - y[i]) * A[i]
        X = X - 0.05 * (G + G.T) @ X
    return (time.perf_counter() - t) / steps


def torch_steps(problem: ms.Problem, batch: int, steps: int) -> float | None:
    """Seconds per GD step of the same batched products in PyTorch (CPU), or None if it is not installed."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    A = torch.from_numpy(problem.A.reshape(problem.m, -1))
    y = torch.from_numpy(problem.y)
    X = 1e-3 * torch.randn(batch, problem.n1, K, dtype=torch.float64)
    t = time.perf_counter()
    for _ in range(steps):
        M = X @ X.transpose(1, 2)
        r = M.reshape(batch, -1) @ A.T - y
        G = (r @ A).reshape(batch, problem.n1, problem.n2)
        X = X - 0.05 * (G + G.transpose(1, 2)) @ X
    return (time.perf_counter() - t) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="m = 1000 instead of 5000")
    args = parser.parse_args()
    m = 1000 if args.quick else 5000
    problem = ms.Problem.random(N, N, RANK, m=m, symmetric=True, operator="symmetric", seed=0)
    op_bytes = 8 * m * N * N
    bw, flops = bandwidth(op_bytes), peak_flops()
    print(f"operator {m} x {N * N} float64 = {op_bytes / 1e6:.0f} MB; measured bandwidth {bw / 1e9:.1f} GB/s, "
          f"matrix-product peak {flops / 1e9:.0f} GFLOP/s")
    print("bound per step = max(two reads of the operator / bandwidth, 4 m n^2 B flops / peak) (a roofline)")
    print(f"{'batch':>6} {'s/step':>9} {'bound s':>9} {'steps/s':>8} {'runs*steps/s':>13} {'of bound':>9}")
    per_step = {}
    for batch in (1, 8, 32):
        sec = solvable_steps(problem, batch, 10 if not args.quick else 20)
        per_step[batch] = sec
        bound = max(2 * op_bytes / bw, 4 * m * N * N * batch / flops)
        print(f"{batch:>6} {sec:>9.4f} {bound:>9.4f} {1 / sec:>8.2f} {batch / sec:>13.1f} {bound / sec:>8.0%}")
    loop = loop_steps(problem, 2)
    print(f"plain NumPy loop over measurements, one run: {loop:.3f} s/step -> solvable (batch 32) is "
          f"{loop * 32 / per_step[32]:.0f}x faster per run-step, (batch 1) {loop / per_step[1]:.0f}x")
    tt = torch_steps(problem, 32, 10)
    print("PyTorch: not installed" if tt is None else
          f"PyTorch (CPU, batch 32): {tt:.4f} s/step; solvable / torch time ratio {per_step[32] / tt:.2f}")
    print("growth with m (batch 8):")
    for mm in (m // 4, m // 2, m):
        p = ms.Problem.random(N, N, RANK, m=mm, symmetric=True, operator="symmetric", seed=0)
        print(f"  m = {mm:>5}: {solvable_steps(p, 8, 10):.4f} s/step")


if __name__ == "__main__":
    main()
