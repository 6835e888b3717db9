"""Gradient flow of a batch of diagonal networks: reduced vs full coordinates vs solve_ivp loops vs JAX + diffrax.

Workload (issue 13): n = 50, d = 200, a 5-sparse teacher, B initial scales
alpha = logspace(-3, 0.5, B) (and logspace(-2, 1, B), the earlier range, as a
second table), integrated to convergence at rtol = 1e-8, each method stopping where solvable
stops on the same system (a terminal event at solvable's per-run loss threshold:
the full coordinates' for the 2d parameters, the reduced coordinates' for mu).
Agreement is measured against the limit the theory gives, argmin Q_alpha on
Xw = y (Woodworth et al. 2020), solved by ``solvable.theory.diagonal.implicit_bias``,
which owes nothing to any integrator.

Methods, timed in this process on this machine:

* solvable, reduced coordinates (the default): the n-dimensional mu-flow by
  the batched Rosenbrock-W method (``coordinates="reduced"``);
* solvable, full coordinates: the 2d factors by batched Dormand-Prince;
* loops of ``scipy.integrate.solve_ivp`` over the runs: RK45 and LSODA on the
  full system (what a user writes first), LSODA and BDF with the exact Jacobian
  on the reduced system;
* JAX + diffrax (``jit`` of ``vmap`` over the runs, Dopri5 on the full system
  and Kvaerno5 with its own Jacobian on the reduced one) when installed
  (``pip install solvable[bench]``); compilation is timed apart.

Prints seconds, ratios to solvable-reduced and the agreement of the limits
with the reference; then how solvable's time grows with B and with d.
Run ``python benchmarks/diagonal_flow.py`` (``--quick``: B = 16, no scaling
tables; ``--no-slow``: skip the peers that take minutes: RK45 loop, diffrax Dopri5).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import time

import numpy as np
from scipy.integrate import solve_ivp

from solvable.sims import diagonal
from solvable.theory.diagonal import implicit_bias

RTOL = 1e-8
T_MAX = 1e6


def _tol(problem: diagonal.Problem, alphas: np.ndarray, cancellation: bool = True) -> np.ndarray:
    """solvable's own per-run threshold at rtol: the full coordinates' (``cancellation``: it sits above the floor
    that u^2 - v^2 leaves at large alpha) or the reduced coordinates', which have no such floor."""
    return diagonal.default_loss_tol(problem, np.repeat(alphas[:, None], problem.d, 1), "float64", RTOL,
                                     cancellation=cancellation)


def limits(problem: diagonal.Problem, alphas: np.ndarray) -> np.ndarray:
    """The flow's limits as the theory gives them (Woodworth et al. 2020, Thm 1: argmin Q_alpha on Xw = y,
    certified to a KKT residual of about 1e-12): a reference that owes nothing to any integrator."""
    return np.array([implicit_bias(problem.X, problem.y, a).x for a in alphas])


def scipy_full(problem, alphas, tol, method):
    X, y, d, n = problem.X, problem.y, problem.d, problem.n

    def rhs(t, z):
        u, v = z[:d], z[d:]
        g = X.T @ (X @ (u * u - v * v) - y) / n
        return np.concatenate([-2 * u * g, 2 * v * g])

    out = []
    for a, tl in zip(alphas, tol):
        def event(t, z, tl=tl):
            r = X @ (z[:d] ** 2 - z[d:] ** 2) - y
            return r @ r / (2 * n) - tl
        event.terminal = True
        z = solve_ivp(rhs, (0, T_MAX), np.full(2 * d, a), method=method, rtol=RTOL, atol=0.0, events=event).y[:, -1]
        out.append(z[:d] ** 2 - z[d:] ** 2)
    return np.array(out)


