"""Diagonal networks trained: the driver's model, simulate, the rescaled-time runs and the sweep tasks."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine._validate import choice, positive_array, positive_float, real_array
from ..engine.backend import DTYPES, asarray, namespace
from ..engine.driver import COORDINATES, Model, broadcast_runs, resolve_coordinates, train
from ..engine.trajectory import Trajectory
from .dynamics import default_loss_tol, initial_state, loss_grad, observe, split
from .problem import Problem, alpha_grid
from .reduced import reduced_model
from .shaped import shaped_initial_state, shaped_loss_grad, shaped_predictor

__all__ = ["model", "simulate", "simulate_rescaled", "sweep_gd_phase", "sweep_limit"]


def simulate(
    problem: Problem,
    alpha: Any,
    algorithm: Any = "flow",
    *,
    lr: Any = None,
    steps: int | None = None,
    t_max: float | None = None,
    shape: float = 0.0,
    record_w: bool = False,
    coordinates: str | None = None,
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: Any = None,
    **options: Any,
) -> Trajectory:
    r"""Train a batch of diagonal linear networks.

    Parameters
    ----------
    problem : Problem
    alpha : float, 1-D array (B,) or 2-D array (B, d)
        Initial scale ``u(0) = v(0) = alpha``; one run per row. A single
        scale with one ``lr`` per run gives one run per step size.
    algorithm : {"flow", "gd", "sgd", "sam", "gr"} or an algorithm object
        Gradient flow (adaptive Dormand-Prince), gradient descent, mini-batch
        SGD, SAM, or gradient descent on the gradient-regularised loss
        :math:`L + \tfrac{\lambda}{2}\|\nabla L\|^2` (``lam``; ``gr_eps`` is the
        finite-difference step of Karakida et al. 2023, see
        :class:`sims.engine.rules.GradientRegularized`); or ``flow.Flow(...)``,
        ``flow.SGD(...)``... (see :mod:`sims.engine.driver`).
    lr : float or 1-D array (B,), required by the discrete algorithms
        Step size (one per run if an array).
    steps : int, optional
        Step budget of a discrete algorithm (default ``ceil(t_max / min(lr))``).
    t_max : float, optional
        Flow: final time. Default 1e4.
    shape : float in (-1, 1)
        0 simulates :math:`w = u^2 - v^2`; otherwise the shaped network
        :math:`w = u_+ v_+ - u_- v_-` with :math:`u_0 v_0 = \alpha^2` and
        :math:`(u_0^2 - v_0^2)/(u_0^2 + v_0^2) =` ``shape`` (Azulay et al. 2021; see
        :func:`shaped_initial_state`).
    record_w : bool
        Also record the predictor ``w`` at every output time.
    coordinates : {"reduced", "full"}, optional
        ``"reduced"`` integrates the exact n-dimensional :math:`\mu`-flow
        (:mod:`sims.diagonal.reduced`: :math:`u = u_0e^{-2X^\top\mu}`...) by the
        Rosenbrock-W integrator; ``"full"`` integrates all the factors. Default:
        reduced for gradient flow (``"flow"``, or a ``Flow`` with a Rosenbrock
        tableau), full for the discrete algorithms, which have no reduction.
    seed : int
        Seed of SGD's mini-batch schedule (initial states are deterministic).
    backend, dtype, device
        Array backend (see :func:`sims.engine.backend.namespace`), precision, and the
        backend's device (``None``: its default).
    **options
        The driver's options (:mod:`sims.engine.driver`): ``batch_size, rho,
        sam_normalized, lam, gr_eps, t_eval, rtol, atol, max_steps, loss_tol,
        grad_tol``. Here ``atol`` defaults to 0 (pure relative control is right:
        ``u`` and ``v`` stay strictly positive, are multiplicative,
        ``u = alpha exp(-2 int g)``, and span many decades when alpha is small),
        and ``loss_tol`` to :func:`default_loss_tol`.

    Returns
    -------
    Trajectory
        ``final`` has ``w``, ``u`` and ``v`` of shape ``(B, d)`` (``w``,
        ``u_plus``... for a shaped network); observables are ``loss``, ``l1``,
        ``distance`` (when the teacher is known) and ``w`` when ``record_w``.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.diagonal.Problem; got {type(problem).__name__}")
    a = broadcast_runs(alpha_grid(alpha, problem.d), lr)
    coordinates = resolve_coordinates(coordinates, algorithm)
    m = model(problem, a, shape=shape, record_w=record_w, coordinates=coordinates, backend=backend, dtype=dtype,
              device=device)
    return train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)


