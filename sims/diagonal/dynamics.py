"""The diagonal network's state, loss, hand-written gradient and observables (Woodworth et al. 2020, Sec. 4)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine.backend import asarray, namespace, xp_of
from .problem import Problem, alpha_grid
from .shaped import shaped_predictor

__all__ = ["default_loss_tol", "initial_state", "loss_grad", "observe", "observe_w", "predictor", "split"]


def initial_state(problem: Problem, alpha: Any, *, backend: str = "numpy", dtype: str = "float64",
                  device: Any = None) -> tuple[Any]:
    """The state ``(z,)`` with ``z = [u | v]`` of shape ``(B, 2d)`` at ``u = v = alpha``, on the backend.

    The two factors live side by side in one array so that the integrator
    works on a single buffer (no packing per gradient evaluation).
    """
    xp = namespace(backend)
    a = alpha_grid(alpha, problem.d)
    return (asarray(np.concatenate([a, a], axis=1), xp, dtype, device),)


def split(state: tuple[Any, ...]) -> tuple[Any, Any]:
    """``(u, v)`` from the state ``(z,)``, ``z = [u | v]`` (views)."""
    (z,) = state
    d = z.shape[1] // 2
    return z[:, :d], z[:, d:]


def predictor(state: tuple[Any, ...]) -> Any:
    """The linear predictor ``w = u*u - v*v``."""
    (z,) = state
    d = z.shape[1] // 2
    z2 = z * z
    return z2[:, :d] - z2[:, d:]


def loss_grad(problem_data: tuple[Any, Any], state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple[Any]]:
    r"""Loss and its hand-written gradient, batched.

    Parameters
    ----------
    problem_data : (X, y) on the backend, shapes (n, d) and (n,)
    state : (z,) with z = [u | v] of shape (B, 2d)
    weights : (B, n) or None
        Sample weights summing to one per run; ``None`` is the uniform 1/n.

    Returns
    -------
    loss : (B,)
        :math:`\sum_j \omega_j r_j^2 / 2`, :math:`r = Xw - y`, :math:`w = u^2 - v^2`.
    grads : (grad_z,)
        :math:`[2u \odot g \mid -2v \odot g]`, :math:`g = X^\top(\omega \odot r)`.
    """
    X, y = problem_data
    xp = xp_of(X)
    w = predictor(state)
    r = xp.matmul(w, X.T) - y  # (B, n)
    if weights is None:
        n = X.shape[0]
        loss = xp.sum(r * r, axis=1) / (2 * n)
        g2 = xp.matmul(r, X) * (2.0 / n)
    else:
        wr = weights * r
        loss = xp.sum(wr * r, axis=1) / 2
        g2 = 2.0 * xp.matmul(wr, X)
    (z,) = state
    return loss, (z * xp.concat([g2, -g2], axis=1),)


def observe(problem_data: tuple[Any, Any], w_star: Any, state: tuple[Any, ...], record_w: bool = False,
            shaped: bool = False) -> dict[str, Any]:
    """Observables: ``loss``, ``l1`` (:math:`\\|w\\|_1`), ``distance`` (to the teacher), optionally ``w``."""
    return observe_w(problem_data, w_star, shaped_predictor(state) if shaped else predictor(state), record_w)


def observe_w(problem_data: tuple[Any, Any], w_star: Any, w: Any, record_w: bool = False) -> dict[str, Any]:
    """The observables of :func:`observe` from the predictor ``w`` (B, d), in whichever coordinates it came."""
    X, y = problem_data
    xp = xp_of(X)
    r = xp.matmul(w, X.T) - y
    out = {"loss": xp.sum(r * r, axis=1) / (2 * X.shape[0]), "l1": xp.sum(xp.abs(w), axis=1)}
    if w_star is not None:
        diff = w - w_star
        out["distance"] = xp.sqrt(xp.sum(diff * diff, axis=1))
    if record_w:
        out["w"] = w
    return out


def default_loss_tol(problem: Problem, alpha: np.ndarray, dtype: str, rel_error: float, *,
                     cancellation: bool = True) -> np.ndarray:
    r"""Per-run convergence threshold: the loss below which the residual is noise.

    The larger of two floors:

    * round-off in :math:`r = Xw - y`: ``(1e3 eps)^2 mean(y^2) / 2``;
    * the relative error ``rel_error`` of ``u`` and ``v`` (the flow's ``rtol``;
      ``eps`` for discrete steps). It is an absolute error
      :math:`\text{rel}\,(u_i^2 + v_i^2) \le \text{rel}\,(|w_i| + 2\alpha^2)` on
      each coordinate of :math:`w = u^2 - v^2` (at large alpha the
      cancellation makes it large), hence a residual of about
      :math:`\text{rel}\,\|x_j\|\,(\|w\|/\sqrt d + 2\alpha^2)` per sample,
      with :math:`\|w\|_2` bounded by :math:`\|w_{\ell_2}\|_1` of the minimum-norm
      interpolator: it bounds the l2 norm of both limits, the min-l2 interpolator and the
      min-l1 one (:math:`\|w_{\ell_1}\|_2 \le \|w_{\ell_1}\|_1 \le \|w_{\ell_2}\|_1`), which
      is sparse and can be several times longer than :math:`w_{\ell_2}` when n << d (the norm of
      :math:`w_{\ell_2}` itself left a 5 x 164 problem stalled on the floor). A margin of
      10 keeps the threshold above what the integrator resolves: below it the
      loss stalls on this floor and the run would never stop.

    ``cancellation=False`` drops the :math:`2\alpha^2` term, for the reduced coordinates
    (:mod:`sims.diagonal.reduced`): there :math:`w = -(u_0^2 + v_0^2)\sinh(2X^\top\mu)` has no
    difference of squares, and the :math:`\mu`-flow's only equilibrium is the limit itself
    (:math:`Xw(\mu) = y` has one solution, the map being strictly monotone), so the integration
    error moves the path but not where it ends: the loss falls to round-off at every alpha, and
    the threshold only has to put the stopped state within about ``rel_error`` of the limit
    (measured by ``benchmarks/diagonal_flow.py``: 1e-6 at rtol 1e-8 for alpha from 1e-3 to 3, where
    the full coordinates' threshold leaves 5e-5 at alpha = 3).

    Returns an array ``(B,)``.
    """
    eps = float(np.finfo(np.dtype(dtype)).eps)
    roundoff = (1e3 * eps) ** 2 * (float(np.mean(problem.y**2)) / 2 or 1.0)
    row_sq = float(np.mean(np.sum(problem.X**2, axis=1)))
    w_ref = float(np.sum(np.abs(np.linalg.lstsq(problem.X, problem.y, rcond=None)[0])))
    coord = w_ref / math.sqrt(problem.d) + (2.0 if cancellation else 0.0) * np.max(alpha, axis=1) ** 2
    integration = 0.5 * (10 * max(rel_error, eps) * coord) ** 2 * row_sq
    return np.maximum(roundoff, integration)
