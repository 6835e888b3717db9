r"""The diagonal network's gradient flow in its exact reduced coordinates: n numbers per run instead of 2d.

Identity (Woodworth et al. 2020, Sec. 4; Pesme & Flammarion 2023, eq. (2)):
under :math:`\dot u = -2u\odot g`, :math:`\dot v = 2v\odot g` with
:math:`g = X^\top r/n`, :math:`r = Xw - y`, every coordinate is multiplicative,
so with :math:`\mu(t) = \int_0^t r(\tau)\,d\tau / n \in \mathbb{R}^n` and
:math:`s = X^\top\mu`

.. math:: u = u_0 e^{-2s},\quad v = v_0 e^{2s},\qquad
          w = u_0^2e^{-4s} - v_0^2e^{4s} = -2\alpha^2\sinh(4s) \;\;(u_0 = v_0 = \alpha),
          \qquad \dot\mu = (Xw(\mu) - y)/n .

For the shaped network :math:`w = u_+v_+ - u_-v_-` (Azulay et al. 2021) with
:math:`u_\pm(0) = u_0`, :math:`v_\pm(0) = v_0`, the sums and differences are
multiplicative instead: :math:`u_+ \pm v_+ = (u_0 \pm v_0)e^{\mp s}`,
:math:`u_- \pm v_- = (u_0 \pm v_0)e^{\pm s}`, hence (derived here)

.. math:: w = -(u_0^2 + v_0^2)\sinh(2s),

the plain form with :math:`2\alpha^2 \to u_0^2 + v_0^2` and :math:`4 \to 2`:
the limit depends on the shape only through :math:`u_0^2 + v_0^2`. Both are
``w = -kappa sinh(c s)``; :math:`\sinh` is evaluated directly, so ``w`` has
no cancellation at large :math:`\alpha` (the full path's :math:`u^2 - v^2`
loses digits there).

The reduced flow is the gradient flow of the convex potential
:math:`\Phi(\mu) = \frac1n\big(\sum_i \frac{\kappa_i}{c}\cosh(c s_i) + y^\top\mu\big)`
(the mirror-descent dual), with the symmetric Jacobian

.. math:: J = -\frac{c}{n} X\,\mathrm{diag}\big(\kappa\cosh(cs)\big)X^\top
          = -\frac{c}{n} X\,\mathrm{diag}\big(\sqrt{w^2 + \kappa^2}\big)X^\top ,

whose eigenvalues run from :math:`O(|w|)` on the support to
:math:`O(\alpha^2)` off it: stiff at small :math:`\alpha`, hence the
Rosenbrock-W integrator (:mod:`sims.engine.stiff`).

Exact for gradient flow from any positive initial scale (per run or per run
and coordinate), plain or shaped; it does not hold for GD, SGD, SAM or any
discrete map (the multiplicative form is a property of the flow), which
:func:`sims.diagonal.simulate` refuses in reduced coordinates.

Cost per step and run: two ``n x d`` products for the vector field, one for the
error; a Jacobian (:math:`n^2 d`) and its eigendecomposition (:math:`O(n^3)`)
only every ``Flow.refresh`` steps or after a rejected step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..engine.backend import asarray, namespace
from ..engine.driver import Model

from .dynamics import observe_w
from .problem import Problem

__all__ = ["predictor", "reduced_model", "reduced_parameters"]


def _kappa(alpha: np.ndarray, shape: float) -> tuple[np.ndarray, float]:
    """``(kappa, c)`` of ``w = -kappa sinh(c s)`` for the plain (shape 0) or the shaped network."""
    if shape == 0.0:
        return 2.0 * alpha**2, 4.0
    u0, v0 = alpha * ((1 + shape) / (1 - shape)) ** 0.25, alpha * ((1 - shape) / (1 + shape)) ** 0.25
    return u0**2 + v0**2, 2.0


def predictor(xp: Any, s: Any, kappa: Any, c: float) -> Any:
    """``w = -kappa sinh(c s)`` on the backend (``s = X^T mu``)."""
    return -kappa * xp.sinh(c * s)


def reduced_parameters(problem: Problem, alpha: np.ndarray, shape: float, mu: np.ndarray) -> dict[str, np.ndarray]:
    """The full parameters at the reduced state ``mu`` (B, n), on the host (the trajectory's ``final``)."""
    s = mu @ problem.X
    kappa, c = _kappa(alpha, shape)
    w = -kappa * np.sinh(c * s)
    if shape == 0.0:
        return {"w": w, "u": alpha * np.exp(-2 * s), "v": alpha * np.exp(2 * s)}
    u0, v0 = alpha * ((1 + shape) / (1 - shape)) ** 0.25, alpha * ((1 - shape) / (1 + shape)) ** 0.25
    plus, minus = u0 + v0, u0 - v0
    return {"w": w,
            "u_plus": (plus * np.exp(-s) + minus * np.exp(s)) / 2, "v_plus": (plus * np.exp(-s) - minus * np.exp(s)) / 2,
            "u_minus": (plus * np.exp(s) + minus * np.exp(-s)) / 2, "v_minus": (plus * np.exp(s) - minus * np.exp(-s)) / 2}


def reduced_model(problem: Problem, alpha: np.ndarray, *, shape: float, record_w: bool, backend: str, dtype: str,
                  device: Any, meta: dict[str, Any], loss_tol: Any) -> Model:
    """The reduced flow as the driver's :class:`~sims.engine.driver.Model` (``alpha`` is the ``(B, d)`` host grid)."""

    xp = namespace(backend)
    kappa_host, c = _kappa(alpha, shape)
    X = asarray(problem.X, xp, dtype, device)
    y = asarray(problem.y, xp, dtype, device)
    w_star = None if problem.w_star is None else asarray(problem.w_star, xp, dtype, device)
    n = problem.n

    def w_of(mu: Any, kappa: Any) -> Any:
        return predictor(xp, xp.matmul(mu, X), kappa, c)

    def loss_grad(state: tuple[Any, ...], weights: Any = None, aux: Any = None) -> tuple[Any, tuple[Any]]:
        (mu,) = state
        r = xp.matmul(w_of(mu, aux), X.T) - y
        return xp.sum(r * r, axis=1) / (2 * n), (-r / n,)

    def jacobian(state: tuple[Any, ...], aux: Any = None) -> Any:
        (mu,) = state
        curv = (c / n) * aux * xp.cosh(c * xp.matmul(mu, X))  # (B, d)
        return -xp.matmul(X[None, ...] * curv[:, None, :], X.T)

    def error_map(delta: tuple[Any, ...], aux: Any = None) -> Any:
        (dmu,) = delta
        return (c / 2) * xp.matmul(dmu, X)  # the relative error of every factor u_i, v_i

    def observe(state: tuple[Any, ...], aux: Any = None) -> dict[str, Any]:
        return observe_w((X, y), w_star, w_of(state[0], aux), record_w)

    batch = alpha.shape[0]
    return Model(
        name="diagonal",
        state0=(asarray(np.zeros((batch, n)), xp, dtype, device),),
        loss_grad=loss_grad,
        observe=observe,
        final=lambda host: reduced_parameters(problem, alpha, shape, host[0]),
        meta=meta,
        backend=backend, dtype=dtype, n_samples=None, t_max=1e4, atol=0.0,
        loss_tol=loss_tol,
        jacobian=jacobian, error_map=error_map, aux=asarray(kappa_host, xp, dtype, device), coordinates="reduced",
    )