def model(problem: Problem, alpha: Any, *, shape: float = 0.0, record_w: bool = False, coordinates: str = "full",
          backend: str = "numpy", dtype: str = "float64", device: Any = None) -> Model:
    """The diagonal network on ``problem`` from scale ``alpha``, as the driver's :class:`~sims.engine.driver.Model`
    (see :func:`simulate` for the arguments; its ``loss_grad`` takes per-sample weights)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.diagonal.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    shape = float(real_array("shape", shape, 0))
    if not -1 < shape < 1:
        raise ValueError(f"shape must lie in (-1, 1); got {shape}")
    shaped = shape != 0.0
    coordinates = choice("coordinates", coordinates, COORDINATES)
    xp = namespace(backend)
    a = alpha_grid(alpha, problem.d)
    meta = {"problem": {"n": problem.n, "d": problem.d, "noise": problem.noise, "digest": problem.digest()},
            "alpha": a[:, 0].tolist() if np.all(a == a[:, :1]) else a.tolist(), "shape": shape}
    if coordinates == "reduced":
        return reduced_model(problem, a, shape=shape, record_w=bool(record_w), backend=backend, dtype=dtype,
                             device=device, meta=meta,
                             loss_tol=lambda rel: default_loss_tol(problem, a, dtype, rel, cancellation=False))
    if shaped:
        state0 = shaped_initial_state(problem, a, shape, backend=backend, dtype=dtype, device=device)
    else:
        state0 = initial_state(problem, a, backend=backend, dtype=dtype, device=device)
    model_grad = shaped_loss_grad if shaped else loss_grad
    data = (asarray(problem.X, xp, dtype, device), asarray(problem.y, xp, dtype, device))
    w_star = None if problem.w_star is None else asarray(problem.w_star, xp, dtype, device)
    d = problem.d

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        (z,) = host
        if shaped:
            return {"w": shaped_predictor(host), "u_plus": z[:, :d], "v_plus": z[:, d : 2 * d],
                    "u_minus": z[:, 2 * d : 3 * d], "v_minus": z[:, 3 * d :]}
        u, v = split(host)
        return {"w": u * u - v * v, "u": u, "v": v}

    return Model(
        name="diagonal",
        state0=state0,
        loss_grad=lambda state, weights=None: model_grad(data, state, weights),
        observe=lambda state: observe(data, w_star, state, bool(record_w), shaped),
        final=final,
        meta=meta,
        backend=backend, dtype=dtype, n_samples=problem.n, t_max=1e4, atol=0.0,
        loss_tol=lambda rel: default_loss_tol(problem, a, dtype, rel),
    )


def sweep_limit(*, n: int, d: int, sparsity: int, alpha: float, noise: float = 0.0, seed: int = 0,
                algorithm: str = "flow", lr: float | None = None, steps: int | None = None,
                batch_size: int | None = None, t_max: float = 1e5, backend: str = "numpy",
                device: str | None = None) -> dict[str, Any]:
    r"""Sweep task ``diagonal.limit``: one run on :meth:`Problem.random`, summarised.

    Returns the status, the step count at the stop, the stopping time, final loss, :math:`\|w\|_1` and
    the distance to the teacher (numbers only, so a sweep store is plain JSON).
    """
    problem = Problem.random(n, d, sparsity, noise=noise, seed=seed)
    traj = simulate(problem, alpha, algorithm, lr=lr, steps=steps, batch_size=batch_size, t_max=t_max, seed=seed,
                    backend=backend, device=device)
    w = traj.final["w"][0]
    return {
        "status": str(traj.status[0]),
        "stop_step": int(traj.stop_step[0]),
        "stop_time": float(traj.stop_time[0]),
        "loss": float(0.5 * np.mean((problem.X @ w - problem.y) ** 2)),
        "l1": float(np.abs(w).sum()),
        "distance": float(np.linalg.norm(w - problem.w_star)),
    }


def sweep_gd_phase(*, n: int, d: int, sparsity: int, lr_scale: float, alphas: list[float], noise: float = 0.0,
                   seed: int = 0, steps: int = 20_000, backend: str = "numpy",
                   device: str | None = None) -> dict[str, Any]:
    r"""Sweep task ``diagonal.gd_phase``: GD on :meth:`Problem.random` at step
    :math:`\eta = \text{lr\_scale} / \lambda_{\max}(X^\top X/n)` from every scale of ``alphas`` at once (one batched
    run of ``len(alphas)`` networks), summarised per scale: a row of a phase diagram over (alpha, step size).

    Returns ``lr``; and per scale, in the order of ``alphas``: ``status`` (``converged``, ``diverged`` with the
    step in ``stop_step``, or ``out_of_time``), ``stop_step``, ``distance`` (:math:`\|w - w^*\|`, ``nan`` for a
    diverged run) and ``l1`` (:math:`\|w\|_1`, likewise). Even, Pesme, Gunasekar & Flammarion 2023 (Sec. 3): large
    steps shrink GD's effective scale unevenly, so the limit drifts from the sparse one as the step grows, until
    GD leaves its stability region and diverges.
    """
    a = positive_array("alphas", alphas, 1)
    lr_scale = positive_float("lr_scale", lr_scale)
    problem = Problem.random(n, d, sparsity, noise=noise, seed=seed)
    lr = lr_scale / float(np.linalg.eigvalsh(problem.X.T @ problem.X / problem.n)[-1])
    traj = simulate(problem, a, "gd", lr=lr, steps=steps, seed=seed, backend=backend, device=device)
    w = np.asarray(traj.final["w"], dtype=float)
    bad = traj.status == "diverged"
    dist = np.where(bad, np.nan, np.linalg.norm(w - problem.w_star, axis=1))
    return {"lr": lr, "status": [str(x) for x in traj.status], "stop_step": [int(k) for k in traj.stop_step],
            "distance": [float(x) for x in dist], "l1": [float(x) for x in np.where(bad, np.nan, np.abs(w).sum(axis=1))]}


def simulate_rescaled(problem: Problem, alphas: Any, tau: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray, Trajectory]:
    r"""Gradient flow for several alphas, read at common *rescaled* times :math:`\tilde t = t/\ln(1/\alpha)`.

    The saddle-to-saddle limit (Pesme & Flammarion 2023) lives on this time
    scale. One batched run: the real output times are the union of
    :math:`\tilde t \ln(1/\alpha_b)` over the batch, and each run is read at its own.

    Returns
    -------
    w : ndarray (B, T, d)
    loss : ndarray (B, T)
    traj : Trajectory
        The underlying run (on the union of the real times).
    """
    a = positive_array("alphas", alphas, 1)
    if np.any(a >= 1):
        raise ValueError("alphas must lie in (0, 1): the rescaling divides by ln(1/alpha)")
    tau = positive_array("tau", tau, 1)
    if np.any(np.diff(tau) <= 0):
        raise ValueError("tau must be strictly increasing")
    scale = np.log(1 / a)
    t_eval = np.unique(np.concatenate([[0.0], (tau[None, :] * scale[:, None]).ravel()]))
    traj = simulate(problem, a, t_max=float(t_eval[-1]), t_eval=t_eval, record_w=True, **kwargs)
    cols = np.searchsorted(t_eval, tau[None, :] * scale[:, None])
    rows = np.arange(len(a))[:, None]
    return traj.observables["w"][rows, cols], traj.observables["loss"][rows, cols], traj
