"""The sources the UFM claims cite, the integrator tolerance, and the class-size and run helpers they share."""

from __future__ import annotations

import numpy as np

from solvable.sims import ufm as sim

from ..framework.registry import Context

__all__ = []

ZHU = "Zhu et al. 2021, A Geometric Analysis of Neural Collapse with Unconstrained Features"
DANG = "Dang et al. 2023, Neural Collapse in Deep Linear Networks: From Balanced to Imbalanced Data"
FANG = "Fang et al. 2021, Exploring Deep Neural Networks via Layer-Peeled Model: Minority Collapse"

RTOL = 1e-10


def _class_means(H: np.ndarray, n: tuple[int, ...]) -> np.ndarray:
    bounds = np.concatenate([[0], np.cumsum(n)])
    return np.stack([H[:, bounds[k] : bounds[k + 1]].mean(axis=1) for k in range(len(n))], axis=1)


def _class_sizes(K: int, n1: int, ratio: float) -> tuple[int, ...]:
    """n_k = round(n1 ratio^(-k/(K-1))), at least 1."""
    return tuple(max(1, int(round(n1 * ratio ** (-k / (K - 1))))) for k in range(K))


def _point_sizes(ctx: Context, *, n1: int, ratio: float) -> tuple[int, ...]:
    """The class sizes of a point of a space over (K, n1, ratio) (:func:`_class_sizes`)."""
    return _class_sizes(int(ctx.param("K", 3)), int(ctx.param("n1", n1)), float(ctx.param("ratio", ratio)))


def _run(problem: sim.Problem, ctx: Context, alpha: float = 0.1, t_max: float = 2e4, grad_tol: float = 1e-10, **kw):
    return sim.simulate(problem, alpha=[alpha], t_max=t_max, rtol=RTOL, grad_tol=grad_tol, seed=ctx.seed,
                        backend=ctx.backend, dtype=ctx.dtype, device=ctx.device, **kw)
