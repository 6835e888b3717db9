"""Matrix-sensing factorisations: initial factors, the end-to-end matrix, and the hand-written gradients and observables of the l2 and l1 losses."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine._validate import scale_array
from ..engine.backend import asarray, init_rng, namespace, xp_of
from ..engine.matmul import chains, layer_gradients, product, transpose
from .operator import DeviceOperator
from .problem import Problem

__all__ = ["end_to_end", "initial_state", "loss_grad", "observe"]


def _factor_shapes(problem: Problem, factorisation: str, k: int, depth: int) -> list[tuple[int, int]]:
    if factorisation == "symmetric":
        return [(problem.n1, k)]
    if factorisation == "asymmetric":
        return [(problem.n1, k), (problem.n2, k)]
    widths = [problem.n2] + [k] * (depth - 1) + [problem.n1]
    return [(widths[j + 1], widths[j]) for j in range(depth)]


def initial_state(problem: Problem, alpha: Any, *, factorisation: str = "symmetric", k: int = 1, depth: int = 3,
                  beta: Any = None, init: str = "random", seed: int = 0, backend: str = "numpy",
                  dtype: str = "float64", device: Any = None) -> tuple[Any, ...]:
    r"""The factors at scale ``alpha`` (one run per value), drawn on the host from ``seed``.

    ``"random"``: :math:`X_0 = \alpha\bar X` (symmetric); :math:`F_0 = \alpha\bar F`,
    :math:`G_0 = \beta\bar G` (asymmetric; ``beta`` defaults to ``alpha``), with i.i.d.
    :math:`N(0, 1)` entries; deep: :math:`W_j = \alpha^{1/N}\bar W_j` with i.i.d.
    :math:`N(0, 1/h_{j-1})` entries (fan-in scaling, so :math:`\|M_0\| \sim \alpha`).
    ``"aligned"`` (the commuting case): the leading ``k`` singular vectors of
    :math:`M^*`, completed to an orthonormal basis: :math:`X_0 = \alpha U_k`,
    :math:`F_0 = \alpha U_k`, :math:`G_0 = \beta V_k`; deep: :math:`W_1 = a V_k^\top`,
    :math:`W_j = a I`, :math:`W_N = a U_k` with :math:`a = \alpha^{1/N}`.
    The runs of a batch share the draw and differ by their scale, so an alpha sweep follows one direction.
    The draw comes from its own stream of ``seed`` (:func:`init_rng`): with the seed of
    :meth:`Problem.random` it would otherwise repeat the numbers that made :math:`M^*`'s singular
    vectors, and start inside their span.
    """
    xp = namespace(backend)
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    b = a if beta is None else np.atleast_1d(scale_array("beta", beta, (0, 1)))
    if b.shape[0] != a.shape[0]:
        if b.shape[0] == 1:
            b = np.repeat(b, a.shape[0])
        elif a.shape[0] == 1:
            a = np.repeat(a, b.shape[0])
        else:
            raise ValueError(f"alpha and beta must have the same number of runs; got {a.shape[0]} and {b.shape[0]}")
    if beta is not None and factorisation != "asymmetric":
        raise ValueError("beta (the scale of G) applies to factorisation='asymmetric' only")
    shapes = _factor_shapes(problem, factorisation, k, depth)
    rng = init_rng(seed)
    if init == "aligned":
        if k > min(problem.n1, problem.n2):
            raise ValueError(f"init='aligned' needs k <= min(n1, n2) = {min(problem.n1, problem.n2)}; got k={k}")
        U, _, Vt = np.linalg.svd(problem.M_star)
        Uk, Vk = U[:, :k], Vt[:k].T
        if factorisation == "symmetric":
            units = [Uk]
        elif factorisation == "asymmetric":
            units = [Uk, Vk]
        else:
            units = [Vk.T] + [np.eye(k)] * (depth - 2) + [Uk]
    elif factorisation == "deep":
        units = [rng.standard_normal(s) / math.sqrt(s[1]) for s in shapes]
    else:
        units = [rng.standard_normal(s) for s in shapes]
    if factorisation == "deep":
        scales = [a ** (1.0 / depth)] * depth
    elif factorisation == "asymmetric":
        scales = [a, b]
    else:
        scales = [a]
    return tuple(asarray(s[:, None, None] * u[None], xp, dtype, device) for s, u in zip(scales, units))


def end_to_end(state: tuple[Any, ...], factorisation: str) -> Any:
    """The matrices ``M`` ``(B, n1, n2)`` of the factors."""
    xp = xp_of(state[0])
    if factorisation == "symmetric":
        return xp.matmul(state[0], transpose(state[0]))
    if factorisation == "asymmetric":
        return xp.matmul(state[0], transpose(state[1]))
    return product(state)


def loss_grad(op: DeviceOperator, factorisation: str, loss: str, loss_scale: float, state: tuple[Any, ...],
              weights: Any = None) -> tuple[Any, tuple[Any, ...]]:
    r"""Loss per run and its hand-written gradient (module docstring), batched.

    Cost per evaluation: the end-to-end product (:math:`O(n_1 n_2 k)` per run,
    :math:`O(N n^2 k)` for depth N), the operator and its adjoint (see
    :mod:`sims.matrix_sensing.operator`: :math:`2\cdot 2 m n_1 n_2` flops per run
    for a dense operator), and the factor gradients (:math:`O(n_1 n_2 k)`).
    """
    xp = xp_of(state[0])
    batch = state[0].shape[0]
    if factorisation == "deep":
        pre, suf = chains(state)
        M = xp.matmul(state[-1], pre[-1])
    else:
        M = end_to_end(state, factorisation)
    n1, n2 = M.shape[1], M.shape[2]
    r = op.residual(xp.reshape(M, (batch, n1 * n2)))
    w = None if weights is None else weights * op.m
    if loss == "l2":
        wr = r if w is None else w * r
        value = loss_scale * xp.sum(wr * r, axis=1)
        gM = (2 * loss_scale) * op.adjoint(wr)
    else:
        c = 1.0 / math.sqrt(op.m)
        sg = xp.sign(r)
        value = c * xp.sum(xp.abs(r) if w is None else w * xp.abs(r), axis=1)
        gM = c * op.adjoint(sg if w is None else w * sg)
    gM = xp.reshape(gM, (batch, n1, n2))
    if factorisation == "symmetric":
        (X,) = state
        return value, (xp.matmul(gM + transpose(gM), X),)
    if factorisation == "asymmetric":
        F, G = state
        return value, (xp.matmul(gM, G), xp.matmul(transpose(gM), F))
    return value, layer_gradients(pre, suf, gM)


def observe(op: DeviceOperator, M_star: Any, factorisation: str, loss: str, loss_scale: float,
            state: tuple[Any, ...], record_sv: bool, record_M: bool = False) -> dict[str, Any]:
    """Observables: ``loss``, ``rel_error`` :math:`\\|M - M^*\\|_F/\\|M^*\\|_F`, ``sv`` (every singular value
    of ``M``, decreasing) when ``record_sv``, ``M`` itself when ``record_M``, and ``imbalance``
    :math:`\\|F^\\top F - G^\\top G\\|_F` (asymmetric)."""
    xp = xp_of(state[0])
    M = end_to_end(state, factorisation)
    batch = M.shape[0]
    flat = xp.reshape(M, (batch, -1))
    r = op.residual(flat)
    value = loss_scale * xp.sum(r * r, axis=1) if loss == "l2" else xp.sum(xp.abs(r), axis=1) / math.sqrt(op.m)
    diff = M - M_star
    out = {"loss": value,
           "rel_error": xp.sqrt(xp.sum(diff * diff, axis=(1, 2)) / xp.sum(M_star * M_star))}
    if record_sv:
        out["sv"] = xp.linalg.svdvals(M)
    if record_M:
        out["M"] = M
    if factorisation == "asymmetric":
        F, G = state
        imb = xp.matmul(transpose(F), F) - xp.matmul(transpose(G), G)
        out["imbalance"] = xp.sqrt(xp.sum(imb * imb, axis=(1, 2)))
    return out
