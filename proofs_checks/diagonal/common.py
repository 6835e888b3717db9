"""What the diagonal-network claims share: sources, the size space of a regression problem, the discrete-algorithm
setting and its flow reference, the travel bound and the relative error.
"""

from __future__ import annotations

import numpy as np

from solvable.sims import diagonal as sim

from ..framework.registry import Context, measurement
from ..framework.space import Param, Space

__all__ = []

WOODWORTH = "Woodworth et al. 2020, Kernel and Rich Regimes in Overparametrized Models"
#: Integrator tolerance of the shared alpha sweep: at alpha = 10 the limit sits ~1e-7 from min-l2,
#: and w = u^2 - v^2 carries an absolute error ~ 2 rtol alpha^2 from the integration of u and v.
RTOL = 1e-12


#: The problems Woodworth et al.'s theorems cover, for the claims that read the alpha sweep: an
#: over-parameterised Gaussian design (d >= 2n; in general position with probability one) and a
#: k-sparse teacher with k < n, so that the min-l1 interpolator is the teacher.
_SIZES = (Param("n", 5, 60, integer=True, doc="samples"),
          Param("d", 10, 200, integer=True, doc="dimension"),
          Param("k", 1, 5, integer=True, doc="non-zeros of the teacher"))
_SIZE_CONSTRAINTS = (("d >= 2n (over-parameterised, so the flow interpolates, with lambda_min(X X^T) ~ (sqrt d - "
                      "sqrt n)^2 away from 0, so that it converges within the sweep's t_max = 3e5; the search found "
                      "n = 46, d = 53 unconverged at alpha = 0.01)", lambda p: 2 * p["n"] <= p["d"]),
                     ("k < n (the sparse teacher is identifiable)", lambda p: p["k"] < p["n"]))
SWEEP_SPACE = Space(_SIZES, constraints=_SIZE_CONSTRAINTS, key="n")


def _travel(X: np.ndarray, y: np.ndarray, u: np.ndarray, v: np.ndarray) -> float:
    r"""Distance a stopped run still had to travel, to first order: :math:`\|r\|\sqrt{\max D/\lambda_{\min}(XDX^\top)}`.

    The remaining motion of the flow is :math:`\Delta w = D X^\top\mu` with
    :math:`X\Delta w = -r` and :math:`D = u^2 + v^2` (the metric of the
    mirror flow), whose norm is at most the bound above.
    """
    D = u**2 + v**2
    r = X @ (u**2 - v**2) - y
    lam_min = max(np.linalg.eigvalsh((X * D) @ X.T)[0], np.finfo(float).tiny)
    return float(np.linalg.norm(r) * np.sqrt(D.max() / lam_min))


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


EVEN = "Even, Pesme, Gunasekar & Flammarion 2023, (S)GD over Diagonal Linear Networks"
PESME_SGD = "Pesme, Pillaud-Vivien & Flammarion 2021, Implicit Bias of SGD for Diagonal Linear Networks"


def _discrete_problem(ctx: Context) -> sim.Problem:
    sizes = (30, 60, 3) if ctx.quick else (50, 120, 5)
    return sim.Problem.random(int(ctx.param("n", sizes[0])), int(ctx.param("d", sizes[1])), sizes[2], seed=ctx.seed)


def _xy(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    problem = _discrete_problem(ctx)
    return problem.X, problem.y


def _discrete_alpha(ctx: Context) -> float:
    return float(ctx.param("alpha", 0.1))


#: The discrete-step claims' problems: over-parameterised (d >= 2n, as for the flow sweep), a
#: 3-sparse teacher, and the initial scale of the flow they are compared with.
_DISCRETE = (Param("alpha", 0.02, 0.5, log=True, doc="initial scale u = v = alpha"),
             Param("n", 10, 40, integer=True, doc="samples"), Param("d", 20, 120, integer=True, doc="dimension"))
_DISCRETE_CONSTRAINTS = (("d >= 2n (over-parameterised)", lambda p: 2 * p["n"] <= p["d"]),)


@measurement
def _flow_reference(ctx: Context):
    """The gradient-flow limit at alpha = 0.1 on the discrete-step problem (shared by three claims)."""
    return sim.simulate(_discrete_problem(ctx), _discrete_alpha(ctx), t_max=3e5, backend=ctx.backend, dtype=ctx.dtype, device=ctx.device)


def _travel_w(X: np.ndarray, y: np.ndarray, w: np.ndarray, K: float) -> float:
    """:func:`_travel` at the predictor ``w`` of a run with metric ``D = sqrt(w^2 + K^2)`` (``K = u0^2 + v0^2``)."""
    D = np.sqrt(w**2 + K**2)
    r = X @ w - y
    lam_min = max(np.linalg.eigvalsh((X * D) @ X.T)[0], np.finfo(float).tiny)
    return float(np.linalg.norm(r) * np.sqrt(D.max() / lam_min))
