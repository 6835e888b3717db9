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
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import asarray, host_to, namespace, xp_of
from .driver import Model

if TYPE_CHECKING:
    from .ufm import Problem

__all__ = ["collapsed_model", "collapsed_refusal", "expand"]


def collapsed_refusal(problem: Problem, init: str) -> str:
    """Why the one-feature-per-class reduction does not apply (empty when it does)."""
    if init != "collapsed":
        return f"init={init!r} (the reduction needs a collapsed start: init='collapsed')"
    if problem.anchor is not None:
        return "the problem has an anchor (each feature is pulled to its own column of H0, so a class does not stay collapsed)"
    return ""


def expand(problem: Problem, means: Any) -> Any:
    """Class vectors ``(B, d, K)`` repeated into features ``(B, d, N)``, samples ordered by class."""
    xp = xp_of(means)
    idx = host_to(np.repeat(np.arange(problem.K), problem.n), means, dtype=xp.int64)
    return xp.take(means, idx, axis=2)


def collapsed_model(problem: Problem, state0: tuple[Any, ...], *, record_metrics: bool, backend: str, dtype: str,
                    device: Any, meta: dict[str, Any], t_max: float, atol: float, grad_tol: float) -> Model:
    """The restricted flow as the driver's :class:`~sims.driver.Model`; ``state0`` = ``(W_1..W_M, M[, b])`` with
    the class vectors ``M`` of shape ``(B, d, K)``."""
    from .ufm import loss_grad, metrics

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

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        full = full_state(state)
        out = {"loss": loss_grad(problem, Y, full)[0]}
        if record_metrics:
            out.update(metrics(problem, full))
        return out

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        from .matmul import product

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
