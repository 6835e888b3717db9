"""Deep linear networks trained: the driver's model, simulate and the sweep task."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine._validate import choice, positive_int, scale_array, real_array
from ..engine.backend import device_of as _device, DTYPES, asarray, check_seed, namespace
from ..engine.driver import COORDINATES, Model, broadcast_runs, resolve_coordinates, train
from ..engine.matmul import product, transpose
from ..engine.trajectory import Trajectory
from .dynamics import initial_state, loss_grad
from .hessian import flatten, sharpness
from .problem import Problem
from .reduced import end_to_end_model, reduced_model, reduced_refusal, scalar_model, scalar_refusal

__all__ = ["model", "simulate", "sweep_limit"]


def simulate(
    problem: Problem,
    alpha: Any = 1e-3,
    algorithm: Any = "flow",
    *,
    lr: Any = None,
    steps: int | None = None,
    t_max: float | None = None,
    init: str = "aligned",
    layers: Any = None,
    record_sharpness: bool = False,
    record_layers: bool = False,
    sharpness_iters: int = 20,
    coordinates: str | None = None,
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: Any = None,
    **options: Any,
) -> Trajectory:
    r"""Train a batch of deep linear (or scalar) networks.

    Parameters
    ----------
    problem : Problem
    alpha : float or 1-D array
        Initial scale (one run per value); ignored when ``layers`` is given.
    algorithm : {"flow", "gd", "sgd", "sam", "gr"} or an algorithm object
        Gradient flow (adaptive Dormand-Prince), gradient descent, mini-batch SGD
        (problems with data; ``batch_size`` samples drawn without replacement per
        step and run from a host schedule seeded by ``seed``), SAM
        (``sam_normalized=False`` for :math:`\theta - \eta\nabla L(\theta + \rho\nabla L)`,
        the form of Agarwala & Dauphin 2023), gradient-regularised GD; see :mod:`sims.engine.driver`.
    lr, steps, t_max
        Step size (one per run if an array), step budget, and horizon (flow:
        final time, default 50).
    init : {"aligned", "random"}
        See :func:`initial_state`.
    layers : sequence of arrays, optional
        Explicit initial layers, each ``(B, h_j, h_{j-1})`` (overrides ``alpha``/``init``).
    record_sharpness : bool
        Record the top Hessian eigenvalue (Lanczos on exact HVPs) at every output time.
    record_layers : bool
        Record all parameters, flattened (``params``: for scalar networks, the ``w_i``).
    coordinates : {"reduced", "full"}, optional
        ``"reduced"`` integrates one ODE per mode, :math:`\dot\sigma = N\sigma^{2-2/N}(s - \sigma)`
        (:mod:`sims.deep_linear.reduced`), exact for gradient flow from ``init="aligned"`` on a
        target-only problem, and the default there; ``"full"`` integrates every layer.
    seed, backend, dtype, device
        As in every family (see :func:`sims.diagonal.simulate`).
    **options
        The driver's options (:mod:`sims.engine.driver`); ``atol`` defaults to 1e-14
        here (layers pass through zero-free but small values from a small
        start) and ``loss_tol`` to 0 (runs stop at ``t_max`` or the budget).

    Returns
    -------
    Trajectory
        Observables ``loss``, ``modes`` (:math:`\operatorname{diag}(U^\top W V)`,
        the end-to-end matrix on the target's singular pairs), ``balancedness``
        (:math:`\max_j\|W_{j+1}^\top W_{j+1} - W_j W_j^\top\|_F`) and optionally
        ``sharpness``; ``final`` has ``layer_j`` and ``product``.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.deep_linear.Problem; got {type(problem).__name__}")
    if layers is None:
        alpha = broadcast_runs(np.atleast_1d(scale_array("alpha", alpha, (0, 1)))[:, None], lr)[:, 0]
    coordinates = resolve_coordinates(coordinates, algorithm, stiff=False, refusal=reduced_refusal(
        problem, init, layers, record_sharpness, record_layers))
    m = model(problem, alpha, init=init, layers=layers, record_sharpness=record_sharpness,
              record_layers=record_layers, sharpness_iters=sharpness_iters, coordinates=coordinates, seed=seed,
              backend=backend, dtype=dtype, device=device)
    return train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)


