"""Linear self-attention's parameters (reduced, full and Ahn et al.'s sparse layers): initial states, the hand-written gradient of the in-context loss, predictions and observables."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine._validate import choice, real_array, scale_array
from ..engine.backend import device_of as _device, asarray, init_rng, namespace, xp_of
from ..engine.matmul import transpose
from .problem import ARCHITECTURES, INITS, Problem

__all__ = ["initial_state", "loss_grad", "observe", "predict", "predictor"]


def _theta(rng: np.random.Generator, d: int) -> np.ndarray:
    """ZFB's :math:`\\Theta\\Theta^\\top` with :math:`\\|\\Theta\\Theta^\\top\\|_F = 1` (Assumption 3.3)."""
    th = rng.standard_normal((d, d))
    tt = th @ th.T
    return tt / np.linalg.norm(tt)


def initial_state(problem: Problem, alpha: Any, *, architecture: str = "reduced", layers: int = 1,
                  init: str = "zfb", seed: int = 0, backend: str = "numpy", dtype: str = "float64",
                  device: Any = None) -> tuple[Any, ...]:
    r"""The parameters at scale ``alpha`` (one run per value), drawn on the host from ``seed``'s init stream.

    ``"zfb"`` (ZFB Assumption 3.3, :math:`\sigma` = ``alpha``): :math:`W^{PV} = \sigma[[0, 0], [0, 1]]`,
    :math:`W^{KQ} = \sigma[[\Theta\Theta^\top, 0], [0, 0]]` with :math:`\Theta` Gaussian and
    :math:`\|\Theta\Theta^\top\|_F = 1`, i.e. :math:`u = \sigma`, :math:`U_{11} = \sigma\Theta\Theta^\top`;
    ``ahn``: :math:`A_l = \sigma\Theta_l\Theta_l^\top` per layer. ``"random"``: every parameter i.i.d.
    :math:`N(0, \alpha^2/(d + 1))`. The runs of a batch share the draw and differ by their scale.
    """
    architecture = choice("architecture", architecture, ARCHITECTURES)
    init = choice("init", init, INITS)
    xp = namespace(backend)
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    d = problem.d
    D = d + 1
    rng = init_rng(seed)
    if architecture == "ahn":
        if init == "zfb":
            units = [np.stack([_theta(rng, d) for _ in range(layers)])]
        else:
            units = [rng.standard_normal((layers, d, d)) / math.sqrt(D)]
    elif architecture == "reduced":
        units = [np.ones(1), _theta(rng, d)] if init == "zfb" else \
            [rng.standard_normal(1) / math.sqrt(D), rng.standard_normal((d, d)) / math.sqrt(D)]
    elif init == "zfb":
        r = np.zeros(D)
        r[d] = 1.0
        K = np.zeros((D, D))
        K[:d, :d] = _theta(rng, d)
        units = [r, K]
    else:
        units = [rng.standard_normal(D) / math.sqrt(D), rng.standard_normal((D, D)) / math.sqrt(D)]
    return tuple(asarray(a.reshape((-1,) + (1,) * u.ndim) * u[None, ...], xp, dtype, device) for u in units)


@dataclass(frozen=True)
class _Data:
    """What a loss evaluation needs, on the backend."""

    kind: str  # "population" | "samples"
    arrays: dict


def _device_data(problem: Problem, architecture: str, mask_query: bool, xp: Any, dtype: str, device: Any) -> _Data:
    put = functools.partial(asarray, xp=xp, dtype=dtype, device=device)
    if problem.X is None:
        L, om = problem.Lambda, problem.task_cov
        N, s = problem.N, problem.noise
        C = (1 + 1 / N) * L @ om @ L + (np.trace(om @ L) + s**2) / N * L
        return _Data("population", {"L": put(L), "C": put(C), "LOL": put(L @ om @ L),
                                    "const": float(np.trace(L @ om))})
    X, y, N = problem.X, problem.y, problem.N
    yq = put(y[:, N])
    if architecture == "reduced":
        h = np.einsum("pn,pnd->pd", y[:, :N], X[:, :N]) / N
        return _Data("samples", {"h": put(h), "xq": put(X[:, N]), "yq": yq})
    if architecture == "full":
        E = np.concatenate([X, y[:, :, None]], axis=2)  # (P, N + 1, d + 1): tokens as rows
        E[:, N, -1] = 0.0  # the query's label is not in the prompt
        cols = E[:, :N] if mask_query else E
        S = np.einsum("pni,pnj->pij", cols, cols) / N
        q = E[:, N]
        return _Data("samples", {"S": put(S), "q": put(q), "yq": yq})
    return _Data("samples", {"X": put(X), "y": put(y[:, :N]), "yq": yq})


