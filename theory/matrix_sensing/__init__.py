r"""Matrix sensing: what the papers predict.

Conventions (shared with :mod:`sims.matrix_sensing`): the l2 loss is
:math:`f = s\,\|\mathcal A(M) - y\|^2` with ``loss_scale`` :math:`s` (the library's 1/2;
Xu et al. 2023 and Xiong et al. 2023 write :math:`s = 1/4`), so gradient flow on
:math:`X` is :math:`\dot X = -4s\,\mathcal A^*(r)_{\rm sym} X`, which in the population case
(:math:`\mathcal A = I`) is :math:`\dot X = -4s\,(XX^\top - M^*)X`.

Closed forms here:

* :func:`mode_energy`, :func:`learning_time`, :func:`learning_slope`: the commuting
  (aligned, population) case, where each eigen-mode evolves alone (incremental
  learning, Jin, Li, Lyu, Du, Lee 2023; Gissin et al. 2019);
* :func:`greedy_low_rank`: the greedy low-rank learning procedure (GLRL) of Li,
  Luo, Lyu 2021, the small-initialisation limit of the trajectory;
* :func:`overparam_tail`, :func:`exact_rate`: the :math:`1/T^2` tail of symmetric
  over-parameterisation and the linear rate of exact parameterisation (Xiong, Ding, Du 2023);
* :func:`min_nuclear_norm`: the minimum nuclear-norm solution, with its KKT certificate
  (Gunasekar et al. 2017; Arora et al. 2019; Li et al. 2021);
* :func:`commuting_limit`: the exact small-but-finite-alpha limit of the flow with
  commuting (diagonal) measurements, an entropy-regularised trace minimiser.
"""

from __future__ import annotations

from .closed_forms import (
    commuting_limit, effective_rank, exact_rate, gd_iterations, greedy_low_rank, GreedyStages, learning_slope,
    learning_time, min_nuclear_norm, mode_energy, overparam_tail,
)

__all__ = ["commuting_limit", "effective_rank", "exact_rate", "gd_iterations", "greedy_low_rank", "GreedyStages",
           "learning_slope", "learning_time", "min_nuclear_norm", "mode_energy", "overparam_tail"]
