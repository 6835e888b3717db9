r"""Matrix sensing with factorised models, simulated.

A low-rank ground truth :math:`M^* \in \mathbb{R}^{n_1\times n_2}` (PSD for the
symmetric case) is observed through a near-isometric linear operator
(:mod:`sims.matrix_sensing.operator`): :math:`y = \mathcal A(M^*) + \text{noise}`,
a fraction of gross outliers optional. The model is a factorisation

* ``"symmetric"``: :math:`M = XX^\top`, :math:`X \in \mathbb{R}^{n\times k}` (Burer-Monteiro);
* ``"asymmetric"``: :math:`M = FG^\top`, :math:`F \in \mathbb{R}^{n_1\times k}`, :math:`G \in \mathbb{R}^{n_2\times k}`;
* ``"deep"``: :math:`M = W_N\cdots W_1` (Arora, Cohen, Hu, Luo 2019), hidden width ``k``;

and the loss is one of

* ``"l2"``: :math:`f = s\,\|\mathcal A(M) - y\|^2` with ``loss_scale`` :math:`s`. The
  default :math:`s = 1/2` is the library's; ScaledGD(:math:`\lambda`) (Xu et al.
  2023) and Xiong, Ding, Du 2023 write :math:`f = \frac14\|\cdot\|^2`
  (``loss_scale=0.25``): the same flow at half the speed, the same GD at twice the step.
* ``"l1"``: :math:`f = \frac{1}{\sqrt m}\sum_i |\langle A_i, M\rangle - y_i|`: with our
  :math:`A_i` of variance-:math:`1/m` entries this is exactly Ma & Fattahi 2023's
  :math:`\frac1m\sum_i|\langle \tilde A_i, M\rangle - \tilde y_i|` for standard Gaussian
  :math:`\tilde A_i = \sqrt m A_i`.

Gradients, by hand, with :math:`G_M = \nabla_M f = 2s\,\mathcal A^*(r)` (l2) or
:math:`\frac{1}{\sqrt m}\mathcal A^*(\operatorname{sign} r)` (a sub-gradient of l1):
:math:`\nabla_X = (G_M + G_M^\top)X`, :math:`\nabla_F = G_M G`, :math:`\nabla_G = G_M^\top F`,
:math:`\nabla_{W_j} = (W_N\cdots W_{j+1})^\top G_M (W_{j-1}\cdots W_1)^\top`. With SGD's
per-measurement weights :math:`\omega` (rows summing to one) the sum
:math:`\sum_i r_i^2` becomes :math:`m\sum_i \omega_i r_i^2`.

Modules: :mod:`.problem`, :mod:`.operator` (the measurement operator on the device), :mod:`.dynamics`
(factors, hand-written gradients), :mod:`.reduced` (aligned-mode coordinates), :mod:`.training` (:func:`simulate`,
the sweep task), :mod:`.measure` (rates and crossing times read from runs).

Examples
--------
>>> problem = Problem.random(10, 10, rank=2, m=200, symmetric=True, operator="symmetric", seed=0)
>>> traj = simulate(problem, alpha=[1e-3, 1e-2], k=4, t_max=50.0)
>>> traj.final["M"].shape
(2, 10, 10)
"""

from __future__ import annotations

from .dynamics import end_to_end, initial_state, loss_grad, observe
from .problem import ALGORITHMS, FACTORISATIONS, INITS, LOSSES, MAX_ENTRIES, OPERATORS, OUTLIER_SCALE, Problem
from .training import model, simulate, sweep_recovery

__all__ = ["ALGORITHMS", "end_to_end", "FACTORISATIONS", "initial_state", "INITS", "loss_grad", "LOSSES", "model",
           "OPERATORS", "Problem", "simulate", "sweep_recovery"]
