r"""Supervised contrastive loss on free unit-norm (ReLU) features: the UFM of Kini et al. 2024, simulated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._validate import choice, positive_float, scale_array
from .backend import DTYPES, asarray, check_seed, host_rng, host_to, namespace, xp_of
from .driver import Model, train
from .matmul import transpose
from .trajectory import Trajectory

if TYPE_CHECKING:  # the problem class lives with the UFM (imported lazily: ufm re-exports this module)
    from .ufm import Problem

__all__ = ["scl_features", "scl_loss_grad", "simulate_scl"]


def scl_features(U: Any, relu: bool) -> Any:
    """Unit-norm features :math:`h_i = \\phi(u_i)/\\|\\phi(u_i)\\|` (:math:`\\phi` = ReLU or identity), shape (B, d, N)."""
    xp = xp_of(U)
    R = xp.where(U > 0, U, 0.0) if relu else U
    norms = xp.sqrt(xp.sum(R * R, axis=1, keepdims=True))
    return R / xp.where(norms > 0, norms, 1.0)


def scl_loss_grad(problem: Problem, state: tuple[Any, ...], temperature: float, weights: Any = None) -> tuple[Any, tuple[Any]]:
    r"""Supervised contrastive loss of unit-norm features and its hand-written gradient.

    With :math:`s_{ik} = h_i^\top h_k/\tau`, :math:`p_{ik}` the softmax of
    :math:`s_{i\cdot}` over :math:`k \ne i` and :math:`q_{ik}` uniform over the
    other samples of :math:`i`'s class,
    :math:`L = \frac1N\sum_i \sum_{k\ne i} q_{ik}(\operatorname{lse}_{k\ne i}(s_{i\cdot}) - s_{ik})`
    (Khosla et al. 2020; the UFM of Kini et al. 2024). With :math:`A = P - Q`,
    :math:`\partial L/\partial h_i = \frac{1}{N\tau}\sum_k (A_{ik} + A_{ki})h_k`; then
    :math:`\partial L/\partial r = (I - hh^\top)\,\partial L/\partial h/\|r\|` through the
    normalisation and :math:`\partial L/\partial u = \mathbb 1[u > 0]\,\partial L/\partial r` through ReLU.
    The state is ``(U,)`` with ``U`` of shape (B, d, N).
    """
    xp = xp_of(state[0])
    (U,) = state
    N = problem.N
    R = xp.where(U > 0, U, 0.0) if problem.relu else U
    rn = xp.sqrt(xp.sum(R * R, axis=1, keepdims=True))
    rn = xp.where(rn > 0, rn, 1.0)
    H = R / rn
    S = xp.matmul(transpose(H), H) / temperature  # (B, N, N)
    eye = host_to(np.eye(N), U, xp.bool)
    S_off = xp.where(eye, -xp.inf, S)
    smax = xp.max(S_off, axis=2, keepdims=True)
    ez = xp.where(eye, 0.0, xp.exp(S_off - smax))
    tot = xp.sum(ez, axis=2, keepdims=True)
    P = ez / tot
    lse = smax + xp.log(tot)
    labels = np.repeat(np.arange(problem.K), problem.n)
    same = (labels[:, None] == labels[None, :]) & ~np.eye(N, dtype=bool)
    Q = same / np.maximum(same.sum(axis=1, keepdims=True), 1)
    Qd = host_to(Q, U)
    loss = xp.sum(xp.sum(Qd * (lse - xp.where(eye, 0.0, S)), axis=2), axis=1) / N
    A = P - Qd
    gH = xp.matmul(H, A + transpose(A)) / (N * temperature)
    radial = xp.sum(gH * H, axis=1, keepdims=True)
    gR = (gH - radial * H) / rn
    gU = xp.where(U > 0, gR, 0.0) if problem.relu else gR
    return loss, (gU,)


def simulate_scl(problem: Problem, alpha: Any = 1.0, temperature: float = 0.1, t_max: float = 2e3, *,
                 t_eval: Any = None, rtol: float = 1e-9, grad_tol: float = 1e-9, seed: int = 0,
                 backend: str = "numpy", dtype: str = "float64", device: Any = None) -> Trajectory:
    """Gradient flow of the supervised contrastive loss on free unit-norm features (ReLU when ``problem.relu``).

    Features start at ``alpha`` times a seeded Gaussian draw (made positive with ReLU so that no sample
    starts dead); ``final["H"]`` holds the normalised features.
    """
    from .ufm import Problem

    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.ufm.Problem; got {type(problem).__name__}")
    temperature = positive_float("temperature", temperature)
    seed = check_seed(seed)
    dtype = choice("dtype", dtype, DTYPES)
    xp = namespace(backend)
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    draw = host_rng(seed).standard_normal((problem.d, problem.N))
    if problem.relu:
        draw = np.abs(draw)
    contrastive = Model(
        name="ufm_scl",
        state0=(asarray(a[:, None, None] * draw[None], xp, dtype, device),),
        loss_grad=lambda state, weights=None: scl_loss_grad(problem, state, temperature),
        observe=lambda state: {"loss": scl_loss_grad(problem, state, temperature)[0]},
        final=lambda host: {"U": host[0], "H": np.asarray(scl_features(host[0], problem.relu))},
        meta={"n": list(problem.n), "d": problem.d, "relu": problem.relu, "temperature": temperature},
        backend=backend, dtype=dtype, t_max=2e3, atol=1e-12,
    )
    return train(contrastive, "flow", t_max=t_max, t_eval=t_eval, rtol=rtol, grad_tol=grad_tol, seed=seed)