def scipy_reduced(problem, alphas, tol, method):
    X, y, n = problem.X, problem.y, problem.n
    out = []
    for a, tl in zip(alphas, tol):
        k = 2 * a * a

        def f(t, mu, k=k):
            return (X @ (-k * np.sinh(4 * (X.T @ mu))) - y) / n

        def jac(t, mu, k=k):
            return -((X * (4 * k * np.cosh(4 * (X.T @ mu)))) @ X.T) / n

        def event(t, mu, k=k, tl=tl):
            r = X @ (-k * np.sinh(4 * (X.T @ mu))) - y
            return r @ r / (2 * n) - tl
        event.terminal = True
        # atol on mu: an error e in mu moves log u by 2 X^T e, so rtol / (4 max |X|) keeps it below rtol
        mu = solve_ivp(f, (0, T_MAX), np.zeros(n), method=method, rtol=RTOL, atol=RTOL / (4 * np.abs(X).max()),
                       jac=jac, events=event).y[:, -1]
        out.append(-k * np.sinh(4 * (X.T @ mu)))
    return np.array(out)


def diffrax_runs(problem, alphas, tol, reduced: bool):
    """(compile seconds, run seconds, limits) of jit(vmap(diffeqsolve)) on the CPU."""
    import jax
    jax.config.update("jax_enable_x64", True)
    import diffrax as dfx
    import jax.numpy as jnp

    X, y, n, d = jnp.asarray(problem.X), jnp.asarray(problem.y), problem.n, problem.d

    def w_of(z, a):
        if reduced:
            return -2 * a * a * jnp.sinh(4 * (X.T @ z))
        return z[:d] ** 2 - z[d:] ** 2

    def vf(t, z, args):
        a = args[0]
        r = X @ w_of(z, a) - y
        if reduced:
            return r / n
        g = X.T @ r / n
        return jnp.concatenate([-2 * z[:d] * g, 2 * z[d:] * g])

    def cond(t, z, args, **kw):
        r = X @ w_of(z, args[0]) - y
        return r @ r / (2 * n) < args[1]

    def solve(a, tl):
        z0 = jnp.zeros(n) if reduced else jnp.full(2 * d, a)
        solver = dfx.Kvaerno5() if reduced else dfx.Dopri5()
        atol = RTOL / (4 * float(np.abs(problem.X).max())) if reduced else 1e-14
        sol = dfx.diffeqsolve(dfx.ODETerm(vf), solver, 0.0, T_MAX, None, z0, args=(a, tl),
                              stepsize_controller=dfx.PIDController(rtol=RTOL, atol=atol),
                              event=dfx.Event(cond), max_steps=500_000, saveat=dfx.SaveAt(t1=True))
        return w_of(sol.ys[-1], a)

    fn = jax.jit(jax.vmap(solve))
    args = (jnp.asarray(alphas), jnp.asarray(tol))
    start = time.perf_counter()
    fn.lower(*args).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    w = np.asarray(jax.block_until_ready(fn(*args)))
    return compile_s, time.perf_counter() - start, w


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def table(problem, alphas, slow: bool) -> None:
    tol_full, tol_red = _tol(problem, alphas), _tol(problem, alphas, cancellation=False)
    rows, ends = [], {}
    sec, traj = timed(lambda: diagonal.simulate(problem, alphas, t_max=T_MAX, rtol=RTOL))
    rows.append(("solvable reduced (Rosenbrock-W, batched)", sec, int(traj.stop_step.sum())))
    ends["solvable reduced"] = traj.final["w"]
    sec, traj = timed(lambda: diagonal.simulate(problem, alphas, t_max=T_MAX, rtol=RTOL, coordinates="full"))
    rows.append(("solvable full (Dormand-Prince, batched)", sec, int(traj.stop_step.sum())))
    ends["solvable full"] = traj.final["w"]
    ref = limits(problem, alphas)
    # each peer stops where solvable does on the same system: the full system's threshold for the full
    # parameters (below it u^2 - v^2 cannot resolve the loss at large alpha), the reduced one's for mu
    peers = [("solve_ivp loop, full, LSODA", scipy_full, "LSODA", tol_full),
             ("solve_ivp loop, reduced + jac, LSODA", scipy_reduced, "LSODA", tol_red),
             ("solve_ivp loop, reduced + jac, BDF", scipy_reduced, "BDF", tol_red)]
    if slow:
        peers.insert(0, ("solve_ivp loop, full, RK45", scipy_full, "RK45", tol_full))
    for name, fn, method, tol in peers:
        sec, w = timed(fn, problem, alphas, tol, method)
        rows.append((name, sec, None))
        ends[name] = w
    if importlib.util.find_spec("diffrax") is not None:
        for reduced in ((True, False) if slow else (True,)):
            name = f"jax + diffrax, {'reduced, Kvaerno5' if reduced else 'full, Dopri5'} (jit + vmap)"
            comp, sec, w = diffrax_runs(problem, alphas, tol_red if reduced else tol_full, reduced)
            rows.append((f"{name} [+{comp:.1f} s compile]", sec, None))
            ends[name] = w
    base = rows[0][1]
    print(f"\nB = {len(alphas)}, n = {problem.n}, d = {problem.d}, alpha in [{alphas[0]:g}, {alphas[-1]:g}], "
          f"rtol = {RTOL:g}; error: max over runs of |w - w_inf| / |w_inf|, w_inf = argmin Q_alpha on Xw = y")
    print(f"{'method':64s} {'seconds':>8s} {'x reduced':>10s} {'run-steps':>10s} {'max rel. err':>13s}")
    for name, sec, steps in rows:
        key = next(k for k in ends if name.startswith(k))
        w = ends[key]
        rel = float(np.max(np.linalg.norm(w - ref, axis=1) / np.linalg.norm(ref, axis=1)))
        print(f"{name:64s} {sec:8.2f} {sec / base:10.1f} {'' if steps is None else steps:>10} {rel:13.1e}")


