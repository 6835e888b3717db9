r"""The unconstrained feature model, simulated: free features, a (deep linear) classifier, MSE or cross-entropy.

.. math::
    f = \frac1N\ell(W_M\cdots W_1\,\phi(H) + b\mathbf 1^\top, Y)
      + \sum_m\frac{\lambda_W}{2}\|W_m\|_F^2 + \frac{\lambda_H}{2}\|H\|_F^2 + \frac{\lambda_b}{2}\|b\|^2,

with :math:`\phi` the identity or ReLU, :math:`\ell` the squared error
:math:`\tfrac12\|\cdot\|_F^2` or the summed cross-entropy, samples ordered by
class. With :math:`D = \partial\ell/\partial Z / N` (``(Z - Y)/N`` or
``(softmax(Z) - Y)/N``) the gradient written by hand is
:math:`\nabla_{W_j} = A_j^\top D\phi(H)^\top B_j^\top + \lambda_W W_j`,
:math:`\nabla_H = \phi'(H)\odot(W^\top D) + \lambda_H H`,
:math:`\nabla_b = D\mathbf 1 + \lambda_b b` (:math:`A_j, B_j` the products of
the layers above and below, as in :mod:`sims.deep_linear`).

Neural-collapse metrics (observables, on :math:`\phi(H)`):

* ``nc1`` :math:`= \operatorname{tr}(\Sigma_W\Sigma_B^+)/K` with
  :math:`\Sigma_W = \frac1N\sum_i (h_i - \mu_{y_i})(h_i - \mu_{y_i})^\top` and
  :math:`\Sigma_B = \frac1K\sum_k (\mu_k - \bar\mu)(\mu_k - \bar\mu)^\top`, centred at
  the **mean of the class means** :math:`\bar\mu` (not the sample-weighted
  global mean; they differ under imbalance);
* ``nc2`` :math:`= \|\tilde M^\top\tilde M/\|\cdot\|_F - E/\|E\|_F\|_F`, the
  normalised Gram of the centred class means against the simplex ETF
  :math:`E`; ``nc2_w`` the same for the rows of the end-to-end classifier;
* ``nc3`` :math:`= \|W/\|W\|_F - \tilde M^\top/\|\tilde M\|_F\|_F` (self-duality), with
  the centred means when the model has a bias and the raw class means when
  it does not (the bias-free minimisers are self-dual without centring);
* ``nc4`` the fraction of samples on which the classifier's decision
  differs from the nearest class mean.

Modules: :mod:`.problem`, :mod:`.dynamics` (state, hand-written gradient, collapse metrics), :mod:`.scl`
(supervised contrastive loss), :mod:`.reduced` (collapsed and aligned coordinates), :mod:`.training`
(:func:`simulate`, the sweep task).
"""

from __future__ import annotations

from .dynamics import aligned_frame, initial_state, loss_grad, metrics
from .problem import INITS, LOSSES, Problem
from .scl import batch_masks, scl_features, scl_loss_grad, simulate_scl
from .training import model, simulate, sweep_collapse

__all__ = ["aligned_frame", "batch_masks", "initial_state", "INITS", "loss_grad", "LOSSES", "metrics", "model",
           "Problem", "scl_features", "scl_loss_grad", "simulate", "simulate_scl", "sweep_collapse"]
