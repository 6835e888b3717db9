"""The UFM trained: the driver's model, simulate (full, collapsed or aligned coordinates) and the sweep task."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine._validate import choice, scale_array
from ..engine.backend import DTYPES, asarray, check_seed, namespace
from ..engine.driver import Model, broadcast_runs, resolve_coordinates, train
from ..engine.matmul import product
from ..engine.trajectory import Trajectory
from .dynamics import aligned_frame, initial_state, loss_grad, metrics
from .problem import INITS, Problem
from .reduced import aligned_model, aligned_refusal, collapsed_model, collapsed_refusal

__all__ = ["model", "simulate", "sweep_collapse"]


def simulate(
    problem: Problem,
    alpha: Any = 0.1,
    algorithm: Any = "flow",
    *,
    lr: Any = None,
    steps: int | None = None,
    t_max: float | None = None,
    record_metrics: bool = True,
    init: str = "random",
    coordinates: str | None = None,
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: Any = None,
    **options: Any,
) -> Trajectory:
    r"""Train a batch of unconstrained feature models from small random initialisations.

    ``algorithm``: ``"flow"`` (adaptive Dormand-Prince), ``"gd"``, ``"sgd"``
    (``batch_size`` samples per step: the data term is the mini-batch mean,
    the regulariser stays whole, so feature columns outside the batch only
    decay), ``"sam"``, ``"gr"``, or an algorithm object (see :mod:`sims.engine.driver`).
    ``t_max`` defaults to 1e4. A run converges when its gradient norm falls
    below ``grad_tol`` (default 1e-10: the objective does not go to zero, it is
    regularised); ``atol`` defaults to 1e-12.

    ``init``: ``"random"`` (every feature its own Gaussian column), ``"collapsed"`` (every feature at its
    class's Gaussian vector) or ``"aligned"`` (collapsed on an orthonormal frame with the classifier's rows
    along it; one layer). ``coordinates``: from a collapsed start gradient flow keeps each class collapsed,
    and ``"reduced"`` (the default there) integrates one feature per class; from the aligned start with the
    squared error (no bias, ReLU or anchor) two numbers per class (:mod:`sims.ufm.reduced`); ``"full"`` every
    feature. Refused, with the reason, where it is not exact.

    Returns a :class:`Trajectory` with observables ``loss`` and, with
    ``record_metrics``, ``nc1``-``nc4``; ``final`` holds ``W_1..W_M``, ``H``,
    ``b`` (if any) and the end-to-end classifier ``W``.
    """
    a = broadcast_runs(np.atleast_1d(scale_array("alpha", alpha, (0, 1)))[:, None], lr)[:, 0]
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.ufm.Problem; got {type(problem).__name__}")
    coordinates = resolve_coordinates(coordinates, algorithm, stiff=False,
                                      refusal=collapsed_refusal(problem, choice("init", init, INITS)))
    m = model(problem, a, record_metrics=record_metrics, init=init, coordinates=coordinates, seed=seed,
              backend=backend, dtype=dtype, device=device)
    return train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)


def model(problem: Problem, alpha: Any = 0.1, *, record_metrics: bool = True, init: str = "random",
          coordinates: str = "full", seed: int = 0, backend: str = "numpy", dtype: str = "float64",
          device: Any = None) -> Model:
    """The unconstrained feature model as the driver's :class:`~sims.engine.driver.Model` (arguments as in
    :func:`simulate`; its ``loss_grad`` takes per-sample weights in full coordinates)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.ufm.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    seed = check_seed(seed)
    xp = namespace(backend)
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    init = choice("init", init, INITS)
    meta = {"n": list(problem.n), "d": problem.d, "loss": problem.loss, "lambda_W": problem.lambda_W,
            "lambda_H": problem.lambda_H, "lambda_b": problem.lambda_b, "depth": problem.depth,
            "relu": problem.relu, "alpha": a.tolist(), "init": init}
    if coordinates == "reduced":
        why = collapsed_refusal(problem, init)
        if why:
            raise ValueError(f"coordinates='reduced' does not apply here: {why}; use coordinates='full'")
        if not aligned_refusal(problem, init):
            meta["reduction"] = "aligned modes"
            return aligned_model(problem, aligned_frame(problem, seed), a, record_metrics=record_metrics,
                                 backend=backend, dtype=dtype, device=device, meta=meta, t_max=1e4, atol=1e-12,
                                 grad_tol=1e-10)
        meta["reduction"] = "collapsed classes"
        state0 = initial_state(problem, a, init=init, seed=seed, backend=backend, dtype=dtype, device=device,
                               class_vectors=True)
        return collapsed_model(problem, state0, record_metrics=record_metrics, backend=backend, dtype=dtype,
                               device=device, meta=meta, t_max=1e4, atol=1e-12, grad_tol=1e-10)
    state0 = initial_state(problem, a, init=init, seed=seed, backend=backend, dtype=dtype, device=device)
    Y = asarray(problem.labels(), xp, dtype, device)
    anchor = None if problem.anchor is None else asarray(problem.anchor, xp, dtype, device)

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        out = {"loss": loss_grad(problem, Y, state, anchor=anchor)[0]}
        if record_metrics:
            out.update(metrics(problem, state))
        return out

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        M = problem.depth
        out = {f"W_{j + 1}": w for j, w in enumerate(host[:M])}
        out["H"] = host[M]
        if problem.lambda_b is not None:
            out["b"] = host[M + 1]
        out["W"] = product(host[:M])
        return out

    return Model(
        name="ufm", state0=state0,
        loss_grad=lambda state, weights=None: loss_grad(problem, Y, state, weights, anchor=anchor),
        observe=observe, final=final,
        meta=meta,
        backend=backend, dtype=dtype, n_samples=problem.N, t_max=1e4, atol=1e-12, grad_tol=1e-10,
    )


def sweep_collapse(*, n: list[int], d: int, loss: str = "mse", lambda_W: float = 5e-3, lambda_H: float = 5e-3,
                   depth: int = 1, alpha: float = 0.1, seed: int = 0, algorithm: str = "flow",
                   lr: float | None = None, steps: int | None = None, t_max: float = 1e4,
                   backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    """Sweep task ``ufm.collapse``: one bias-free UFM run, summarised by its final loss and NC1-NC4."""
    problem = Problem(n=tuple(n), d=d, loss=loss, lambda_W=lambda_W, lambda_H=lambda_H, depth=depth)
    traj = simulate(problem, alpha, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, backend=backend,
                    device=device)
    out: dict[str, Any] = {"status": str(traj.status[0]), "stop_step": int(traj.stop_step[0]),
                           "stop_time": float(traj.stop_time[0])}
    out.update({k: float(v[0, -1]) for k, v in traj.observables.items()})
    return out
