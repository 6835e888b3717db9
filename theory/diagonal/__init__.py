r"""Predictions for diagonal linear networks.

Model (Woodworth, Gunasekar, Lee, Moroshko, Savarese, Golan, Soudry & Srebro
2020, "Kernel and Rich Regimes in Overparametrized Models", Sec. 4):
:math:`w = u \odot u - v \odot v` with :math:`u(0) = v(0) = \alpha` and loss
:math:`L(w) = \|Xw - y\|^2 / (2n)`.

Along gradient flow :math:`\dot u = -2u \odot \nabla L(w)`,
:math:`\dot v = 2v \odot \nabla L(w)`, so
:math:`w(t) = 2\alpha^2 \sinh(X^\top \nu(t))` with
:math:`\nu(t) = -\tfrac{2}{n}\int_0^t r(s)\,ds` -- a mirror flow whose limit,
when it interpolates, is the minimiser of the hyperbolic-entropy potential
:math:`Q_\alpha` over :math:`\{w : Xw = y\}` (Woodworth et al. 2020, Theorem 1).
"""

from __future__ import annotations

from .potential import implicit_bias, kernel_correction, min_l1_interpolator, min_l2_interpolator, q, q_alpha
from .saddle import saddle_to_saddle, SaddleToSaddle
from .shape import azulay_init, azulay_k, azulay_q, azulay_to_library, shape_equivalent_alpha
from .discrete import (
    discrete_bias_bound, effective_alpha, effective_alpha_from_run, effective_alpha_sgd,
    effective_alpha_two_point, hessian_top, hessian_trace, stability_bounds,
)

__all__ = ["azulay_init", "azulay_k", "azulay_q", "azulay_to_library", "discrete_bias_bound", "effective_alpha",
           "effective_alpha_from_run", "effective_alpha_sgd", "effective_alpha_two_point", "hessian_top",
           "hessian_trace", "implicit_bias", "kernel_correction", "min_l1_interpolator",
           "min_l2_interpolator", "q", "q_alpha", "saddle_to_saddle", "SaddleToSaddle",
           "shape_equivalent_alpha", "stability_bounds"]
