"""Claims about linear self-attention in-context learning, and attention as a max-margin SVM.

Conventions: ZFB's loss ``1/2 E(y_hat - <w, x_q>)^2`` and ``y_hat = x_q^T A h`` (:mod:`solvable.theory.lsa`);
``test_risk`` is the mean squared error without the 1/2. Claims on sampled prompts compare with the
population prediction through a statistical budget: the sampling spread of the fitted predictor, from the
sandwich covariance of the least-squares fit at the predicted optimum (:func:`.common._excess_budget`).

Importing the package registers every claim of the family, in this order:

* :mod:`.minimiser` -- gradient flow reaches the global minimiser (Zhang, Frei & Bartlett 2024);
* :mod:`.one_step` -- the trained predictor is one step of preconditioned GD (Mahankali et al. 2024);
* :mod:`.risk` -- the risk against the prompt length, under covariate shift, with a random task covariance;
* :mod:`.noise` -- the optimal step with label noise;
* :mod:`.multilayer` -- multi-layer attention implements preconditioned GD (Ahn et al. 2023);
* :mod:`.svm` -- softmax attention converges in direction to the attention SVM (Tarzanagh et al. 2023);
* :mod:`.symbolic`, :mod:`.reduced` -- the identities in sympy; the reduced coordinates against the full ones.

:mod:`.common` holds the sources, tolerances, the budget and the population flows several claims read.
"""

# registration order is the order of `solvable list` and of the report
from . import minimiser, one_step, risk, noise, multilayer, svm, symbolic, reduced  # noqa: F401, I001
