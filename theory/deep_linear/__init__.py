r"""Predictions for deep linear and scalar networks, linear grokking and model collapse.

Conventions (this library): a deep linear network :math:`W = W_N \cdots W_1` is
trained on whitened inputs, :math:`L = \tfrac12\|W - \Phi\|_F^2` with target
:math:`\Phi = U \operatorname{diag}(s) V^\top` (Saxe et al. 2014, Sec. 2, with
unit learning rate: their :math:`\tau = 1`); a scalar network is the
one-by-one case :math:`f = w_1 \cdots w_D`, :math:`L = (f - y)^2/2`.
"""

from __future__ import annotations

from .modes import end_to_end_mode, saxe_learning_time, saxe_mode
from .sharpness import gfs, gfs_sharpness, sam_edge, scalar_hessian
from .grokking import grokking_accuracy, grokking_losses, grokking_time, grokking_time_asymptote, mp_moments
from .model_collapse import (
    model_collapse_error, model_collapse_optimal_ridge, model_collapse_ridge_error,
    model_collapse_ridge_error_general, mp_resolvent, MPTraces,
)

__all__ = ["end_to_end_mode", "gfs", "gfs_sharpness", "grokking_accuracy", "grokking_losses", "grokking_time",
           "grokking_time_asymptote", "model_collapse_error", "model_collapse_optimal_ridge",
           "model_collapse_ridge_error", "model_collapse_ridge_error_general", "mp_moments", "mp_resolvent",
           "MPTraces", "sam_edge", "saxe_learning_time", "saxe_mode", "scalar_hessian"]
