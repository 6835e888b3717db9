r"""Linear self-attention trained on in-context linear regression, simulated.

A prompt holds :math:`N` examples :math:`x_i \sim N(0, \Lambda)` (or, per prompt, its own random
:math:`\Lambda = \operatorname{diag}(\lambda)`), labels :math:`y_i = g(\langle w, x_i\rangle) + \varepsilon_i`
(link :math:`g` = identity or tanh, noise :math:`N(0, s^2)`), a task :math:`w \sim N(0, I)` (``task="isotropic"``)
or :math:`N(0, \Lambda^{-1})` (``"inverse"``), and a query :math:`x_q` with its label :math:`y_q`. Three
architectures, each with its paper's conventions:

* ``"full"`` -- Zhang, Frei, Bartlett 2024 (ZFB): :math:`f(E) = E + W^{PV}E\,(E^\top W^{KQ}E)/N` on the
  embedding :math:`E = [[x_1 \cdots x_N\ x_q], [y_1 \cdots y_N\ 0]]`, the prediction its bottom-right entry,
  :math:`\hat y = r^\top S\,W^{KQ}q` with :math:`r` the last row of :math:`W^{PV}`, :math:`S = EE^\top/N`
  (``mask_query=True`` leaves the query column out of :math:`S`, as Ahn et al. do), :math:`q = (x_q, 0)`.
  Only :math:`r` reaches the prediction; the other rows of :math:`W^{PV}` keep their initial value.
  Loss :math:`\frac12\,\text{mean}(\hat y - y_q)^2`.
* ``"reduced"`` -- ZFB's coordinates :math:`(u, U_{11})` (Lemma 5.2; their flow keeps every other parameter at
  0 from their initialisation): :math:`\hat y = u\,h^\top U_{11}x_q = x_q^\top A h`,
  :math:`A = uU_{11}^\top`, :math:`h = \frac1N\sum_i y_ix_i`. On a population problem (no sampled prompts)
  the loss is the closed form :func:`solvable.theory.lsa.loss` (clean target), with gradient
  :math:`\nabla_A = \Lambda AC - \Lambda\Omega\Lambda`; on sampled prompts the query's label is noisy like
  the others, so the loss estimates that plus :math:`s^2/2`.
* ``"ahn"`` -- Ahn, Cheng, Daneshmand, Sra 2023: :math:`L` masked layers in the sparse form of their
  Lemma 1, :math:`P_l = [[0, 0], [0, 1]]`, :math:`Q_l = -[[A_l, 0], [0, 0]]`, so the label row evolves as
  :math:`z^{l+1}_j = z^l_j - x_j^\top A_l^\top\frac1n\sum_{i\le n}z^l_ix_i` and the prediction is
  :math:`-z^L_q`; loss :math:`\text{mean}(z^L_q + y_q)^2` without the 1/2 (theirs).

Gradients by hand. Full: :math:`\nabla_r = \sum_p \omega_pe_p\,S_pW^{KQ}q_p`,
:math:`\nabla_{W^{KQ}} = \sum_p\omega_pe_p\,(S_pr)q_p^\top`. Reduced: with
:math:`G = \sum_p\omega_pe_p\,x_{q,p}h_p^\top`, :math:`\nabla_u = \langle G, U_{11}^\top\rangle`,
:math:`\nabla_{U_{11}} = uG^\top`. Ahn: backpropagation through the label-row recursion,
:math:`\nabla_{A_l} = -\sum_p g_{l,p}v_{l,p}^\top` with :math:`g_l = \frac1n\sum_{i\le n}z^l_ix_i` and
:math:`v_l = \sum_j\delta^{l+1}_jx_j`. Per-prompt weights :math:`\omega` (rows summing to one; SGD's) replace
the mean.

Modules: :mod:`.problem`, :mod:`.dynamics` (parameters, hand-written gradient, predictions), :mod:`.training`
(:func:`simulate`, the sweep task), :mod:`.softmax` (softmax attention and the attention SVM).

Examples
--------
>>> problem = Problem.random(d=3, N=10)           # population: closed-form expectations
>>> traj = simulate(problem, alpha=0.1, t_max=200.0)
>>> traj.final["A"].shape
(1, 3, 3)
"""

from __future__ import annotations

from .dynamics import initial_state, loss_grad, observe, predict, predictor
from .problem import ARCHITECTURES, INITS, LINKS, MAX_ENTRIES, Problem, rotated_covariance, TASKS
from .training import label_symmetric, model, reduced_refusal, simulate, sweep_icl

__all__ = ["ARCHITECTURES", "initial_state", "INITS", "label_symmetric", "LINKS", "loss_grad", "model", "predict",
           "Problem", "reduced_refusal", "rotated_covariance", "simulate", "sweep_icl", "TASKS"]
