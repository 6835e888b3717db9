r"""The unconstrained feature model from a collapsed start, in its exact reduced coordinates: one feature per class.

Identity (this library; the within-class collapse that Papyan, Han & Donoho 2020 observe at the end of
training, here kept from the start): the gradient of the UFM objective with respect to one feature is

.. math:: \nabla_{h_i} f = \phi'(h_i)\odot\frac1N W^\top\partial_z\ell(Wh_i + b, y_i) + \lambda_H h_i,

which depends on the sample only through :math:`h_i` and its label. If every feature starts at its class's
vector, :math:`h_i(0) = m_{y_i}(0)` (``init="collapsed"``), the features of a class therefore move together
under gradient flow and stay equal: the flow is that of :math:`(W_1, \dots, W_M, m_1, \dots, m_K, b)`,

.. math:: \dot m_k = -\Big[\phi'(m_k)\odot\frac1N W^\top\partial_z\ell(Wm_k + b, e_k) + \lambda_H m_k\Big],
          \qquad \dot W_j = -\Big[\sum_k \frac{n_k}{N}\,(\cdots)_k + \lambda_W W_j\Big],

K d feature numbers instead of N d, with the class sizes :math:`n_k` as weights. It is not the gradient
flow of the reduced objective (that would move :math:`m_k` :math:`n_k` times faster) but the full flow,
restricted. Evaluated by :func:`sims.ufm.loss_grad` on one sample per class with weights :math:`n_k/N`,
whose feature gradient :math:`g_k = \frac{n_k}{N}(\cdots)_k + \lambda_H m_k` becomes the per-sample one as
:math:`(g_k - \lambda_H m_k)/n_k + \lambda_H m_k`; the objective adds
:math:`\frac{\lambda_H}2\sum_k (n_k - 1)\|m_k\|^2`.

Exact for gradient flow from ``init="collapsed"`` with any loss, bias, depth and ReLU; not with an
``anchor`` (each feature is pulled to its own column of :math:`H_0`), not for SGD (a mini-batch moves only
its own samples' features) or other discrete rules, which :func:`sims.ufm.simulate` refuses in reduced
coordinates. Convergence (``grad_tol``) is judged on this reduced field, whose feature part counts each
class once. Cost per evaluation: O(K d) for the features instead of O(N d); the observables (loss and the
neural-collapse metrics) are evaluated on the expanded features, as in full coordinates.

**Aligned start: one pair of numbers per class.** With the squared error, no bias, one layer, no ReLU and no
anchor, start collapsed on an orthonormal frame (``init="aligned"``): :math:`W = \sum_k s_k e_kq_k^\top` and
:math:`h_i = t_{y_i}q_{y_i}`. Then :math:`Wh_i - e_k = (s_kt_k - 1)e_k` for a sample of class :math:`k`, so
:math:`\nabla_W f = \sum_k[\frac{n_k}{N}t_k(s_kt_k - 1) + \lambda_Ws_k]e_kq_k^\top` and
:math:`\nabla_{h_i} f = [\frac1N s_k(s_kt_k - 1) + \lambda_Ht_k]q_k`: both keep the form, and the flow is

.. math:: \dot s_k = -\Big[\frac{n_k}{N}t_k(s_kt_k - 1) + \lambda_Ws_k\Big],\qquad
          \dot t_k = -\Big[\frac1N s_k(s_kt_k - 1) + \lambda_Ht_k\Big],

2K numbers instead of K d + N d (derived here; its end point is Dang et al. 2023's Thm 4.1 minimiser,
:math:`s_k^2 = \sqrt{n_k\lambda_H/\lambda_W} - N\lambda_H` where positive). Cross-entropy couples the rows
through the softmax, a bias through the shared offsets, ReLU and depth change the form: those starts run in the
collapsed reduction above, or in full coordinates.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..engine.backend import asarray, host_to, namespace, xp_of
from ..engine.driver import Model

from .dynamics import loss_grad, metrics
from .problem import Problem

__all__ = ["aligned_model", "aligned_refusal", "collapsed_model", "collapsed_refusal", "expand"]


def collapsed_refusal(problem: Problem, init: str) -> str:
    """Why the one-feature-per-class reduction does not apply (empty when it does)."""
    if init not in ("collapsed", "aligned"):
        return f"init={init!r} (the reduction needs a collapsed start: init='collapsed' or 'aligned')"
    if problem.anchor is not None:
        return "the problem has an anchor (each feature is pulled to its own column of H0, so a class does not stay collapsed)"
    return ""


def expand(problem: Problem, means: Any) -> Any:
    """Class vectors ``(B, d, K)`` repeated into features ``(B, d, N)``, samples ordered by class."""
    xp = xp_of(means)
    idx = host_to(np.repeat(np.arange(problem.K), problem.n), means, dtype=xp.int64)
    return xp.take(means, idx, axis=2)


def _observer(problem: Problem, Y: Any, full_state: Any, record_metrics: bool) -> Any:
    """The observables of a reduced state, evaluated on the full state it stands for (as in full coordinates)."""

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        full = full_state(state)
        out = {"loss": loss_grad(problem, Y, full)[0]}
        if record_metrics:
            out.update(metrics(problem, full))
        return out

    return observe


def collapsed_model(problem: Problem, state0: tuple[Any, ...], *, record_metrics: bool, backend: str, dtype: str,
                    device: Any, meta: dict[str, Any], t_max: float, atol: float, grad_tol: float) -> Model:
    """The restricted flow as the driver's :class:`~sims.engine.driver.Model`; ``state0`` = ``(W_1..W_M, M[, b])`` with
    the class vectors ``M`` of shape ``(B, d, K)``."""

    xp = namespace(backend)
    depth, K = problem.depth, problem.K
    per_class = dataclasses.replace(problem, n=(1,) * K, anchor=None)
    n_host = np.asarray(problem.n, dtype=float)
    counts = asarray(n_host, xp, dtype, device)
    Y_k = asarray(np.eye(K), xp, dtype, device)
    Y = asarray(problem.labels(), xp, dtype, device)
    lam_h = problem.lambda_H

    def reduced_loss_grad(state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple[Any, ...]]:
        means = state[depth]
        wts = xp.broadcast_to(counts / problem.N, (means.shape[0], K))
        value, grads = loss_grad(per_class, Y_k, state, wts)
        g_m = (grads[depth] - lam_h * means) / counts + lam_h * means
        value = value + xp.sum(means * means * (counts - 1.0), axis=(1, 2)) * (lam_h / 2)
        return value, grads[:depth] + (g_m,) + grads[depth + 1:]

    def full_state(state: tuple[Any, ...]) -> tuple[Any, ...]:
        return state[:depth] + (expand(problem, state[depth]),) + state[depth + 1:]

    observe = _observer(problem, Y, full_state, record_metrics)

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        from ..engine.matmul import product

        out = {f"W_{j + 1}": w for j, w in enumerate(host[:depth])}
        out["H"] = np.repeat(host[depth], problem.n, axis=2)
        out["class_vectors"] = host[depth]
        if problem.lambda_b is not None:
            out["b"] = host[depth + 1]
        out["W"] = product(host[:depth])
        return out

    return Model(name="ufm", state0=state0, loss_grad=reduced_loss_grad, observe=observe, final=final, meta=meta,
                 backend=backend, dtype=dtype, n_samples=None, t_max=t_max, atol=atol, grad_tol=grad_tol,
                 samples_hint="use coordinates='full' (SGD moves only its mini-batch's features)",
                 coordinates="reduced")


def aligned_refusal(problem: Problem, init: str) -> str:
    """Why the per-class mode reduction does not apply (empty when it does; module docstring)."""
    if init != "aligned":
        return f"init={init!r} (the mode reduction needs init='aligned')"
    for bad, why in ((problem.loss != "mse", "cross-entropy couples the classifier's rows through the softmax"),
                     (problem.lambda_b is not None, "a bias couples the classes through the shared offsets"),
                     (problem.depth != 1, "a deep head (depth > 1)"), (problem.relu, "ReLU features"),
                     (problem.anchor is not None, "an anchor")):
        if bad:
            return why
    return ""


def aligned_model(problem: Problem, frame: np.ndarray, alpha: np.ndarray, *, record_metrics: bool, backend: str,
                  dtype: str, device: Any, meta: dict[str, Any], t_max: float, atol: float, grad_tol: float) -> Model:
    """The per-class mode flow (module docstring) as the driver's :class:`~sims.engine.driver.Model`: state ``(s, t)``,
    each ``(B, K)``, from ``s = t = alpha`` per run on the orthonormal ``frame`` (d, K)."""
    xp = namespace(backend)
    K, N = problem.K, problem.N
    n = asarray(np.asarray(problem.n, dtype=float), xp, dtype, device)
    Q = asarray(frame, xp, dtype, device)
    Y = asarray(problem.labels(), xp, dtype, device)
    lw, lh = problem.lambda_W, problem.lambda_H
    a = np.repeat(np.asarray(alpha, dtype=float)[:, None], K, axis=1)
    state0 = (asarray(a, xp, dtype, device), asarray(a, xp, dtype, device))

    def mode_loss_grad(state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple[Any, ...]]:
        s, t = state
        r = s * t - 1.0
        value = xp.sum(n * r * r, axis=1) / (2 * N) + xp.sum(s * s, axis=1) * (lw / 2) + xp.sum(n * t * t, axis=1) * (lh / 2)
        return value, (n / N * t * r + lw * s, s * r / N + lh * t)

    def full_state(state: tuple[Any, ...]) -> tuple[Any, ...]:
        s, t = state
        W = s[:, :, None] * xp.permute_dims(Q, (1, 0))[None, :, :]
        return W, expand(problem, Q[None, :, :] * t[:, None, :])

    observe = _observer(problem, Y, full_state, record_metrics)

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        s, t = host
        W = s[:, :, None] * frame.T[None]
        return {"W_1": W, "H": np.repeat(frame[None] * t[:, None, :], problem.n, axis=2), "W": W, "s": s, "t": t}

    return Model(name="ufm", state0=state0, loss_grad=mode_loss_grad, observe=observe, final=final, meta=meta,
                 backend=backend, dtype=dtype, n_samples=None, t_max=t_max, atol=atol, grad_tol=grad_tol,
                 samples_hint="use coordinates='full' (SGD moves only its mini-batch's features)",
                 coordinates="reduced")
