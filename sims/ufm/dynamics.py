"""The UFM's state, its hand-written gradient (MSE or cross-entropy, any depth, bias, ReLU) and the neural-collapse metrics."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine._validate import choice, scale_array
from ..engine.backend import device_of as _device, asarray, host_rng, host_to, namespace, xp_of
from ..engine.matmul import product, transpose
from .problem import INITS, Problem

__all__ = ["aligned_frame", "initial_state", "loss_grad", "metrics"]


def _widths(p: Problem) -> list[tuple[int, int]]:
    """(out, in) of each classifier layer, bottom to top."""
    return [(p.d, p.d)] * (p.depth - 1) + [(p.K, p.d)]


def initial_state(problem: Problem, alpha: Any = 0.1, *, init: str = "random", seed: int = 0, backend: str = "numpy",
                  dtype: str = "float64", device: Any = None, class_vectors: bool = False) -> tuple[Any, ...]:
    """``(W_1, ..., W_M, H[, b])`` with i.i.d. Gaussian entries of standard deviation ``alpha`` (one run per value).

    ``init="collapsed"``: every feature starts at its class's vector, one Gaussian column per class
    (``class_vectors=True`` returns those ``(B, d, K)`` in place of ``H``; the layers are the same draw).
    ``init="aligned"`` (one layer, ``d >= K``): on a seeded orthonormal frame ``q_1..q_K``
    (:func:`aligned_frame`), ``W = alpha sum_k e_k q_k^T`` and every feature of class ``k`` at ``alpha q_k``.
    The runs of a batch share one draw from ``seed``, scaled by their ``alpha``: a run is the same whether
    simulated alone or in a batch.
    """
    xp = namespace(backend)
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    init = choice("init", init, INITS)
    B = a.shape[0]
    if init == "aligned":
        Q = aligned_frame(problem, seed)
        parts = [a[:, None, None] * Q.T[None], a[:, None, None] * (Q[None] if class_vectors
                                                                    else np.repeat(Q, problem.n, axis=1)[None])]
        if problem.lambda_b is not None:
            parts.append(np.zeros((B, problem.K)))
        return tuple(asarray(x, xp, dtype, device) for x in parts)
    rng = host_rng(seed)
    parts = [a[:, None, None] * rng.standard_normal(shape)[None] for shape in _widths(problem)]
    if init == "collapsed":
        means = a[:, None, None] * rng.standard_normal((problem.d, problem.K))[None]
        parts.append(means if class_vectors else np.repeat(means, problem.n, axis=2))
    else:
        parts.append(a[:, None, None] * rng.standard_normal((problem.d, problem.N))[None])
    if problem.lambda_b is not None:
        parts.append(np.zeros((B, problem.K)))
    return tuple(asarray(x, xp, dtype, device) for x in parts)


def aligned_frame(problem: Problem, seed: int = 0) -> np.ndarray:
    """The orthonormal frame ``(d, K)`` of ``init="aligned"``: the first K columns of a seeded random rotation."""
    if problem.depth != 1:
        raise ValueError(f"init='aligned' needs a one-layer head (depth 1); got depth {problem.depth}")
    if problem.d < problem.K:
        raise ValueError(f"init='aligned' needs d >= K (an orthonormal frame of K vectors); got d = {problem.d}, "
                         f"K = {problem.K}")
    Q, R = np.linalg.qr(host_rng(seed).standard_normal((problem.d, problem.d)))
    return (Q * np.sign(np.diag(R)))[:, :problem.K]


def _features(problem: Problem, H: Any) -> Any:
    xp = xp_of(H)
    return xp.where(H > 0, H, 0.0) if problem.relu else H


def _split(problem: Problem, state: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any, Any]:
    M = problem.depth
    layers, H = state[:M], state[M]
    b = state[M + 1] if problem.lambda_b is not None else None
    return layers, H, b


def _logits(problem: Problem, state: tuple[Any, ...]) -> Any:
    xp = xp_of(state[0])
    layers, H, b = _split(problem, state)
    Z = xp.matmul(product(layers), _features(problem, H))
    return Z if b is None else Z + b[:, :, None]


def loss_grad(problem: Problem, Y: Any, state: tuple[Any, ...], weights: Any = None,
              anchor: Any = None) -> tuple[Any, tuple[Any, ...]]:
    """Objective per run and its hand-written gradient (see the module docstring).

    ``anchor``: the backend copy of ``problem.anchor`` (``H`` is regularised toward it).
    """
    xp = xp_of(state[0])
    layers, H, b = _split(problem, state)
    N = problem.N
    F = _features(problem, H)
    Z = _logits(problem, state)
    # per-sample weights: 1/N for the full objective, the mini-batch mean for SGD
    wts = xp.full((Z.shape[0], 1, N), 1.0 / N, dtype=Z.dtype, device=_device(Z)) if weights is None else weights[:, None, :]
    if problem.loss == "mse":
        R = Z - Y
        data = xp.sum(wts * R * R, axis=(1, 2)) / 2
        D = wts * R
    else:
        zmax = xp.max(Z, axis=1, keepdims=True)
        ez = xp.exp(Z - zmax)
        tot = xp.sum(ez, axis=1, keepdims=True)
        lse = zmax + xp.log(tot)
        data = xp.sum(xp.sum(wts * (lse - Z) * Y, axis=1), axis=1)
        D = wts * (ez / tot - Y)
    reg = sum(xp.sum(w * w, axis=(1, 2)) for w in layers) * (problem.lambda_W / 2)
    Hd = H if anchor is None else H - anchor
    reg = reg + xp.sum(Hd * Hd, axis=(1, 2)) * (problem.lambda_H / 2)
    grads = []
    # classifier layers: A_j^T (D F^T) B_j^T
    DF = xp.matmul(D, transpose(F))
    pre = [None] * len(layers)
    acc = None
    for j, w in enumerate(layers):
        pre[j] = acc
        acc = w if acc is None else xp.matmul(w, acc)
    suf = [None] * len(layers)
    acc = None
    for j in range(len(layers) - 1, -1, -1):
        suf[j] = acc
        acc = layers[j] if acc is None else xp.matmul(acc, layers[j])
    for j, w in enumerate(layers):
        g = DF if suf[j] is None else xp.matmul(transpose(suf[j]), DF)
        g = g if pre[j] is None else xp.matmul(g, transpose(pre[j]))
        grads.append(g + problem.lambda_W * w)
    gF = xp.matmul(transpose(product(layers)), D)
    gH = (xp.where(H > 0, gF, 0.0) if problem.relu else gF) + problem.lambda_H * Hd
    grads.append(gH)
    if b is not None:
        grads.append(xp.sum(D, axis=2) + problem.lambda_b * b)
        reg = reg + xp.sum(b * b, axis=1) * (problem.lambda_b / 2)
    return data + reg, tuple(grads)


def metrics(problem: Problem, state: tuple[Any, ...]) -> dict[str, Any]:
    """The neural-collapse metrics of the module docstring, per run."""
    xp = xp_of(state[0])
    layers, H, _ = _split(problem, state)
    F = _features(problem, H)
    B = F.shape[0]
    K, N = problem.K, problem.N
    bounds = np.concatenate([[0], np.cumsum(problem.n)])
    means = xp.stack([xp.mean(F[:, :, int(bounds[k]) : int(bounds[k + 1])], axis=2) for k in range(K)], axis=2)
    centre = xp.mean(means, axis=2, keepdims=True)
    Mt = means - centre  # (B, d, K)
    # self-duality: with a bias the classifier matches the centred means; bias-free minimisers match the
    # raw class means (Dang et al. 2023)
    dual = Mt if problem.lambda_b is not None else means
    idx = np.repeat(np.arange(K), problem.n)
    onehot = host_to(np.eye(K)[idx].T, F)
    within = F - xp.matmul(means, onehot)
    sw = xp.matmul(within, transpose(within)) / N
    sb = xp.matmul(Mt, transpose(Mt)) / K
    nc1 = xp.sum(xp.linalg.diagonal(xp.matmul(sw, xp.linalg.pinv(sb))), axis=1) / K
    etf = host_to((K / (K - 1) * (np.eye(K) - 1.0 / K)) / math.sqrt(K), F)

    def gram_gap(vectors_as_cols: Any) -> Any:
        norms = xp.sqrt(xp.sum(vectors_as_cols * vectors_as_cols, axis=1, keepdims=True))
        unit = vectors_as_cols / xp.where(norms > 0, norms, 1.0)
        g = xp.matmul(transpose(unit), unit)
        gn = xp.reshape(xp.sqrt(xp.sum(g * g, axis=(1, 2))), (B, 1, 1))
        g = g / xp.where(gn > 0, gn, 1.0)
        diff = g - etf / xp.sqrt(xp.sum(etf * etf))
        return xp.sqrt(xp.sum(diff * diff, axis=(1, 2)))

    W = product(layers)  # (B, K, d)
    nc2 = gram_gap(Mt)
    nc2_w = gram_gap(transpose(W))
    wnorm = xp.reshape(xp.sqrt(xp.sum(W * W, axis=(1, 2))), (B, 1, 1))
    mnorm = xp.reshape(xp.sqrt(xp.sum(dual * dual, axis=(1, 2))), (B, 1, 1))
    wn = W / xp.where(wnorm > 0, wnorm, 1.0)
    mn = transpose(dual) / xp.where(mnorm > 0, mnorm, 1.0)
    nc3 = xp.sqrt(xp.sum((wn - mn) ** 2, axis=(1, 2)))
    decision = xp.argmax(_logits(problem, state), axis=1)
    d2 = xp.sum(F * F, axis=1)[:, None, :] - 2 * xp.matmul(transpose(means), F) + xp.sum(means * means, axis=1)[:, :, None]
    nearest = xp.argmin(d2, axis=1)
    nc4 = xp.mean(xp.astype(decision != nearest, F.dtype), axis=1)
    return {"nc1": nc1, "nc2": nc2, "nc2_w": nc2_w, "nc3": nc3, "nc4": nc4}
