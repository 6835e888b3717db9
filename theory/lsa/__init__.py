r"""Linear self-attention in-context learning, and attention as a max-margin SVM: what the papers predict.

Setting (Zhang, Frei, Bartlett 2024, "Trained Transformers Learn Linear Models In-Context", JMLR 25;
"ZFB"): a prompt holds :math:`N` examples :math:`x_i \sim N(0, \Lambda)`, labels
:math:`y_i = \langle w, x_i\rangle` (+ noise :math:`N(0, s^2)`), a task :math:`w` with second moment
:math:`\Omega = E[ww^\top]` (:math:`I` in ZFB; :math:`\Sigma^{-1}` for the preconditioned results of
Mahankali, Hashimoto, Ma 2024 and Ahn, Cheng, Daneshmand, Sra 2023, with :math:`\Lambda = \Sigma`), and a
query :math:`x_q`. Every one-layer LSA studied here predicts

.. math:: \hat y = x_q^\top A\,h, \qquad h = \frac1N\sum_{i=1}^N y_i x_i ,

with a :math:`d\times d` matrix :math:`A`: in ZFB's parameterisation :math:`A = u\,U_{11}^\top`
(:math:`u = W^{PV}_{22}`, :math:`U_{11} = W^{KQ}_{11}`); in Ahn et al.'s (query masked, prediction the
*negative* bottom-right entry) :math:`A = -P_{22}Q_{11}`. Conventions: the loss here is ZFB's
:math:`L = \frac12 E(\hat y - \langle w, x_q\rangle)^2` (clean target); Ahn et al. write
:math:`E(\cdot)^2` without the 1/2 (twice ours, so their gradient flow runs twice as fast);
:func:`test_risk` is the mean squared error :math:`E(\hat y - \langle w, x_q\rangle)^2`, without the 1/2.

The one fact behind every closed form (Isserlis' theorem, proved in :mod:`theory.lsa.symbolic`): with
:math:`\hat\Lambda = \frac1N\sum_i x_ix_i^\top`,

.. math:: E[\hat\Lambda\,\Omega\,\hat\Lambda] = (1 + \tfrac1N)\Lambda\Omega\Lambda + \tfrac1N\operatorname{tr}(\Omega\Lambda)\Lambda,

so the population loss is the quadratic (derived here; ZFB Lemma 5.1 for :math:`\Omega = I, s = 0`)

.. math:: L(A) = \tfrac12\big[\operatorname{tr}(A^\top\Lambda A C) - 2\operatorname{tr}(\Lambda A\Lambda\Omega)
          + \operatorname{tr}(\Lambda\Omega)\big],\quad C = E[\hat\Lambda\Omega\hat\Lambda] + \tfrac{s^2}{N}\Lambda ,

minimised at :math:`A^* = \Omega\Lambda C^{-1}`; for :math:`\Omega = I` this is :math:`\Gamma^{-1}` with
ZFB's :math:`\Gamma = (1 + \frac1N)\Lambda + \frac{\operatorname{tr}\Lambda + s^2}{N} I` (their Thm 4.1, at
:math:`s = 0`).

The softmax part (Tarzanagh, Li, Thrampoulidis, Oymak 2023, "Transformers as Support Vector Machines";
Tarzanagh, Li, Zhang, Oymak 2023, "Max-Margin Token Selection in Attention Mechanism"): :func:`att_svm`.
"""

from __future__ import annotations

from .closed_forms import (
    ahn_from_zfb, att_svm, flow_limit, gamma, gd_construction, loss, min_loss, minimiser, one_step_coefficient,
    optimal_tokens, preconditioned_gd, preconditioned_step, random_covariance_coefficient, second_moment,
    support_tokens, test_risk, token_scores, zfb_from_ahn,
)

__all__ = ["ahn_from_zfb", "att_svm", "flow_limit", "gamma", "gd_construction", "loss", "min_loss", "minimiser",
           "one_step_coefficient", "optimal_tokens", "preconditioned_gd", "preconditioned_step",
           "random_covariance_coefficient", "second_moment", "support_tokens", "test_risk", "token_scores",
           "zfb_from_ahn"]
