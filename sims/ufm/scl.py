r"""Supervised contrastive loss on free unit-norm (ReLU) features: the UFM of Kini et al. 2024, simulated."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine._validate import choice, positive_float, scale_array
from ..engine.backend import DTYPES, asarray, check_seed, host_rng, host_to, namespace, xp_of
from ..engine.driver import Model, train
from ..engine.matmul import transpose
from ..engine.trajectory import Trajectory

from .problem import Problem

__all__ = ["batch_constants", "batch_masks", "scl_features", "scl_loss_grad", "simulate_scl"]


def scl_features(U: Any, relu: bool) -> Any:
    """Unit-norm features :math:`h_i = \\phi(u_i)/\\|\\phi(u_i)\\|` (:math:`\\phi` = ReLU or identity), shape (B, d, N)."""
    xp = xp_of(U)
    R = xp.where(U > 0, U, 0.0) if relu else U
    norms = xp.sqrt(xp.sum(R * R, axis=1, keepdims=True))
    return R / xp.where(norms > 0, norms, 1.0)


def batch_masks(problem: Problem, batches: Any = None) -> np.ndarray:
    """The mini-batches as a host ``(n_batches, N)`` boolean membership array (None: one batch of every sample).

    ``batches`` is a sequence of index sequences into the samples, which are ordered by class; a batch needs
    two distinct samples, and an index may appear once per batch.
    """
    N = problem.N
    if batches is None:
        return np.ones((1, N), dtype=bool)
    if isinstance(batches, (str, bytes)) or not hasattr(batches, "__iter__"):
        raise TypeError("batches must be a sequence of index sequences")
    rows = []
    for j, batch in enumerate(batches):
        idx = np.asarray(batch)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise ValueError(f"batches[{j}] must be a 1-D sequence of integer sample indices; got {batch!r}")
        if idx.size < 2 or idx.min() < 0 or idx.max() >= N or np.unique(idx).size != idx.size:
            raise ValueError(f"batches[{j}] must hold at least two distinct indices in [0, {N - 1}]; got {idx.tolist()}")
        row = np.zeros(N, dtype=bool)
        row[idx] = True
        rows.append(row)
    if not rows:
        raise ValueError("batches must hold at least one batch")
    return np.stack(rows)


def batch_constants(problem: Problem, masks: Any, like: Any) -> tuple[Any, Any, Any, Any]:
    """The batches' fixed arrays on ``like``'s device: the in-batch pairs ``(nb, N, N)``, the anchors with a pair,
    the positives' weights :math:`q^b/(n_b|b|)` and their row sums. Built once per run (:func:`simulate_scl`), so
    that no evaluation copies them from the host."""
    xp = xp_of(like)
    member = np.asarray(masks, dtype=bool)
    N, nb = problem.N, member.shape[0]
    pairs = member[:, :, None] & member[:, None, :] & ~np.eye(N, dtype=bool)[None]
    labels = np.repeat(np.arange(problem.K), problem.n)
    same = (labels[:, None] == labels[None, :])[None] & pairs
    weight = 1.0 / (nb * member.sum(axis=1))[:, None, None]  # 1 / (n_b |b|)
    Q = same / np.maximum(same.sum(axis=2, keepdims=True), 1)
    return (host_to(pairs, like, xp.bool), host_to(pairs.any(axis=2, keepdims=True), like, xp.bool),
            host_to(Q * weight, like), host_to(Q.sum(axis=2, keepdims=True) * weight, like))


def scl_loss_grad(problem: Problem, state: tuple[Any, ...], temperature: float, weights: Any = None,
                  masks: Any = None, constants: Any = None) -> tuple[Any, tuple[Any]]:
    r"""Supervised contrastive loss of unit-norm features, mean over fixed mini-batches, and its hand-written gradient.

    In batch :math:`b` (membership ``masks[b]``, :func:`batch_masks`; default one batch of all samples), with
    :math:`s_{ik} = h_i^\top h_k/\tau`, :math:`p^b_{ik}` the softmax of :math:`s_{i\cdot}` over the batch's
    other samples and :math:`q^b_{ik}` uniform over the batch's other samples of :math:`i`'s class,
    :math:`L_b = \frac{1}{|b|}\sum_{i \in b}\sum_{k} q^b_{ik}(\operatorname{lse}^b_i(s_{i\cdot}) - s_{ik})`
    (Khosla et al. 2020; the UFM of Kini et al. 2024): an anchor without a positive in the batch adds
    nothing (its row of :math:`q^b` is zero) and counts only as a negative of the others;
    :math:`L = \frac{1}{n_b}\sum_b L_b` (one batch: the mean over all samples). With
    :math:`A = \sum_b \frac{1}{n_b|b|}(\operatorname{diag}(q^b\mathbf 1)p^b - q^b)`,
    :math:`\partial L/\partial h_i = \frac{1}{\tau}\sum_k (A_{ik} + A_{ki})h_k`; then
    :math:`\partial L/\partial r = (I - hh^\top)\,\partial L/\partial h/\|r\|` through the
    normalisation and :math:`\partial L/\partial u = \mathbb 1[u > 0]\,\partial L/\partial r` through ReLU.
    The state is ``(U,)`` with ``U`` of shape (B, d, N); ``constants``, when given, are
    :func:`batch_constants` of ``masks`` (else built here).
    """
    xp = xp_of(state[0])
    (U,) = state
    if constants is None:
        constants = batch_constants(problem, batch_masks(problem) if masks is None else masks, U)
    pairs, has, Q, qsum = constants
    R = xp.where(U > 0, U, 0.0) if problem.relu else U
    rn = xp.sqrt(xp.sum(R * R, axis=1, keepdims=True))
    rn = xp.where(rn > 0, rn, 1.0)
    H = R / rn
    S = xp.expand_dims(xp.matmul(transpose(H), H) / temperature, axis=1)  # (B, 1, N, N)
    S_off = xp.where(pairs, S, -xp.inf)
    smax = xp.where(has, xp.max(S_off, axis=3, keepdims=True), 0.0)
    ez = xp.where(pairs, xp.exp(S_off - smax), 0.0)
    tot = xp.sum(ez, axis=3, keepdims=True)
    tot = xp.where(tot > 0, tot, 1.0)
    P = ez / tot
    lse = smax + xp.log(tot)
    loss = xp.sum(Q * (lse - xp.where(pairs, S, 0.0)), axis=(1, 2, 3))
    A = xp.sum(qsum * P - Q, axis=1)  # (B, N, N)
    gH = xp.matmul(H, A + transpose(A)) / temperature
    radial = xp.sum(gH * H, axis=1, keepdims=True)
    gR = (gH - radial * H) / rn
    gU = xp.where(U > 0, gR, 0.0) if problem.relu else gR
    return loss, (gU,)


def simulate_scl(problem: Problem, alpha: Any = 1.0, temperature: float = 0.1, t_max: float = 2e3, *,
                 batches: Any = None, t_eval: Any = None, rtol: float = 1e-9, grad_tol: float = 1e-9, seed: int = 0,
                 backend: str = "numpy", dtype: str = "float64", device: Any = None) -> Trajectory:
    """Gradient flow of the supervised contrastive loss on free unit-norm features (ReLU when ``problem.relu``).

    Features start at ``alpha`` times a seeded Gaussian draw (made positive with ReLU so that no sample
    starts dead); ``final["H"]`` holds the normalised features. ``batches``: fixed mini-batches (index
    sequences into the class-ordered samples), the objective then the mean of the batches' losses
    (:func:`scl_loss_grad`); None is one batch of every sample.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.ufm.Problem; got {type(problem).__name__}")
    temperature = positive_float("temperature", temperature)
    seed = check_seed(seed)
    dtype = choice("dtype", dtype, DTYPES)
    xp = namespace(backend)
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    masks = batch_masks(problem, batches)
    if a.size * masks.shape[0] * problem.N**2 > 10**8:
        raise ValueError("runs x batches x N^2 must be at most 1e8 (the batches' similarity blocks)")
    draw = host_rng(seed).standard_normal((problem.d, problem.N))
    if problem.relu:
        draw = np.abs(draw)
    U0 = asarray(a[:, None, None] * draw[None], xp, dtype, device)
    constants = batch_constants(problem, masks, U0)
    contrastive = Model(
        name="ufm_scl",
        state0=(U0,),
        loss_grad=lambda state, weights=None: scl_loss_grad(problem, state, temperature, constants=constants),
        observe=lambda state: {"loss": scl_loss_grad(problem, state, temperature, constants=constants)[0]},
        final=lambda host: {"U": host[0], "H": np.asarray(scl_features(host[0], problem.relu))},
        meta={"n": list(problem.n), "d": problem.d, "relu": problem.relu, "temperature": temperature,
              "batches": None if batches is None else [np.flatnonzero(m).tolist() for m in masks]},
        backend=backend, dtype=dtype, t_max=2e3, atol=1e-12,
    )
    return train(contrastive, "flow", t_max=t_max, t_eval=t_eval, rtol=rtol, grad_tol=grad_tol, seed=seed)
