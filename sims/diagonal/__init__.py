r"""Diagonal linear networks, simulated.

Model (Woodworth et al. 2020, "Kernel and Rich Regimes in Overparametrized
Models", Sec. 4): predictor :math:`w = u \odot u - v \odot v`, initialised at
:math:`u(0) = v(0) = \alpha` (a scale per run, or per run and coordinate), and
the square loss

.. math:: L(u, v) = \frac{1}{2n}\|X w - y\|^2 .

Its gradient, written by hand, is
:math:`\nabla_u L = 2u \odot g`, :math:`\nabla_v L = -2v \odot g` with
:math:`g = X^\top (Xw - y)/n`; with sample weights :math:`\omega` (SGD) the
mean becomes :math:`\sum_j \omega_j (\cdot)_j`.

Modules: :mod:`.problem` (the frozen :class:`Problem`, the scale grid), :mod:`.dynamics` (state, loss,
hand-written gradient, observables), :mod:`.shaped` (Azulay et al.'s unbalanced layers), :mod:`.reduced` (the
n-dimensional mirror-flow coordinates), :mod:`.training` (the driver's model, :func:`simulate`, sweep tasks).

Examples
--------
>>> problem = Problem.random(n=20, d=40, sparsity=3, seed=0)
>>> traj = simulate(problem, alpha=[1e-3, 1.0], t_max=1e3)
>>> traj.final["w"].shape
(2, 40)
"""

from __future__ import annotations

from ..engine.driver import ALGORITHMS
from .dynamics import default_loss_tol, initial_state, loss_grad, observe, observe_w, predictor, split
from .problem import alpha_grid, MAX_ENTRIES, Problem
from .shaped import shaped_initial_state, shaped_loss_grad, shaped_predictor
from .training import model, simulate, simulate_rescaled, sweep_gd_phase, sweep_limit

__all__ = ["ALGORITHMS", "initial_state", "loss_grad", "model", "observe", "observe_w", "predictor", "Problem",
           "shaped_initial_state", "shaped_loss_grad", "shaped_predictor", "simulate", "simulate_rescaled",
           "split", "sweep_gd_phase", "sweep_limit"]
