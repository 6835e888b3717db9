"""The sources the matrix-sensing claims cite, the integrator tolerance and the convergence check they share."""

from __future__ import annotations

import numpy as np

__all__ = []

JIN = "Jin, Li, Lyu, Du & Lee 2023, Understanding Incremental Learning of Gradient Descent (matrix sensing)"
LI = "Li, Luo & Lyu 2021, Towards Resolving the Implicit Bias of Gradient Descent for Matrix Factorization"
XIONG = "Xiong, Ding & Du 2023, How Over-Parameterization Slows Down Gradient Descent in Matrix Sensing"
XU = "Xu, Shen, Ma & Chi 2023, The Power of Preconditioning in Overparameterized Low-Rank Matrix Sensing"
GUNASEKAR = "Gunasekar, Woodworth, Bhojanapalli, Neyshabur & Srebro 2017, Implicit Regularization in Matrix Factorization"
ARORA = "Arora, Cohen, Hu & Luo 2019, Implicit Regularization in Deep Matrix Factorization"
MA = "Ma & Fattahi 2023, Global Convergence of Sub-gradient Method for Robust Matrix Recovery"

RTOL = 1e-10
#: Rate constant c = 8 s of the mode equation at the library's loss scale s = 1/2.
C = 8 * 0.5


def _runs_converged(traj, name: str) -> dict[str, bool]:
    return {f"{name}: no run diverged": bool(np.all(traj.status != "diverged"))}
