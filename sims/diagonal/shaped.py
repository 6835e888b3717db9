r"""The shaped diagonal network :math:`w = u_+ v_+ - u_- v_-` (Azulay et al. 2021): initial state, predictor,
loss and hand-written gradient. :func:`sims.diagonal.simulate` runs it with ``shape != 0``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.backend import asarray, namespace, xp_of

from .problem import Problem, alpha_grid

__all__ = ["shaped_initial_state", "shaped_loss_grad", "shaped_predictor"]


def shaped_initial_state(problem: Problem, alpha: Any, shape: float, *, backend: str = "numpy",
                         dtype: str = "float64", device: Any = None) -> tuple[Any]:
    r"""State ``(z,)``, ``z = [u+ | v+ | u- | v-]`` of shape ``(B, 4d)``, of the shaped network.

    Model (Azulay et al. 2021, Sec. 4): :math:`w = u_+ \odot v_+ - u_- \odot v_-`
    with :math:`u_\pm(0) = \alpha((1+s)/(1-s))^{1/4}` and
    :math:`v_\pm(0) = \alpha((1-s)/(1+s))^{1/4}`: the product
    :math:`u_0 v_0 = \alpha^2` is fixed and the shape
    :math:`s = (u_0^2 - v_0^2)/(u_0^2 + v_0^2)` sets how unbalanced the layers are.
    """
    xp = namespace(backend)
    a = alpha_grid(alpha, problem.d)
    s = float(shape)
    u0, v0 = a * ((1 + s) / (1 - s)) ** 0.25, a * ((1 - s) / (1 + s)) ** 0.25
    return (asarray(np.concatenate([u0, v0, u0, v0], axis=1), xp, dtype, device),)


def shaped_predictor(state: tuple[Any, ...]) -> Any:
    """``w = u+ v+ - u- v-`` from ``z = [u+ | v+ | u- | v-]``."""
    (z,) = state
    d = z.shape[1] // 4
    return z[:, :d] * z[:, d : 2 * d] - z[:, 2 * d : 3 * d] * z[:, 3 * d :]


def shaped_loss_grad(problem_data: tuple[Any, Any], state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple[Any]]:
    r"""Loss of the shaped network and its hand-written gradient:
    :math:`\partial_{u_\pm} L = \pm v_\pm \odot g`, :math:`\partial_{v_\pm} L = \pm u_\pm \odot g`."""
    X, y = problem_data
    xp = xp_of(X)
    (z,) = state
    d = X.shape[1]
    w = shaped_predictor(state)
    r = xp.matmul(w, X.T) - y
    if weights is None:
        loss = xp.sum(r * r, axis=1) / (2 * X.shape[0])
        g = xp.matmul(r, X) / X.shape[0]
    else:
        wr = weights * r
        loss = xp.sum(wr * r, axis=1) / 2
        g = xp.matmul(wr, X)
    # [v+ g | u+ g | -v- g | -u- g]: swap the halves of each pair, then scale by +-g
    swapped = xp.concat([z[:, d : 2 * d], z[:, :d], z[:, 3 * d :], z[:, 2 * d : 3 * d]], axis=1)
    return loss, (swapped * xp.concat([g, g, -g, -g], axis=1),)