def _reduced_A(state: tuple[Any, ...]) -> Any:
    u, U = state
    return u[:, :, None] * transpose(U)


def _weights(e: Any, weights: Any) -> Any:
    return e / e.shape[1] if weights is None else weights * e


def loss_grad(data: _Data, architecture: str, state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple]:
    """Loss per run and its hand-written gradient (module docstring), batched over runs and prompts."""
    xp = xp_of(state[0])
    ar = data.arrays
    if architecture == "reduced":
        u, U = state
        A = _reduced_A(state)
        if data.kind == "population":
            LAC = xp.matmul(xp.matmul(ar["L"][None, ...], A), ar["C"][None, ...])
            value = 0.5 * (xp.sum(A * LAC, axis=(1, 2)) - 2 * xp.sum(A * ar["LOL"][None, ...], axis=(1, 2)) + ar["const"])
            G = LAC - ar["LOL"][None, ...]
        else:
            Ah = xp.matmul(ar["h"][None, ...], transpose(A))  # (B, P, d): (A h_p)^T
            e = xp.sum(ar["xq"][None, ...] * Ah, axis=2) - ar["yq"][None, ...]
            we = _weights(e, weights)
            value = 0.5 * xp.sum(we * e, axis=1)
            G = xp.matmul(transpose(ar["xq"][None, ...] * we[:, :, None]), ar["h"][None, ...])
        return value, (xp.sum(G * transpose(U), axis=(1, 2))[:, None], u[:, :, None] * transpose(G))
    if architecture == "full":
        r, K = state
        S, q = ar["S"], ar["q"]
        Kq = xp.matmul(q[None, ...], transpose(K))  # (B, P, D)
        SKq = xp.matmul(S[None, ...], Kq[..., None])[..., 0]
        Sr = xp.matmul(S[None, ...], r[:, None, :, None])[..., 0]
        e = xp.sum(r[:, None, :] * SKq, axis=2) - ar["yq"][None, ...]
        we = _weights(e, weights)
        value = 0.5 * xp.sum(we * e, axis=1)
        grad_r = xp.matmul(we[:, None, :], SKq)[:, 0, :]
        grad_K = xp.matmul(transpose(Sr * we[:, :, None]), q[None, ...])
        return value, (grad_r, grad_K)
    (As,) = state
    X, y = ar["X"], ar["y"]
    n = y.shape[1]
    batch, layers = As.shape[0], As.shape[1]
    Xc = X[:, :n, :]
    z = xp.concat([xp.broadcast_to(y[None, ...], (batch,) + y.shape), xp.zeros((batch, y.shape[0], 1), dtype=y.dtype,
                                                                           device=_device(y))], axis=2)
    zs, gs = [], []
    for l in range(layers):
        g = xp.matmul(z[:, :, None, :n], Xc[None, ...])[:, :, 0, :] / n  # (B, P, d)
        zs.append(z)
        gs.append(g)
        Ag = xp.matmul(g, As[:, l, ...])  # (B, P, d): (A_l^T g)^T
        z = z - xp.matmul(X[None, ...], Ag[..., None])[..., 0]
    e = z[:, :, n] + ar["yq"][None, ...]
    we = _weights(e, weights)
    value = xp.sum(we * e, axis=1)
    delta = xp.concat([xp.zeros((batch, y.shape[0], n), dtype=y.dtype, device=_device(y)), (2 * we)[:, :, None]],
                      axis=2)
    grads = [None] * layers
    for l in range(layers - 1, -1, -1):
        v = xp.matmul(delta[:, :, None, :], X[None, ...])[:, :, 0, :]  # (B, P, d)
        grads[l] = -xp.matmul(transpose(gs[l]), v)
        Av = xp.matmul(v, transpose(As[:, l, ...]))  # (A_l v)^T
        corr = xp.matmul(Xc[None, ...], Av[..., None])[..., 0] / n
        delta = xp.concat([delta[:, :, :n] - corr, delta[:, :, n:]], axis=2)
    return value, (xp.stack(grads, axis=1),)


