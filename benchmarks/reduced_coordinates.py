"""Reduced coordinates against the full flow and scipy: the deep-linear end-to-end ODE and the collapsed UFM.

Two reductions of issue 13, timed in one process on the same machine against the full parameterisation
through the same integrator (``coordinates="full"``) and against a plain loop of
``scipy.integrate.solve_ivp`` (RK45, the same rtol) on the full parameters, one run at a time:

* deep linear networks from a balanced, non-aligned start (``init="balanced"``): Arora et al.'s end-to-end
  ODE (one batched SVD per evaluation) against the N layers;
* the unconstrained feature model from a collapsed start (``init="collapsed"``): one feature per class
  against N features.

Printed: wall times, the ratios, and the largest difference of the end states (end-to-end matrix; features).
``--smoke`` runs toy sizes (a test does).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.integrate import solve_ivp

from solvable.sims import deep_linear, ufm


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _scipy_loop(loss_grad, state0: tuple[np.ndarray, ...], t_max: float, rtol: float) -> list[np.ndarray]:
    """solve_ivp on the full parameters of each run in turn (the field from the model's own gradient)."""
    shapes = [s.shape[1:] for s in state0]
    sizes = [int(np.prod(sh)) for sh in shapes]
    ends = []
    for b in range(state0[0].shape[0]):
        def rhs(_t, y):
            parts, at = [], 0
            for sh, sz in zip(shapes, sizes):
                parts.append(y[at:at + sz].reshape((1,) + sh))
                at += sz
            _, grads = loss_grad(tuple(parts))
            return -np.concatenate([g.reshape(-1) for g in grads])

        y0 = np.concatenate([s[b].reshape(-1) for s in state0])
        sol = solve_ivp(rhs, (0.0, t_max), y0, method="RK45", rtol=rtol, atol=1e-12)
        ends.append(sol.y[:, -1])
    return ends


def deep_linear_case(width: int, depth: int, batch: int, t_max: float, rtol: float) -> dict:
    problem = deep_linear.Problem.random(width, width, (width,) * (depth - 1), seed=0)
    alphas = np.geomspace(1e-3, 0.3, batch)
    red, t_red = _timed(lambda: deep_linear.simulate(problem, alphas, init="balanced", t_max=t_max, rtol=rtol, seed=1))
    full, t_full = _timed(lambda: deep_linear.simulate(problem, alphas, init="balanced", coordinates="full",
                                                       t_max=t_max, rtol=rtol, seed=1))
    m = deep_linear.model(problem, alphas, init="balanced", coordinates="full", seed=1)
    ends, t_scipy = _timed(lambda: _scipy_loop(m.loss_grad, tuple(np.asarray(s) for s in m.state0), t_max, rtol))
    sizes = [w * w for w in [width] * depth]
    products = []
    for e in ends:
        layers, at = [], 0
        for sz in sizes:
            layers.append(e[at:at + sz].reshape(width, width))
            at += sz
        p = layers[0]
        for w in layers[1:]:
            p = w @ p
        products.append(p)
    return {"case": f"deep linear, {depth} layers of {width}, B = {batch}", "reduced": t_red, "full": t_full,
            "scipy": t_scipy, "agreement": float(max(np.abs(red.final["product"] - full.final["product"]).max(),
                                                     np.abs(red.final["product"] - np.stack(products)).max()))}


def ufm_case(K: int, n_per: int, d: int, batch: int, t_max: float, rtol: float) -> dict:
    problem = ufm.Problem(n=(n_per,) * K, d=d, loss="ce", lambda_b=0.0)
    alphas = np.geomspace(0.05, 0.5, batch)
    kw = dict(init="collapsed", t_max=t_max, rtol=rtol, record_metrics=False, seed=1)
    red, t_red = _timed(lambda: ufm.simulate(problem, alphas, **kw))
    full, t_full = _timed(lambda: ufm.simulate(problem, alphas, coordinates="full", **kw))
    m = ufm.model(problem, alphas, init="collapsed", record_metrics=False, seed=1)
    ends, t_scipy = _timed(lambda: _scipy_loop(m.loss_grad, tuple(np.asarray(s) for s in m.state0), t_max, rtol))
    h_size = d * problem.N
    w_size = K * d
    H_scipy = np.stack([e[w_size:w_size + h_size].reshape(d, problem.N) for e in ends])
    return {"case": f"UFM (CE, bias), K = {K} x {n_per} samples, d = {d}, B = {batch}", "reduced": t_red,
            "full": t_full, "scipy": t_scipy,
            "agreement": float(max(np.abs(red.final["H"] - full.final["H"]).max(), np.abs(red.final["H"] - H_scipy).max()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="toy sizes: tests the script")
    args = parser.parse_args()
    rtol = 1e-8
    if args.smoke:
        rows = [deep_linear_case(3, 3, 2, 2.0, rtol), ufm_case(2, 3, 3, 2, 2.0, rtol)]
    else:
        rows = [deep_linear_case(20, 4, 16, 30.0, rtol), ufm_case(10, 100, 12, 16, 50.0, rtol)]
    print(f"rtol = {rtol:g}; times in seconds; ratios = time / reduced time")
    for r in rows:
        print(f"{r['case']}: reduced {r['reduced']:.2f}, full {r['full']:.2f} ({r['full'] / r['reduced']:.1f}x), "
              f"solve_ivp loop {r['scipy']:.2f} ({r['scipy'] / r['reduced']:.1f}x); largest end-state difference "
              f"{r['agreement']:.1e}")


if __name__ == "__main__":
    main()