def scaling(problem_of, alphas_of) -> None:
    print("\nsolvable's seconds as B grows (n = 50, d = 200, alpha = logspace(-3, 0.5, B)):")
    print(f"{'B':>5s} {'reduced':>9s} {'full':>9s} {'LSODA loop (full)':>18s}")
    problem = problem_of(200)
    for B in (1, 16, 64, 256):
        alphas = alphas_of(B)
        red, _ = timed(lambda: diagonal.simulate(problem, alphas, t_max=T_MAX, rtol=RTOL))
        full = lsoda = float("nan")
        if B <= 64:
            full, _ = timed(lambda: diagonal.simulate(problem, alphas, t_max=T_MAX, rtol=RTOL, coordinates="full"))
            lsoda, _ = timed(scipy_full, problem, alphas, _tol(problem, alphas), "LSODA")
        print(f"{B:5d} {red:9.2f} {full:9.2f} {lsoda:18.2f}")
    print("\nsolvable's seconds as d grows (B = 16, n = 50):")
    print(f"{'d':>5s} {'reduced':>9s} {'full':>9s}")
    for d in (100, 200, 400, 800):
        problem, alphas = problem_of(d), alphas_of(16)
        red, _ = timed(lambda: diagonal.simulate(problem, alphas, t_max=T_MAX, rtol=RTOL))
        full, _ = timed(lambda: diagonal.simulate(problem, alphas, t_max=T_MAX, rtol=RTOL, coordinates="full"))
        print(f"{d:5d} {red:9.2f} {full:9.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="B = 16 and no scaling tables")
    parser.add_argument("--no-slow", action="store_true", help="skip the RK45 loop and diffrax's Dopri5")
    args = parser.parse_args()
    batch = 16 if args.quick else 64
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    problem = diagonal.Problem.random(50, 200, 5, seed=0)
    table(problem, np.logspace(-3, 0.5, batch), slow=not args.no_slow)
    table(problem, np.logspace(-2, 1, batch), slow=False)
    if not args.quick:
        scaling(lambda d: diagonal.Problem.random(50, d, 5, seed=0), lambda B: np.logspace(-3, 0.5, B))


if __name__ == "__main__":
    main()
