r"""Curvature of deep linear networks: exact Hessian-vector products, Lanczos sharpness, dense Hessians.

The loss is the one of :mod:`sims.deep_linear`, :math:`\tfrac12\|W_N\cdots W_1 S - \Phi\|^2`-type with
:math:`S` the input covariance of data (the identity for a target).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine.backend import host_rng, host_to, to_numpy, xp_of
from ..engine.matmul import chains, transpose

__all__ = ["flatten", "hessian_dense", "hvp", "sharpness", "unflatten"]


def hvp(target: Any, layers: tuple[Any, ...], direction: tuple[Any, ...], cov: Any = None) -> tuple[Any, ...]:
    r"""Exact Hessian-vector product of the loss at ``layers`` along ``direction`` (forward mode).

    With :math:`R = W_N B_N S - \Phi` (:math:`S` = ``cov``, the input covariance
    :math:`\Sigma_{xx}` of data, or the identity), differentiating
    :math:`B_{j+1} = W_j B_j`, :math:`A_{j-1} = A_j W_j` and :math:`R` along :math:`V` gives
    :math:`dB_{j+1} = V_j B_j + W_j dB_j`, :math:`dA_{j-1} = dA_j W_j + A_j V_j`,
    :math:`dR = d(W_N B_N)\,S`, and
    :math:`d(\nabla_j L) = dA_j^\top R B_j^\top + A_j^\top dR\, B_j^\top + A_j^\top R\, dB_j^\top`.
    """
    xp = xp_of(layers[0])
    n = len(layers)
    pre, suf = chains(layers)
    w = xp.matmul(layers[-1], pre[-1])
    resid = (w if cov is None else xp.matmul(w, cov)) - target
    dpre = [xp.zeros_like(pre[0])]
    for j in range(n - 1):
        dpre.append(xp.matmul(direction[j], pre[j]) + xp.matmul(layers[j], dpre[j]))
    dresid = xp.matmul(direction[-1], pre[-1]) + xp.matmul(layers[-1], dpre[-1])
    if cov is not None:
        dresid = xp.matmul(dresid, cov)
    dsuf = [None] * n
    dsuf[-1] = xp.zeros_like(suf[-1])
    for j in range(n - 1, 0, -1):
        dsuf[j - 1] = xp.matmul(dsuf[j], layers[j]) + xp.matmul(suf[j], direction[j])
    out = []
    for j in range(n):
        a, b, da, db = suf[j], pre[j], dsuf[j], dpre[j]
        term = xp.matmul(xp.matmul(transpose(da), resid), transpose(b))
        term = term + xp.matmul(xp.matmul(transpose(a), dresid), transpose(b))
        term = term + xp.matmul(xp.matmul(transpose(a), resid), transpose(db))
        out.append(term)
    return tuple(out)


def flatten(parts: tuple[Any, ...]) -> Any:
    """The arrays of a state ``(B, ...)`` side by side as one ``(B, P)`` array."""
    xp = xp_of(parts[0])
    return xp.concat([xp.reshape(p, (p.shape[0], -1)) for p in parts], axis=1)


def unflatten(vec: Any, like: tuple[Any, ...]) -> tuple[Any, ...]:
    """The inverse of :func:`flatten`, shaped like the arrays of ``like``."""
    xp = xp_of(vec)
    out, start = [], 0
    for p in like:
        size = math.prod(p.shape[1:])
        out.append(xp.reshape(vec[:, start : start + size], p.shape))
        start += size
    return tuple(out)


def sharpness(target: Any, layers: tuple[Any, ...], iters: int = 30, seed: int = 0, cov: Any = None) -> Any:
    r"""Largest Hessian eigenvalue per run, by Lanczos with full reorthogonalisation on exact HVPs.

    ``iters`` Krylov vectors (capped at the number of parameters); the start
    vector is drawn on the host from ``seed``; ``cov`` as in :func:`hvp`.
    Returns a host array ``(B,)``.
    """
    xp = xp_of(layers[0])
    batch = layers[0].shape[0]
    size = sum(math.prod(p.shape[1:]) for p in layers)
    k = max(1, min(int(iters), size))
    start = host_to(host_rng(seed).standard_normal((batch, size)), layers[0])
    q = start / xp.sqrt(xp.sum(start * start, axis=1, keepdims=True))
    basis, alphas, betas = [q], [], []
    for i in range(k):
        hq = flatten(hvp(target, layers, unflatten(basis[-1], layers), cov))
        a = xp.sum(hq * basis[-1], axis=1)
        alphas.append(to_numpy(a))
        for prev in basis:  # full reorthogonalisation: these Krylov spaces are tiny
            hq = hq - xp.sum(hq * prev, axis=1, keepdims=True) * prev
        b = xp.sqrt(xp.sum(hq * hq, axis=1))
        if i == k - 1:
            break
        betas.append(to_numpy(b))
        basis.append(hq / xp.reshape(xp.where(b > 0, b, 1.0), (batch, 1)))
    al, be = np.array(alphas), np.array(betas)
    top = np.empty(batch)
    for r in range(batch):
        tri = np.diag(al[:, r]) + np.diag(be[:, r], 1) + np.diag(be[:, r], -1) if len(be) else np.diag(al[:, r])
        top[r] = np.linalg.eigvalsh(tri)[-1]
    return top


def hessian_dense(target: Any, layers: tuple[Any, ...], cov: Any = None) -> np.ndarray:
    """The full Hessian ``(B, P, P)`` from exact HVPs on the basis vectors (small models; ``cov`` as in :func:`hvp`)."""
    batch = layers[0].shape[0]
    size = sum(math.prod(p.shape[1:]) for p in layers)
    if size > 2000:
        raise ValueError(f"the dense Hessian is for models with at most 2000 parameters; this one has {size}")
    cols = []
    for i in range(size):
        e = np.zeros((batch, size))
        e[:, i] = 1.0
        cols.append(to_numpy(flatten(hvp(target, layers, unflatten(host_to(e, layers[0]), layers), cov))))
    return np.stack(cols, axis=2)
