r"""Predictions for the unconstrained feature model (neural collapse).

Model (Mixon et al. 2020; Zhu et al. 2021; Dang et al. 2023): features
:math:`H \in \mathbb{R}^{d \times N}` free, classifier :math:`W_M\cdots W_1` with
:math:`W_1 \in \mathbb{R}^{d' \times d}`, ..., :math:`W_M \in \mathbb{R}^{K \times d'}`
(:math:`M = 1`: a single :math:`W \in \mathbb{R}^{K\times d}`), one-hot labels
:math:`Y \in \{0,1\}^{K \times N}` with class sizes :math:`n_1, \dots, n_K`
(:math:`N = \sum n_k`), and

.. math::
    f = \frac{1}{N}\ell(W_M\cdots W_1 H + b\mathbf 1^\top, Y)
        + \sum_m \frac{\lambda_W}{2}\|W_m\|_F^2 + \frac{\lambda_H}{2}\|H\|_F^2
        \;(+ \tfrac{\lambda_b}{2}\|b\|^2),

with :math:`\ell` the squared error :math:`\tfrac12\|Z - Y\|_F^2` (MSE) or the
summed cross-entropy.

The convex reformulation behind every closed form here: by AM-GM,
:math:`\sum_m \tfrac{\lambda_W}{2}\|W_m\|^2 + \tfrac{\lambda_H}{2}\|H\|^2 \ge
\tfrac{M+1}{2}(\lambda_W^M\lambda_H)^{1/(M+1)}\sum_k\sigma_k(Z)^{2/(M+1)}` for
:math:`Z = W_M\cdots W_1 H`, with equality for balanced factors when every
width is at least :math:`K`. For :math:`M = 1` this is
:math:`\sqrt{\lambda_W\lambda_H}\|Z\|_*`, and the MSE problem becomes
singular-value soft-thresholding of :math:`Y`, whose singular values are
:math:`\sqrt{n_k}` (:math:`YY^\top = \operatorname{diag}(n)`).
"""

from __future__ import annotations

from .geometry import (
    ce_balanced_scale, ce_convex_program, dang_roots, deep_ce_family, deep_mse_value, Geometry, labels,
    mse_convex_program, mse_geometry, mse_optimal_value, simplex_etf,
)

__all__ = ["ce_balanced_scale", "ce_convex_program", "dang_roots", "deep_ce_family", "deep_mse_value", "Geometry",
           "labels", "mse_convex_program", "mse_geometry", "mse_optimal_value", "simplex_etf"]
