r"""A sum of per-sample quadratics, simulated: the exact linearisation of any model at a minimum.

.. math:: L(\theta) = \frac1n\sum_{i=1}^n \ell_i(\theta), \qquad
          \ell_i(\theta) = \tfrac12\,\theta^\top H_i\,\theta,

with positive semi-definite :math:`H_i` (a minimum at :math:`\theta = 0`; at an interpolating minimum of the
square loss, :math:`H_i = g_ig_i^\top`). Mini-batch SGD on it is the linear random map
:math:`\theta \mapsto (I - \eta H_S)\theta` whose second moment :mod:`theory.linear_stability` predicts:
the test bed of the mean-square stability claims, and of Dexter et al. 2024's synthetic experiments
(:meth:`Problem.coherent`). The gradient written by hand: :math:`\sum_i \omega_i H_i\theta` with per-sample
weights :math:`\omega` (``1/n`` each for the full loss).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine._validate import choice, positive_int, real_array, scale_array
from .engine.backend import DTYPES, asarray, check_seed, init_rng, namespace, xp_of
from .engine.driver import Model, broadcast_runs, resolve_coordinates, train
from .engine.trajectory import Trajectory

__all__ = ["Problem", "initial_state", "model", "simulate"]


@dataclass(frozen=True, eq=False)
class Problem:
    """Per-sample Hessians :math:`H_i`, an ``(n, d, d)`` stack of symmetric positive semi-definite matrices."""

    hessians: np.ndarray

    def __post_init__(self) -> None:
        h = real_array("hessians", self.hessians, 3)
        if h.shape[1] != h.shape[2] or h.shape[0] < 1 or h.size > 10**7:
            raise ValueError(f"hessians must be an (n, d, d) stack with at most 1e7 entries; got shape {h.shape}")
        scale = max(1.0, float(np.abs(h).max()))
        if not np.allclose(h, np.swapaxes(h, 1, 2), rtol=0, atol=1e-12 * scale):
            raise ValueError("hessians must be symmetric")
        h = (h + np.swapaxes(h, 1, 2)) / 2
        if np.linalg.eigvalsh(h).min() < -1e-12 * scale:
            raise ValueError("hessians must be positive semi-definite (each sample's loss has a minimum at 0)")
        object.__setattr__(self, "hessians", h)

    @property
    def n(self) -> int:
        return self.hessians.shape[0]

    @property
    def d(self) -> int:
        return self.hessians.shape[1]

    @property
    def mean_hessian(self) -> np.ndarray:
        return self.hessians.mean(axis=0)

    def digest(self) -> str:
        return hashlib.sha256(self.hessians.tobytes()).hexdigest()[:16]

    @classmethod
    def coherent(cls, n: int, group: int, sharpness: float = 2.0) -> "Problem":
        r"""Rank-one Hessians of equal mean sharpness and tunable coherence: the first ``group`` samples share
        the direction :math:`e_0`, each of the other :math:`n - \text{group}` has its own
        (:math:`d = n - \text{group} + 1`), :math:`H_i = (n\,\text{sharpness}/\text{group})\,e_{k(i)}e_{k(i)}^\top`,
        so that :math:`\lambda_{\max}(H) = \text{sharpness}` whatever ``group``. ``group = n``: every sample the
        same (GD and SGD alike); ``group = 1``: none aligned. The synthetic family of the code accompanying
        Chang & Khanna 2025, the follow-up of Dexter et al. 2024 (public repository
        changwk1001/Stability_Analysis_and_Simplicity-Bias)."""
        n = positive_int("n", n, 1, 2000)
        group = positive_int("group", group, 1, n)
        d = n - group + 1
        h = np.zeros((n, d, d))
        for i in range(n):
            k = 0 if i < group else i - group + 1
            h[i, k, k] = n * float(sharpness) / group
        return cls(h)

    @classmethod
    def from_gradients(cls, grads: Any) -> "Problem":
        """Gauss-Newton Hessians :math:`H_i = g_ig_i^\\top` from the per-sample output gradients ``(n, d)``:
        exact at an interpolating minimum of :math:`\\tfrac12 (f_i - y_i)^2`."""
        g = real_array("grads", grads, 2)
        return cls(np.einsum("ni,nj->nij", g, g))


def initial_state(problem: Problem, alpha: Any, *, seed: int = 0) -> np.ndarray:
    """``(B, d)`` starts: one random unit direction (drawn on the host from ``seed``) at each scale ``alpha``."""
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    u = init_rng(seed).standard_normal(problem.d)
    return a[:, None] * (u / np.linalg.norm(u))[None, :]


def model(problem: Problem, alpha: Any = 1.0, *, theta0: Any = None, seed: int = 0, backend: str = "numpy",
          dtype: str = "float64", device: Any = None) -> Model:
    """The quadratic on ``problem`` as the driver's Model, from ``theta0`` (``(B, d)``, one run per row) or from
    :func:`initial_state` at scales ``alpha``."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.quadratic.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    t0 = initial_state(problem, alpha, seed=check_seed(seed)) if theta0 is None else real_array("theta0", theta0, 2)
    if t0.shape[1] != problem.d:
        raise ValueError(f"theta0 must have shape (B, d = {problem.d}); got {t0.shape}")
    xp = namespace(backend)
    h = asarray(problem.hessians, xp, dtype, device)
    n = problem.n

    def loss_grad(state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple[Any, ...]]:
        theta = state[0]
        xpl = xp_of(theta)
        hv = xpl.matmul(h[None, ...], theta[:, None, :, None])[..., 0]  # (B, n, d): H_i theta
        per = xpl.sum(hv * theta[:, None, :], axis=2)  # (B, n): theta^T H_i theta
        w = xpl.ones_like(per) / n if weights is None else weights
        loss = xpl.sum(w * per, axis=1) / 2
        grad = xpl.sum(w[:, :, None] * hv, axis=1)
        return loss, (grad,)

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        theta = state[0]
        loss, _ = loss_grad(state)
        return {"loss": loss, "norm_sq": xp.sum(theta * theta, axis=1)}

    return Model(
        name="quadratic", state0=(asarray(t0, xp, dtype, device),), loss_grad=loss_grad, observe=observe,
        final=lambda host: {"theta": host[0]}, meta={"problem": {"digest": problem.digest(), "n": n, "d": problem.d}},
        backend=backend, dtype=dtype, n_samples=n, t_max=100.0,
    )


def simulate(problem: Problem, alpha: Any = 1.0, algorithm: Any = "flow", *, lr: Any = None, steps: int | None = None,
             t_max: float | None = None, theta0: Any = None, coordinates: str | None = None, seed: int = 0,
             backend: str = "numpy", dtype: str = "float64", device: Any = None, **options: Any) -> Trajectory:
    """Train from ``theta0`` (``(B, d)``; or a random unit direction at scales ``alpha``, one run each) by
    gradient flow (the default), GD, SGD (``batch_size`` samples without replacement per step and run, from a
    host schedule seeded by ``seed``) or any driver rule (:mod:`sims.engine.driver`). Observables ``loss`` and
    ``norm_sq`` (:math:`\\|\\theta\\|^2`); ``final`` has ``theta``."""
    resolve_coordinates(coordinates, algorithm, stiff=False, refusal="a quadratic has no reduction to make")
    if theta0 is None:
        alpha = broadcast_runs(np.atleast_1d(scale_array("alpha", alpha, (0, 1)))[:, None], lr)[:, 0]
    m = model(problem, alpha, theta0=theta0, seed=seed, backend=backend, dtype=dtype, device=device)
    return train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)
