"""Linear self-attention trained: the driver's model, simulate, the refusals of the reduced coordinates and the sweep task."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine._validate import choice, positive_int, scale_array, shown
from ..engine.backend import DTYPES, namespace
from ..engine.driver import Model, broadcast_runs, resolve_coordinates, train
from ..engine.trajectory import Trajectory
from .dynamics import _device_data, initial_state, loss_grad, observe
from .problem import ARCHITECTURES, Problem

__all__ = ["label_symmetric", "model", "reduced_refusal", "simulate", "sweep_icl"]


def model(problem: Problem, alpha: Any, *, architecture: str = "reduced", layers: int = 1, init: str = "zfb",
          mask_query: bool = False, seed: int = 0, backend: str = "numpy", dtype: str = "float64",
          device: Any = None) -> Model:
    """The LSA on ``problem`` from scale ``alpha``, as the driver's :class:`~sims.engine.driver.Model` (see :func:`simulate`)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.lsa.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    architecture = choice("architecture", architecture, ARCHITECTURES)
    layers = positive_int("layers", layers, 1, 64)
    if layers > 1 and architecture != "ahn":
        raise ValueError(f"layers > 1 needs architecture='ahn' (the multi-layer sparse form); got {shown(architecture)}")
    if not isinstance(mask_query, (bool, np.bool_)):
        raise TypeError(f"mask_query must be a bool; got {type(mask_query).__name__}")
    if mask_query and architecture != "full":
        raise ValueError("mask_query applies to architecture='full' (reduced: the query never reaches the "
                         "prediction; ahn: always masked)")
    if problem.X is None and architecture != "reduced":
        raise ValueError(f"architecture={shown(architecture)} needs sampled prompts (Problem.random(..., "
                         f"n_prompts=P)); the population has closed forms for 'reduced' only")
    xp = namespace(backend)
    state0 = initial_state(problem, alpha, architecture=architecture, layers=layers, init=init, seed=seed,
                           backend=backend, dtype=dtype, device=device)
    data = _device_data(problem, architecture, bool(mask_query), xp, dtype, device)
    d = problem.d
    a = np.atleast_1d(np.asarray(alpha, dtype=float))

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        if architecture == "reduced":
            u, U = host
            return {"u": u[:, 0], "U11": U, "A": u[:, :, None] * np.transpose(U, (0, 2, 1))}
        if architecture == "full":
            r, K = host
            W_pv = np.zeros_like(K)
            W_pv[:, d, :] = r
            return {"W_PV": W_pv, "W_KQ": K, "A": r[:, d, None, None] * np.transpose(K[:, :d, :d], (0, 2, 1))}
        (As,) = host
        P = np.zeros(As.shape[:2] + (d + 1, d + 1))
        P[..., d, d] = 1.0
        Q = np.zeros_like(P)
        Q[..., :d, :d] = -As
        return {"A": As, "P": P, "Q": Q}

    return Model(
        name="lsa",
        state0=state0,
        loss_grad=lambda state, weights=None: loss_grad(data, architecture, state, weights),
        observe=lambda state: observe(data, architecture, d, state),
        final=final,
        meta={"problem": {"d": d, "N": problem.N, "noise": problem.noise, "task": problem.task,
                          "link": problem.link, "n_prompts": problem.n_prompts,
                          "random_covariance": problem.lambdas is not None, "digest": problem.digest()},
              "alpha": a.tolist(), "architecture": architecture, "layers": layers, "init": init,
              "mask_query": bool(mask_query),
              "convention": "ahn: loss mean (z_q + y_q)^2, prediction -z_q" if architecture == "ahn"
              else "zfb: loss 1/2 mean (y_hat - y_q)^2"},
        backend=backend, dtype=dtype, n_samples=problem.n_prompts,
        t_max=1e3, atol=0.0 if problem.X is None else 1e-12, loss_tol=0.0,
        samples_hint="SGD draws prompts: sample them with Problem.random(..., n_prompts=P)",
    )