def predictor(state: tuple[Any, ...], architecture: str, d: int) -> Any:
    """The matrix :math:`A` of :math:`\\hat y = x_q^\\top A h` ((B, d, d); Ahn: the stack (B, L, d, d))."""
    if architecture == "reduced":
        return _reduced_A(state)
    if architecture == "full":
        r, K = state
        return r[:, d][:, None, None] * transpose(K[:, :d, :d])
    return state[0]


def observe(data: _Data, architecture: str, d: int, state: tuple[Any, ...]) -> dict[str, Any]:
    """Observables: ``loss``, ``A`` (:func:`predictor`), ``balance`` (the conserved :math:`u^2 - \\|U_{11}\\|_F^2`,
    full: :math:`\\|r\\|^2 - \\|W^{KQ}\\|_F^2`) and, for ``full``, ``rest`` (the norm of the parameters ZFB's flow
    keeps at 0: :math:`r_{1:d}`, the last row and column of :math:`W^{KQ}`)."""
    xp = xp_of(state[0])
    value, _ = loss_grad(data, architecture, state)
    out = {"loss": value, "A": predictor(state, architecture, d)}
    if architecture == "reduced":
        u, U = state
        out["balance"] = u[:, 0] ** 2 - xp.sum(U * U, axis=(1, 2))
    elif architecture == "full":
        r, K = state
        out["balance"] = xp.sum(r * r, axis=1) - xp.sum(K * K, axis=(1, 2))
        out["rest"] = xp.sqrt(xp.sum(r[:, :d] ** 2, axis=1) + xp.sum(K[:, d, :] ** 2, axis=1)
                              + xp.sum(K[:, :d, d] ** 2, axis=1))
    return out


def predict(final: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, *, architecture: str = "reduced",
            mask_query: bool = False) -> np.ndarray:
    r"""Predictions (B, P) of trained models (a trajectory's ``final``) on host prompts ``X`` (P, N + 1, d), ``y``
    (P, N + 1) (the query's label is not read): :math:`x_q^\top Ah` (reduced), :math:`r^\top SW^{KQ}q` (full),
    :math:`-z^L_q` (ahn, by the label-row recursion of the module docstring)."""
    architecture = choice("architecture", architecture, ARCHITECTURES)
    X = real_array("X", X, 3)
    y = real_array("y", y, 2)
    N = X.shape[1] - 1
    if architecture == "reduced":
        h = np.einsum("pn,pnd->pd", y[:, :N], X[:, :N]) / N
        return np.einsum("pd,bde,pe->bp", X[:, N], final["A"], h)
    if architecture == "full":
        E = np.concatenate([X, y[:, :, None]], axis=2)
        E[:, N, -1] = 0.0
        cols = E[:, :N] if mask_query else E
        S = np.einsum("pni,pnj->pij", cols, cols) / N
        r = final["W_PV"][:, -1, :]
        return np.einsum("bi,pij,bjk,pk->bp", r, S, final["W_KQ"], E[:, N])
    out = []
    for As in final["A"]:
        z = np.concatenate([y[:, :N], np.zeros((y.shape[0], 1))], axis=1)
        for A in As:
            g = np.einsum("pn,pnd->pd", z[:, :N], X[:, :N]) / N
            z = z - np.einsum("pnd,pd->pn", X, g @ A)
        out.append(-z[:, N])
    return np.stack(out)
