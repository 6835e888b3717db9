"""A deep linear network's layers: the initial states (aligned, random, balanced) and the hand-written gradient of the square loss."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine._validate import choice, scale_array
from ..engine.backend import asarray, init_rng, namespace, xp_of
from ..engine.matmul import chains, layer_gradients
from .problem import INITS, Problem
from .reduced import balanced_layers

__all__ = ["initial_state", "loss_grad"]
def loss_grad(target: Any, layers: tuple[Any, ...], weights: Any = None,
              data: tuple[Any, Any] | None = None) -> tuple[Any, tuple[Any, ...]]:
    r"""Loss per run and its gradient :math:`A_j^\top R B_j^\top`.

    Without ``data``: :math:`\tfrac12\|W_N\cdots W_1 - \Phi\|_F^2`, :math:`R = W - \Phi`.
    With ``data = (X, Y)`` (device arrays ``(n, d_in)``, ``(n, d_out)``):
    :math:`\tfrac12\sum_i\omega_i\|Wx_i - y_i\|^2`, :math:`R = \sum_i\omega_i(Wx_i - y_i)x_i^\top`,
    with ``weights`` :math:`\omega` of shape ``(B, n)`` (SGD) or uniform :math:`1/n`.
    """
    xp = xp_of(layers[0])
    pre, suf = chains(layers)
    w = xp.matmul(layers[-1], pre[-1])
    if data is None:
        resid = w - target
        loss = xp.sum(resid * resid, axis=(1, 2)) / 2
    else:
        X, Y = data
        err = xp.matmul(w, X.T) - Y.T  # (B, d_out, n): per-sample residuals
        weighted = err / X.shape[0] if weights is None else err * weights[:, None, :]
        loss = xp.sum(weighted * err, axis=(1, 2)) / 2
        resid = xp.matmul(weighted, X)
    return loss, layer_gradients(pre, suf, resid)


def initial_state(problem: Problem, alpha: Any, init: str = "aligned", *, seed: int = 0, backend: str = "numpy",
                  dtype: str = "float64", device: Any = None) -> tuple[Any, ...]:
    r"""Layers at scale ``alpha`` (one run per value).

    ``"aligned"``: balanced and aligned with the target's singular vectors,
    :math:`W_1 = E_1 \operatorname{diag}(a) V^\top`,
    :math:`W_j = E_j \operatorname{diag}(a) E_{j-1}^\top`,
    :math:`W_N = U \operatorname{diag}(a) E_{N-1}^\top` with :math:`a = \alpha^{1/N}`, so that
    :math:`W = \alpha\, U V^\top` and :math:`W_{j+1}^\top W_{j+1} = W_j W_j^\top`
    (Saxe et al. 2014's decoupled start; needs every hidden width >= rank).
    ``"balanced"``: balanced but not aligned, with random orthonormal frames
    (:func:`sims.deep_linear.reduced.balanced_layers`): :math:`W = \alpha PQ^\top` on
    :math:`k = \min` (all widths) random directions, the start of Arora et al.'s end-to-end ODE.
    ``"random"``: Gaussian entries of variance :math:`\alpha^{2/N}/h_{j-1}`,
    drawn on the host from ``seed``; the runs of a batch share the draw and
    differ by their scale (a run is the same alone or in a batch).
    """
    xp = namespace(backend)
    a = scale_array("alpha", alpha, (0, 1))
    a = np.atleast_1d(a)
    init = choice("init", init, INITS)
    n, widths = problem.depth, problem.widths
    layers = []
    if init == "aligned":
        u, _, v = problem.svd()
        r = u.shape[1]
        if any(h < r for h in problem.hidden):
            raise ValueError(f"init='aligned' needs hidden widths >= rank {r}; got {problem.hidden}")
        scale = a ** (1.0 / n)
        for j in range(n):
            left = u if j == n - 1 else np.eye(widths[j + 1])[:, :r]
            right = v if j == 0 else np.eye(widths[j])[:, :r]
            layers.append(scale[:, None, None] * (left @ right.T)[None])
    elif init == "balanced":
        layers = balanced_layers(problem, a, seed)
    else:
        rng = init_rng(seed)  # not host_rng: Problem.random(seed=seed) drew the target's vectors from that
        for j in range(n):
            std = a[:, None, None] ** (1.0 / n) / math.sqrt(widths[j])
            layers.append(std * rng.standard_normal((widths[j + 1], widths[j]))[None])
    return tuple(asarray(w, xp, dtype, device) for w in layers)
