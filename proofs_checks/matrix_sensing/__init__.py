"""Claims about matrix sensing with factorised models (incremental learning, over-parameterisation,
preconditioning, implicit low-rank bias, robust recovery).

Conventions: the l2 loss is ``s ||A(M) - y||^2`` with the library's ``s = 1/2`` unless a claim says it uses a
paper's ``s = 1/4``; operators are near-isometric (:mod:`solvable.sims.matrix_sensing.operator`).

Importing the package registers every claim of the family, in this order:

* :mod:`.incremental` -- incremental learning (Jin et al. 2023) and the greedy low-rank path (Li, Luo & Lyu 2021);
* :mod:`.overparam` -- over-parameterisation slows GD (Xiong, Ding & Du 2023);
* :mod:`.scaledgd` -- ScaledGD(lambda) over the condition number (Xu et al. 2023);
* :mod:`.implicit_bias` -- the nuclear-norm bias (Gunasekar et al. 2017) and depth (Arora et al. 2019);
* :mod:`.robust` -- robust recovery by the sub-gradient method (Ma & Fattahi 2023);
* :mod:`.symbolic`, :mod:`.reduced` -- the gradients in sympy; the reduced coordinates against the full ones.

:mod:`.common` holds the sources and the checks they share.
"""

# registration order is the order of `solvable list` and of the report
from . import incremental, overparam, scaledgd, implicit_bias, robust, symbolic, reduced  # noqa: F401, I001
