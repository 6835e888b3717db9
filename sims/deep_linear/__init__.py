r"""Deep linear and scalar networks, simulated; plus the linear teacher-student and model-collapse models.

Deep linear network (Saxe, McClelland & Ganguli 2014; Arora, Cohen & Hazan
2018): :math:`W = W_N \cdots W_1` on whitened inputs,

.. math:: L = \tfrac12 \|W_N \cdots W_1 - \Phi\|_F^2 .

With :math:`R = W - \Phi`, :math:`A_j = W_N\cdots W_{j+1}` and
:math:`B_j = W_{j-1}\cdots W_1`, the gradient written by hand is
:math:`\nabla_{W_j} L = A_j^\top R B_j^\top`, and its directional derivative
(the Hessian-vector product, exact, by forward-mode recurrences of the same
products) is in :func:`hvp`. A *scalar network* :math:`f = w_1\cdots w_D` is the
case of one-by-one layers (:meth:`Problem.scalar`).

On data :math:`X \in \mathbb{R}^{n\times d_{in}}`, :math:`Y \in \mathbb{R}^{n\times d_{out}}`
(:meth:`Problem.from_data`) the loss is the mean squared error
:math:`L = \frac{1}{2n}\sum_i\|W x_i - y_i\|^2` (with per-sample weights
:math:`\omega_i` for SGD: :math:`\tfrac12\sum_i\omega_i\|W x_i - y_i\|^2`), whose
end-to-end gradient is :math:`R = \sum_i\omega_i(Wx_i - y_i)x_i^\top`, which at
uniform weights is :math:`W\Sigma_{xx} - \Phi` with :math:`\Sigma_{xx} = X^\top X/n`
and :math:`\Phi = Y^\top X/n` (Saxe et al.'s :math:`\Sigma^{31}`): for whitened
inputs (:math:`\Sigma_{xx} = I`) the target loss above, up to a constant.

Every run of a batch has its own layers: the state is a tuple of ``N`` arrays
of shapes ``(B, h_j, h_{j-1})``.

Modules: :mod:`.problem`, :mod:`.dynamics` (initial layers, hand-written gradient), :mod:`.hessian`
(Hessian-vector products, sharpness), :mod:`.reduced` (end-to-end and scalar coordinates), :mod:`.training`
(:func:`simulate`, the sweep task), :mod:`.bw` (the generative network of the Bures-Wasserstein loss).
"""

from __future__ import annotations

from ..engine.driver import ALGORITHMS
from ..regression import (
    model_collapse, simulate_teacher_student, teacher_student_data, teacher_student_spectrum, wishart_spectrum,
)
from ..engine.matmul import product
from .dynamics import initial_state, loss_grad
from .hessian import hessian_dense, hvp, sharpness
from .problem import INITS, Problem
from .training import model, simulate, sweep_limit

__all__ = ["ALGORITHMS", "hessian_dense", "hvp", "initial_state", "loss_grad", "model", "model_collapse", "Problem",
           "product", "sharpness", "simulate", "simulate_teacher_student", "sweep_limit",
           "teacher_student_data", "teacher_student_spectrum", "wishart_spectrum"]
