"""Batched gradient flow of diagonal networks vs a loop of scipy.integrate.solve_ivp.

B = 64 diagonal linear networks (n = 50, d = 200, 5-sparse teacher), alpha
log-spaced over [ALPHA_MIN, 10], integrated to convergence by

* solvable's batched Dormand-Prince 5(4) (one vectorised call, per-run step
  control), on NumPy and on every other installed backend;
* ``scipy.integrate.solve_ivp`` with RK45 (the same method) and LSODA, one run
  at a time, with the same rtol/atol and the same stopping rule (a terminal
  event at the same loss threshold).

Prints wall times, their ratios (measured in this process, on this machine)
and the agreement of the limits. Run: ``python benchmarks/diagonal_flow.py``
(``--quick`` for a smaller batch).
"""

from __future__ import annotations

import argparse
import importlib.util
import time

import numpy as np
from scipy.integrate import solve_ivp

from solvable.sims import diagonal

RTOL, ATOL = 1e-10, 0.0
T_MAX = 1e5


def scipy_loop(problem: diagonal.Problem, alphas: np.ndarray, loss_tol: np.ndarray, method: str):
    X, y, d, n = problem.X, problem.y, problem.d, problem.n
    finals, steps = [], 0

    def rhs(t, z):
        u, v = z[:d], z[d:]
        g = X.T @ (X @ (u * u - v * v) - y) / n
        return np.concatenate([-2 * u * g, 2 * v * g])

    for a, tol in zip(alphas, loss_tol):
        def converged(t, z, tol=tol):
            r = X @ (z[:d] ** 2 - z[d:] ** 2) - y
            return r @ r / (2 * n) - tol

        converged.terminal = True
        sol = solve_ivp(rhs, (0, T_MAX), np.full(2 * d, a), method=method, rtol=RTOL, atol=ATOL, events=converged)
        z = sol.y[:, -1]
        finals.append(z[:d] ** 2 - z[d:] ** 2)
        steps += sol.t.shape[0] - 1
    return np.array(finals), steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="B = 8 instead of 64")
    parser.add_argument("--strict", action="store_true", help="also time the array_api_strict backend")
    args = parser.parse_args()
    batch = 8 if args.quick else 64
    alpha_min = 1e-2
    problem = diagonal.Problem.random(50, 200, 5, seed=0)
    alphas = np.geomspace(alpha_min, 10, batch)
    loss_tol = diagonal.default_loss_tol(problem, np.repeat(alphas[:, None], problem.d, 1), "float64", RTOL)

    rows = []
    backends = ["numpy"] + (["array_api_strict"] if args.strict else []) + [b for b in ("torch", "cupy") if importlib.util.find_spec(b)]
    results = {}
    for backend in backends:
        start = time.perf_counter()
        traj = diagonal.simulate(problem, alphas, t_max=T_MAX, rtol=RTOL, atol=ATOL, backend=backend)
        seconds = time.perf_counter() - start
        results[backend] = traj.final["w"]
        rows.append((f"solvable batched dopri5 [{backend}]", seconds, int(traj.stop_step.max()),
                     int(traj.stop_step.sum()), ", ".join(sorted(set(traj.status)))))
    ref = results["numpy"]
    for method in ("RK45", "LSODA"):
        start = time.perf_counter()
        w, steps = scipy_loop(problem, alphas, loss_tol, method)
        seconds = time.perf_counter() - start
        results[method] = w
        rows.append((f"scipy solve_ivp loop [{method}]", seconds, None, steps, ""))

    base = rows[0][1]
    print(f"B = {batch} runs, n = {problem.n}, d = {problem.d}, alpha in [{alpha_min:g}, 10], "
          f"rtol = {RTOL:g}, atol = {ATOL:g}")
    print(f"{'method':40s} {'seconds':>9s} {'x numpy-batched':>16s} {'loop iters':>10s} {'run steps':>10s}  status")
    for name, sec, iters, steps, status in rows:
        print(f"{name:40s} {sec:9.2f} {sec / base:16.2f} {'' if iters is None else iters:>10} {steps:>10}  {status}")
    print("agreement of the limits with solvable[numpy] (max relative difference over runs):")
    for name, w in results.items():
        if name != "numpy":
            rel = np.max(np.linalg.norm(w - ref, axis=1) / np.linalg.norm(ref, axis=1))
            print(f"  {name:18s} {rel:.2e}")


if __name__ == "__main__":
    main()
