"""Matrix sensing trained: the driver's model, simulate (GD, SGD, ScaledGD, sub-gradient, flows) and the sweep task."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine._validate import choice, nonneg_float, positive_float, positive_int, scale_array, shown
from ..engine.backend import DTYPES, asarray, namespace
from ..engine.driver import COORDINATES, resolve_coordinates, Model, broadcast_runs, train
from ..engine.matmul import product
from ..engine.rules import ScaledGD, Subgradient
from ..engine.trajectory import Trajectory
from .dynamics import initial_state, loss_grad, observe
from .operator import device_operator
from .problem import ALGORITHMS, FACTORISATIONS, INITS, LOSSES, Problem
from .reduced import reduced_model, reduced_refusal

__all__ = ["model", "simulate", "sweep_recovery"]


def _default_factorisation(problem: Problem, factorisation: str | None) -> str:
    if factorisation is None:
        return "symmetric" if problem.symmetric else "asymmetric"
    factorisation = choice("factorisation", factorisation, FACTORISATIONS)
    if factorisation == "symmetric" and not problem.symmetric:
        raise ValueError("factorisation='symmetric' (X X^T) needs a symmetric PSD problem (Problem.random(..., "
                         "symmetric=True))")
    return factorisation


def model(problem: Problem, alpha: Any, *, k: int, factorisation: str | None = None, depth: int = 3,
          beta: Any = None, init: str = "random", loss: str = "l2", loss_scale: float = 0.5, record_sv: bool = True,
          record_M: bool = False, coordinates: str = "full", seed: int = 0, backend: str = "numpy",
          dtype: str = "float64", device: Any = None) -> Model:
    """The factorised model on ``problem`` from scale ``alpha``, as the driver's :class:`~sims.engine.driver.Model`
    (see :func:`simulate` for the arguments; ``loss_grad`` takes per-measurement weights for a dense operator)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.matrix_sensing.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    factorisation = _default_factorisation(problem, factorisation)
    k = positive_int("k", k, 1, 10**5)
    depth = positive_int("depth", depth, 2, 64)
    init = choice("init", init, INITS)
    loss = choice("loss", loss, LOSSES)
    loss_scale = nonneg_float("loss_scale", loss_scale)
    if loss_scale == 0:
        raise ValueError("loss_scale must be > 0")
    for name, flag in (("record_sv", record_sv), ("record_M", record_M)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool; got {type(flag).__name__}")
    coordinates = choice("coordinates", coordinates, COORDINATES)
    xp = namespace(backend)
    state0 = initial_state(problem, alpha, factorisation=factorisation, k=k, depth=depth, beta=beta, init=init,
                           seed=seed, backend=backend, dtype=dtype, device=device)
    op = device_operator(problem, xp, dtype, device)
    M_star = asarray(problem.M_star, xp, dtype, device)
    a = np.atleast_1d(np.asarray(alpha, dtype=float))
    names = {"symmetric": ["X"], "asymmetric": ["F", "G"]}.get(factorisation, [f"layer_{j + 1}" for j in range(depth)])

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        out = dict(zip(names, host))
        if factorisation == "symmetric":
            out["M"] = host[0] @ np.transpose(host[0], (0, 2, 1))
        elif factorisation == "asymmetric":
            out["M"] = host[0] @ np.transpose(host[1], (0, 2, 1))
        else:
            out["M"] = product(host)
        return out

    eps = float(np.finfo(np.dtype(dtype)).eps)
    scale = max(float(np.linalg.norm(problem.M_star)), 0.0 if problem.y is None else float(np.linalg.norm(problem.y)))
    clean = problem.noise == 0 and problem.outliers == 0 and loss == "l2"

    def loss_tol(rel: float) -> float:
        # Noise-free l2: the loss reaches 0, but below s (100 rel max(||M*||_F, ||y||))^2 it only measures
        # integration and round-off error: relative error rel on the factors is ~2 rel on M, which the
        # operator maps to residuals of order rel ||y||, amplified along stiff directions (a margin of 100:
        # at 10 a run on commuting measurements hovered at the floor and never stopped). Otherwise the loss
        # never reaches 0 and runs stop on grad_tol or time.
        return loss_scale * (100 * max(rel, eps) * scale) ** 2 if clean else 0.0

    meta = {"problem": {"n1": problem.n1, "n2": problem.n2, "rank": problem.rank, "m": problem.m,
                        "operator": problem.operator, "kappa": problem.kappa, "noise": problem.noise,
                        "outliers": problem.outliers, "digest": problem.digest()},
            "alpha": a.tolist(), "beta": None if beta is None else np.atleast_1d(beta).astype(float).tolist(),
            "factorisation": factorisation, "k": k, "depth": depth if factorisation == "deep" else None,
            "init": init, "loss": loss, "loss_scale": loss_scale}
    if coordinates == "reduced":
        why = reduced_refusal(problem, init, loss)
        if why:
            raise ValueError(f"coordinates='reduced' does not apply here: {why}; use coordinates='full'")
        runs = state0[0].shape[0]
        a_runs = np.broadcast_to(a, (runs,)).astype(float)
        b_runs = None if beta is None else np.broadcast_to(np.atleast_1d(np.asarray(beta, dtype=float)), (runs,))
        return reduced_model(problem, a_runs, b_runs, k=k, factorisation=factorisation, depth=depth,
                             loss_scale=loss_scale, record_sv=bool(record_sv), record_M=bool(record_M),
                             backend=backend, dtype=dtype, device=device, meta=meta, loss_tol=loss_tol)
    return Model(
        name="matrix_sensing",
        state0=state0,
        loss_grad=lambda state, weights=None: loss_grad(op, factorisation, loss, loss_scale, state, weights),
        observe=lambda state: observe(op, M_star, factorisation, loss, loss_scale, state, bool(record_sv),
                                      bool(record_M)),
        final=final,
        meta=meta,
        backend=backend, dtype=dtype, n_samples=problem.m if problem.A is not None else None,
        # the aligned starts hold zeros that pure relative error control never lets move: exact ones off the
        # diagonal of the deep middle layers, and round-off ones in the singular vectors LAPACK returns for a
        # repeated singular value (kappa = 1; found by `solvable check matrix_sensing.reduced_equals_full`),
        # scaled by alpha in the outer factors; so an absolute floor, 1e-14 min(1, alpha) (1e-14 for deep)
        t_max=1e4, atol=_aligned_atol(init, factorisation, a), loss_tol=loss_tol,
        samples_hint="SGD draws measurements, which a dense operator has (operator='gaussian' or 'symmetric')",
    )


def _aligned_atol(init: str, factorisation: str, alpha: Any) -> float:
    """The flow's default absolute tolerance (see :func:`simulate`)."""
    if init != "aligned":
        return 0.0
    if factorisation == "deep":
        return 1e-14
    return 1e-14 * min(1.0, float(np.min(alpha)))


def simulate(
    problem: Problem,
    alpha: Any,
    algorithm: Any = "flow",
    *,
    lr: Any = None,
    steps: int | None = None,
    t_max: float | None = None,
    k: int,
    factorisation: str | None = None,
    depth: int = 3,
    beta: Any = None,
    init: str = "random",
    loss: str = "l2",
    loss_scale: float = 0.5,
    damping: float | None = None,
    decay: float | None = None,
    record_sv: bool = True,
    record_M: bool = False,
    coordinates: str | None = None,
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: Any = None,
    **options: Any,
) -> Trajectory:
    r"""Train a batch of factorised models on a matrix-sensing problem.

    Parameters
    ----------
    problem : Problem
    alpha : float or 1-D array (B,)
        Initial scale, one run per value (see :func:`initial_state`). A single
        scale with one ``lr`` per run gives one run per step size.
    algorithm : {"flow", "gd", "sgd", "sam", "gr", "scaledgd", "subgradient"} or an algorithm object
        The driver's algorithms (:mod:`sims.engine.driver`), ScaledGD(:math:`\lambda`) of
        Xu et al. 2023 (``damping`` = :math:`\lambda`; :class:`sims.engine.rules.ScaledGD`),
        and the sub-gradient method with steps :math:`\eta_0 q^t` of Ma & Fattahi 2023
        (``decay`` = :math:`q`; :class:`sims.engine.rules.Subgradient`).
    lr, steps, t_max
        As in every family (:mod:`sims.engine.driver`); default horizon 1e4.
    k : int (required)
        Width of the factors (their rank; k = r exact, k > r over-, k < r under-parameterised).
    factorisation : {"symmetric", "asymmetric", "deep"}, optional
        Default: symmetric for a symmetric problem, else asymmetric.
    depth : int >= 2
        Number of factors of the deep factorisation.
    beta : float or 1-D array, optional
        Initial scale of G (asymmetric only); default ``alpha``.
    init : {"random", "aligned"}
    loss : {"l2", "l1"}
        The l1 loss is non-smooth: gradient flow is refused for it.
    loss_scale : float
        :math:`s` in :math:`f = s\|\mathcal A(M) - y\|^2` (0.5; 0.25 for Xu et al. and Xiong et al.).
    damping, decay : float
        ``scaledgd``'s :math:`\lambda \ge 0` and ``subgradient``'s :math:`q \in (0, 1]`.
    record_sv : bool
        Record every singular value of ``M`` at every output time (``sv``, ``(B, T, min(n1, n2))``).
    record_M : bool
        Record ``M`` itself (``(B, T, n1, n2)``; small problems).
    coordinates : {"reduced", "full"}, optional
        ``"reduced"`` integrates one ODE per aligned mode (:mod:`sims.matrix_sensing.reduced`),
        exact for gradient flow with the l2 loss on the population operator from
        ``init="aligned"``, and the default there; ``"full"`` integrates the factors.
    seed : int
        Seed of the initial draw and of SGD's schedule.
    backend, dtype, device
    **options
        The driver's options. ``atol`` defaults to 0: the error norm is an RMS
        over all factor entries, which never vanish together for alpha > 0, and the
        factors span many decades at small alpha; for the aligned starts, whose
        factors hold zeros (exact ones in the deep middle layers, round-off ones in
        the singular vectors of a repeated singular value), ``1e-14 min(1, alpha)``
        (1e-14 for deep). ``loss_tol``: in a noise-free l2
        problem, :math:`s(100\,\text{rel}\,\max(\|M^*\|_F, \|y\|))^2` (below it the loss measures
        integration error); otherwise 0 (runs stop on ``grad_tol`` or time).

    Returns
    -------
    Trajectory
        ``final``: the factors (``X``; ``F``, ``G``; ``layer_j``) and ``M``;
        observables ``loss``, ``rel_error``, ``sv``, ``imbalance`` (asymmetric).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.matrix_sensing.Problem; got {type(problem).__name__}")
    if isinstance(algorithm, str) and algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS} or an algorithm object; got {shown(algorithm)}")
    if damping is not None and algorithm != "scaledgd":
        raise ValueError(f"damping applies to algorithm 'scaledgd', not {shown(algorithm)}")
    if decay is not None and algorithm != "subgradient":
        raise ValueError(f"decay applies to algorithm 'subgradient', not {shown(algorithm)}")
    if loss == "l1" and algorithm == "flow":
        raise ValueError("loss='l1' is non-smooth: gradient flow is not defined by an ODE here; use "
                         "algorithm='subgradient' or 'gd'")
    if algorithm in ("scaledgd", "subgradient"):
        if lr is None:
            raise ValueError(f"lr is required for algorithm={shown(algorithm)}: a number > 0 or one per run")
        if algorithm == "scaledgd":
            if damping is None:
                raise ValueError("damping (lambda >= 0) is required for algorithm='scaledgd'")
            if factorisation == "deep":
                raise ValueError("scaledgd preconditions one or two factors, not factorisation='deep'")
            algorithm = ScaledGD(lr=lr, damping=damping)
        else:
            algorithm = Subgradient(lr=lr, decay=1.0 if decay is None else decay)
        lr_for_runs, lr = lr, None
    else:
        lr_for_runs = lr
    a = broadcast_runs(np.atleast_1d(scale_array("alpha", alpha, (0, 1)))[:, None], lr_for_runs)[:, 0]
    coordinates = resolve_coordinates(coordinates, algorithm, stiff=False,
                                      refusal=reduced_refusal(problem, init, loss))
    m = model(problem, a, k=k, factorisation=factorisation, depth=depth, beta=beta, init=init, loss=loss,
              loss_scale=loss_scale, record_sv=record_sv, record_M=record_M, coordinates=coordinates, seed=seed,
              backend=backend, dtype=dtype, device=device)
    return train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)


def sweep_recovery(*, n: int, rank: int, k: int, alpha: float, m: int | None = None, kappa: float = 1.0,
                   symmetric: bool = True, operator: str = "gaussian", noise: float = 0.0, seed: int = 0,
                   algorithm: str = "gd", lr: float | None = 0.1, steps: int | None = 3000, t_max: float | None = None,
                   sv_tol: float = 1e-3, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    r"""Sweep task ``matrix_sensing.recovery``: one run on :meth:`Problem.random` (``n x n``, rank ``rank``,
    condition number ``kappa``, ``m`` measurements), summarised.

    Returns the status, the stop step and time, the final loss and relative error
    :math:`\|M - M^*\|_F / \|M^*\|_F`; ``rate``: the linear rate per step (per unit time for the flow),
    :math:`-\,d\ln(\text{error})/dt` fitted by least squares over the second half of the run (up to its stop) where the
    error is above :math:`10^{-12}` (negative where it grows; ``nan`` with fewer than three such points);
    ``learned_rank``: the singular values of the end-to-end :math:`M` above ``sv_tol`` times
    :math:`\sigma_1(M^*)`, and ``sv``: the largest ``rank + 2`` of them (numbers only, so a sweep store is plain
    JSON).
    """
    n = positive_int("n", n, 1, 10**4)
    problem = Problem.random(n, n, rank, m=m, kappa=kappa, symmetric=symmetric, operator=operator, noise=noise,
                             seed=seed)
    sv_tol = positive_float("sv_tol", sv_tol)
    if algorithm == "flow":
        options: dict[str, Any] = {} if t_max is None else {"t_max": t_max}
    else:  # 201 records over the run: enough for the fitted rate, little to store
        steps = positive_int("steps", steps, 1, 10**8)
        options = {"lr": lr, "steps": steps, "t_eval": np.unique(np.linspace(0, steps, 201).astype(int))}
    traj = simulate(problem, alpha, algorithm, k=k, seed=seed, backend=backend, device=device, **options)
    err, times = np.asarray(traj.observables["rel_error"][0], dtype=float), np.asarray(traj.times, dtype=float)
    stop = float(traj.stop_time[0])
    keep = (times >= stop / 2) & (times <= stop) & np.isfinite(err) & (err > 1e-12)
    rate = float(-np.polyfit(times[keep], np.log(err[keep]), 1)[0]) if keep.sum() >= 3 else float("nan")
    sv = np.asarray(traj.observables["sv"][0, -1], dtype=float)
    scale = float(np.linalg.svd(problem.M_star, compute_uv=False)[0])
    return {"status": str(traj.status[0]), "stop_step": int(traj.stop_step[0]), "stop_time": float(traj.stop_time[0]),
            "loss": float(traj.observables["loss"][0, -1]), "rel_error": float(err[-1]), "rate": rate,
            "learned_rank": int(np.sum(sv > sv_tol * scale)), "sv": [float(s) for s in sv[: rank + 2]]}