def simulate(
    problem: Problem,
    alpha: Any,
    algorithm: Any = "flow",
    *,
    lr: Any = None,
    steps: int | None = None,
    t_max: float | None = None,
    architecture: str | None = None,
    layers: int = 1,
    init: str = "zfb",
    mask_query: bool = False,
    coordinates: str | None = None,
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: Any = None,
    **options: Any,
) -> Trajectory:
    r"""Train a batch of linear self-attention models on in-context regression.

    Parameters
    ----------
    problem : Problem
        A population (closed-form expectations; ``architecture="reduced"`` only) or sampled prompts.
    alpha : float or 1-D array (B,)
        Initial scale, one run per value (ZFB's :math:`\sigma` for ``init="zfb"``; see :func:`initial_state`).
    algorithm : {"flow", "gd", "sgd", "sam", "gr"} or an algorithm object
        As in every family (:mod:`sims.engine.driver`); SGD draws prompts. Default horizon 1e3.
    lr, steps, t_max
    architecture : {"reduced", "full", "ahn"}, optional
        ZFB's :math:`(u, U_{11})`, ZFB's full one-layer LSA, or Ahn et al.'s sparse multi-layer form (module
        docstring: each with its own loss scale and sign convention). Default ``"reduced"``, or what
        ``coordinates`` says.
    layers : int
        Number of layers (``ahn`` only).
    init : {"zfb", "random"}
    mask_query : bool
        Leave the query column out of the attention sum (``full`` only; Ahn et al.'s masking).
    coordinates : {"reduced", "full"}, optional
        ZFB's one-layer LSA simulated in its exact reduced coordinates :math:`(u, U_{11})` or in every
        parameter, as in the other families: ``"reduced"`` is exact (ZFB Lemma 5.2) for gradient flow from
        ``init="zfb"`` on the population or on label-symmetric prompts (each with its label-negated copy:
        every off-block gradient is odd in the labels), and refused with the reason elsewhere; ``None``
        (default) keeps ``architecture``'s choice, where ``"reduced"`` on any prompts is ZFB's reduced model
        in its own right. Recorded in ``meta["coordinates"]``.
    seed, backend, dtype, device
    **options
        The driver's options. ``atol`` defaults to 1e-12 on sampled prompts: ZFB's start has exact zeros (the
        last row and column of :math:`W^{KQ}`, the first entries of :math:`r`) that sampled prompts move off
        zero, and a purely relative error test would demand ever smaller steps for them (the parameters are of
        order 0.1-1); on the population, where no parameter vanishes, 0 (a purely relative test, which lets
        the stiff runs of a wide spectrum settle below a gradient of 1e-9).
        The minimal loss is not 0: runs stop on ``grad_tol`` (default 0) or at the horizon.

    Returns
    -------
    Trajectory
        ``final``: ``u``, ``U11``, ``A`` (reduced); ``W_PV``, ``W_KQ``, ``A`` (full); ``A`` (L, d, d), ``P``,
        ``Q`` in Ahn et al.'s form (ahn). Observables ``loss``, ``A``, ``balance``, ``rest`` (see :func:`observe`).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.lsa.Problem; got {type(problem).__name__}")
    a = broadcast_runs(np.atleast_1d(scale_array("alpha", alpha, (0, 1)))[:, None], lr)[:, 0]
    if coordinates is not None:
        if architecture not in (None, "reduced", "full"):
            raise ValueError(f"coordinates applies to ZFB's one-layer LSA (architecture 'reduced' or 'full'); got "
                             f"architecture={shown(architecture)}")
        coordinates = resolve_coordinates(coordinates, algorithm, stiff=False,
                                          refusal=reduced_refusal(problem, init, mask_query))
        if architecture is not None and architecture != coordinates:
            raise ValueError(f"architecture={shown(architecture)} contradicts coordinates={shown(coordinates)}; give one")
        architecture = coordinates
    architecture = "reduced" if architecture is None else architecture
    m = model(problem, a, architecture=architecture, layers=layers, init=init, mask_query=mask_query, seed=seed,
              backend=backend, dtype=dtype, device=device)
    traj = train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)
    traj.meta["coordinates"] = "reduced" if architecture == "reduced" else "full"  # the parameters it integrated
    return traj


def label_symmetric(problem: Problem) -> bool:
    """Whether every sampled prompt comes with its label-negated copy (the population counts as symmetric)."""
    if problem.X is None:
        return True
    keys = {(x.tobytes(), y.tobytes()) for x, y in zip(problem.X, problem.y + 0.0)}
    return all((x.tobytes(), (-y + 0.0).tobytes()) in keys for x, y in zip(problem.X, problem.y))


def reduced_refusal(problem: Problem, init: str, mask_query: bool) -> str:
    """Why ZFB's reduction is not exact here (empty when it is): Lemma 5.2 needs their initialisation and
    data whose off-block gradients vanish, the population or label-symmetric prompts."""
    if init != "zfb":
        return f"init={shown(init)} (the reduction needs ZFB's initialisation, Assumption 3.3)"
    if mask_query:
        return "mask_query=True (the reduced coordinates describe the unmasked layer)"
    if not label_symmetric(problem):
        return ("the sampled prompts are not label-symmetric (append each prompt with its labels negated, as the "
                "population is): the full flow then leaves the (u, U11) block form")
    return ""


def sweep_icl(*, d: int, N: int, alpha: float = 0.1, M: int | None = None, Lambda: list[float] | None = None,
              n_prompts: int | None = None, noise: float = 0.0, seed: int = 0, algorithm: str = "flow",
              lr: float | None = None, steps: int | None = None, t_max: float = 1e3, grad_tol: float = 1e-10,
              backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    r"""Sweep task ``lsa.icl``: ZFB's one-layer linear attention in its reduced coordinates, trained on prompts
    of length ``N`` (the population, or ``n_prompts`` sampled prompts) with covariates
    :math:`N(0, \operatorname{diag}\Lambda)` (``Lambda``: the diagonal, default the identity), summarised.

    A run stops when its gradient norm falls below ``grad_tol`` (status ``converged``) or at the horizon.
    Returns the status, the stop step and time; ``loss``: the final training loss (ZFB's
    :math:`\frac12 E(\hat y - y)^2`; on the population, the risk at length ``N``); ``test_loss``: the population
    risk of the learned :math:`A` on prompts of length ``M`` (default ``N``), from the same closed-form
    expectations as the population loss; the learned preconditioner :math:`A = u\,U_{11}^\top`: ``A_diag`` (its
    diagonal, the first 16 entries), ``A_offdiag`` (the Frobenius norm of the rest) and ``A_trace``.
    """
    L = None if Lambda is None else np.asarray(Lambda, dtype=float)
    problem = Problem.random(d, N, n_prompts=n_prompts, Lambda=L, noise=noise, seed=seed)
    M = N if M is None else positive_int("M", M, 1, 10**6)
    traj = simulate(problem, alpha, algorithm, lr=lr, steps=steps, t_max=t_max, grad_tol=grad_tol, seed=seed,
                    backend=backend, device=device)
    u, U = traj.final["u"], traj.final["U11"]
    at_M = Problem.random(d, M, Lambda=L, noise=noise)  # the population at the test length
    data = _device_data(at_M, "reduced", False, np, "float64", None)
    test_loss = loss_grad(data, "reduced", (np.asarray(u[:, None], dtype=float), np.asarray(U, dtype=float)))[0]
    A = np.asarray(traj.final["A"][0], dtype=float)
    off = A - np.diag(np.diag(A))
    return {"status": str(traj.status[0]), "stop_step": int(traj.stop_step[0]), "stop_time": float(traj.stop_time[0]),
            "loss": float(traj.observables["loss"][0, -1]), "test_loss": float(test_loss[0]),
            "A_diag": [float(x) for x in np.diag(A)[:16]], "A_offdiag": float(np.linalg.norm(off)),
            "A_trace": float(np.trace(A))}