def model(problem: Problem, alpha: Any = 1e-3, *, init: str = "aligned", layers: Any = None,
          record_sharpness: bool = False, record_layers: bool = False, sharpness_iters: int = 20,
          coordinates: str = "full", seed: int = 0, backend: str = "numpy", dtype: str = "float64",
          device: Any = None) -> Model:
    """The deep linear network on ``problem`` as the driver's :class:`~sims.engine.driver.Model` (arguments as in
    :func:`simulate`; its ``loss_grad`` takes per-sample weights when the problem has data)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.deep_linear.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    seed = check_seed(seed)
    xp = namespace(backend)
    coordinates = choice("coordinates", coordinates, COORDINATES)
    meta = {"widths": list(problem.widths), "problem": {"digest": problem.digest()},
            "init": init if layers is None else "given"}
    if coordinates == "reduced":
        why = reduced_refusal(problem, init, layers, record_sharpness, record_layers)
        if why:
            raise ValueError(f"coordinates='reduced' does not apply here: {why}; use coordinates='full'")
        if not scalar_refusal(problem, record_sharpness):  # a scalar network: one ODE per run from any start
            if layers is not None:
                w0 = np.concatenate([real_array(f"layers[{j}]", w, 3).reshape(-1, 1) for j, w in enumerate(layers)],
                                    axis=1)
            else:
                host = initial_state(problem, alpha, init, seed=seed, backend="numpy", dtype="float64")
                w0 = np.concatenate([np.asarray(w).reshape(-1, 1) for w in host], axis=1)
            return scalar_model(problem, w0, record_layers=bool(record_layers), backend=backend, dtype=dtype,
                                device=device, meta=meta)
        scales = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
        if init == "balanced":
            return end_to_end_model(problem, scales, seed=seed, backend=backend, dtype=dtype, device=device, meta=meta)
        return reduced_model(problem, scales, backend=backend, dtype=dtype, device=device, meta=meta)
    if layers is not None:
        given = [real_array(f"layers[{j}]", w, 3) for j, w in enumerate(layers)]
        if len(given) != problem.depth:
            raise ValueError(f"layers must hold depth = {problem.depth} arrays; got {len(given)}")
        for j, w in enumerate(given):
            want = (problem.widths[j + 1], problem.widths[j])
            if w.shape[1:] != want or w.shape[0] != given[0].shape[0]:
                raise ValueError(f"layers[{j}] must have shape (B, {want[0]}, {want[1]}); got {w.shape}")
        state0 = tuple(asarray(w, xp, dtype, device) for w in given)
    else:
        state0 = initial_state(problem, alpha, init, seed=seed, backend=backend, dtype=dtype, device=device)
    target = asarray(problem.target, xp, dtype, device)
    data = None if problem.X is None else (asarray(problem.X, xp, dtype, device), asarray(problem.Y, xp, dtype, device))
    cov = None if problem.X is None else asarray(problem.input_covariance, xp, dtype, device)
    u, _, v = problem.svd()
    u_dev, v_dev = asarray(u, xp, dtype, device), asarray(v, xp, dtype, device)
    sharpness_iters = positive_int("sharpness_iters", sharpness_iters, 1, 10_000)

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        p = product(state)
        modes = xp.sum(xp.matmul(u_dev.T, p) * v_dev.T, axis=2)
        bal = xp.zeros((state[0].shape[0],), dtype=state[0].dtype, device=_device(state[0]))
        for lower, upper in zip(state[:-1], state[1:]):
            diff = xp.matmul(transpose(upper), upper) - xp.matmul(lower, transpose(lower))
            bal = xp.maximum(bal, xp.sqrt(xp.sum(diff * diff, axis=(1, 2))))
        if data is None:
            loss = xp.sum((p - target) ** 2, axis=(1, 2)) / 2
        else:
            err = xp.matmul(p, data[0].T) - data[1].T
            loss = xp.sum(err * err, axis=(1, 2)) / (2 * data[0].shape[0])
        out = {"loss": loss, "modes": modes, "balancedness": bal}
        if record_sharpness:
            out["sharpness"] = sharpness(target, state, iters=sharpness_iters, seed=seed, cov=cov)
        if record_layers:
            out["params"] = flatten(state)
        return out

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        out = {f"layer_{j + 1}": w for j, w in enumerate(host)}
        prod = host[0]
        for w in host[1:]:
            prod = np.matmul(w, prod)
        out["product"] = prod
        return out

    return Model(
        name="deep_linear", state0=state0,
        loss_grad=lambda state, weights=None: loss_grad(target, state, weights, data),
        observe=observe, final=final,
        meta=meta,
        backend=backend, dtype=dtype, n_samples=problem.n, t_max=50.0, atol=1e-14,
        samples_hint="use Problem.from_data(X, Y, hidden)",
    )


def sweep_limit(*, d_in: int, d_out: int, hidden: list[int], alpha: float, seed: int = 0, init: str = "aligned",
                algorithm: str = "flow", lr: float | None = None, steps: int | None = None, t_max: float = 50.0,
                backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    r"""Sweep task ``deep_linear.limit``: one run on :meth:`Problem.random` (singular values 3..1), summarised.

    Returns the status, steps, stopping time, final loss, the largest error of
    a mode :math:`\max_i|u_i^\top W v_i - s_i|`, the balancedness and the top
    Hessian eigenvalue at the end (numbers only, so a sweep store is plain JSON).
    """
    problem = Problem.random(d_in, d_out, tuple(hidden), seed=seed)
    traj = simulate(problem, alpha, algorithm, lr=lr, steps=steps, t_max=t_max, init=init, seed=seed,
                    backend=backend, device=device)
    _, s, _ = problem.svd()
    last = {k: v[0, -1] for k, v in traj.observables.items()}  # runs that stop early repeat their final values
    layers = tuple(traj.final[f"layer_{j + 1}"] for j in range(problem.depth))
    return {
        "status": str(traj.status[0]),
        "stop_step": int(traj.stop_step[0]),
        "stop_time": float(traj.stop_time[0]),
        "loss": float(last["loss"]),
        "mode_error": float(np.max(np.abs(last["modes"] - s))),
        "balancedness": float(last["balancedness"]),
        "sharpness": float(sharpness(problem.target, layers)[0]),
    }
