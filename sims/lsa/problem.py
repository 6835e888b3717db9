"""The in-context regression problem of linear self-attention: a frozen, validated dataclass (prompts, task covariance, link) and its option lists."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine._validate import choice, nonneg_float, positive_int, real_array, shown
from ..engine.backend import check_seed

__all__ = ["Problem", "rotated_covariance"]

ARCHITECTURES = ("reduced", "full", "ahn")
TASKS = ("isotropic", "inverse")
LINKS = ("linear", "tanh")
INITS = ("zfb", "random")
#: Largest sampled data set Problem.random builds, in numbers (prompts x tokens x dimension).
MAX_ENTRIES = 2 * 10**8


def rotated_covariance(spectrum: Any, seed: int = 0) -> np.ndarray:
    r""":math:`Q\operatorname{diag}(\text{spectrum})Q^\top` with a Haar-random rotation :math:`Q` drawn from ``seed``
    (a non-isotropic covariance whose eigenvectors are not the axes)."""
    lam = real_array("spectrum", spectrum, 1)
    if np.any(lam <= 0):
        raise ValueError("spectrum must be > 0 (a covariance's eigenvalues)")
    rng = np.random.default_rng(check_seed(seed) + 1000)
    Q = np.linalg.qr(rng.standard_normal((lam.size, lam.size)))[0]
    return (Q * lam) @ Q.T


def _link(name: str, t: np.ndarray) -> np.ndarray:
    return t if name == "linear" else np.tanh(t)


@dataclass(frozen=True, eq=False)
class Problem:
    r"""An in-context regression problem: the prompt distribution, and (optionally) sampled prompts.

    Attributes
    ----------
    Lambda : ndarray (d, d)
        Covariance of the covariates (for random-covariance prompts, the mean :math:`E\Lambda`).
    N : int
        Examples per prompt.
    noise : float
        Label noise standard deviation :math:`s`.
    task : {"isotropic", "inverse"}
        :math:`w \sim N(0, I)` or :math:`N(0, \Lambda^{-1})`.
    link : {"linear", "tanh"}
        :math:`y = g(\langle w, x\rangle) + \varepsilon`.
    X : ndarray (P, N + 1, d) or None
        Sampled prompts, the query last; ``None``: the population (closed-form expectations).
    y : ndarray (P, N + 1) or None
        Their labels, the query's last.
    lambdas : ndarray (P, d) or None
        Each prompt's own covariance diagonal, when they are random (provenance).
    """

    Lambda: np.ndarray
    N: int
    noise: float = 0.0
    task: str = "isotropic"
    link: str = "linear"
    X: np.ndarray | None = None
    y: np.ndarray | None = None
    lambdas: np.ndarray | None = None

    def __post_init__(self) -> None:
        L = real_array("Lambda", self.Lambda, 2)
        if L.shape[0] != L.shape[1] or not np.allclose(L, L.T, atol=1e-12 * max(1.0, np.abs(L).max())):
            raise ValueError(f"Lambda must be a symmetric (d, d) matrix; got shape {L.shape}")
        if np.linalg.eigvalsh(L)[0] <= 0:
            raise ValueError("Lambda must be positive definite")
        object.__setattr__(self, "Lambda", (L + L.T) / 2)
        object.__setattr__(self, "N", positive_int("N", self.N, 1, 10**6))
        object.__setattr__(self, "noise", nonneg_float("noise", self.noise))
        choice("task", self.task, TASKS)
        choice("link", self.link, LINKS)
        d = L.shape[0]
        if self.X is None:
            if self.y is not None or self.lambdas is not None:
                raise ValueError("y and lambdas come with sampled prompts X; a population problem has neither")
            if self.link != "linear":
                raise ValueError("a population problem (X=None) has closed-form expectations for link='linear' "
                                 "only; sample prompts for a nonlinear link")
            return
        X = real_array("X", self.X, 3)
        if X.shape[1:] != (self.N + 1, d):
            raise ValueError(f"X must be (P, N + 1 = {self.N + 1}, d = {d}), the query last; got {X.shape}")
        y = real_array("y", self.y, 2)
        if y.shape != X.shape[:2]:
            raise ValueError(f"y must be (P, N + 1) = {X.shape[:2]}; got {y.shape}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        if self.lambdas is not None:
            lam = real_array("lambdas", self.lambdas, 2)
            if lam.shape != (X.shape[0], d) or np.any(lam <= 0):
                raise ValueError(f"lambdas must be (P, d) = {(X.shape[0], d)} and > 0")
            object.__setattr__(self, "lambdas", lam)

    @property
    def d(self) -> int:
        return int(self.Lambda.shape[0])

    @property
    def n_prompts(self) -> int | None:
        """Number of sampled prompts (``None``: the population)."""
        return None if self.X is None else int(self.X.shape[0])

    @property
    def task_cov(self) -> np.ndarray:
        r""":math:`\Omega = E[ww^\top]`."""
        return np.eye(self.d) if self.task == "isotropic" else np.linalg.inv(self.Lambda)

    def digest(self) -> str:
        """A short stable hash of the data, for provenance in results."""
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        h = hashlib.sha256(f"{self.N}|{self.noise}|{self.task}|{self.link}".encode())
        for a in (self.Lambda, self.X, self.y, self.lambdas):
            if a is not None:
                h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]

    @classmethod
    def random(cls, d: int, N: int, n_prompts: int | None = None, Lambda: Any = None, noise: float = 0.0,
               task: str = "isotropic", link: str = "linear", random_covariance: Any = None,
               seed: int = 0) -> "Problem":
        r"""A prompt distribution, and ``n_prompts`` prompts drawn from it (``None``: the population).

        ``Lambda``: ``None`` (the identity), a diagonal (d,) or a (d, d) covariance. ``random_covariance``:
        ``(low, high)`` -- every prompt draws :math:`\lambda_j \sim U(\text{low}, \text{high})` i.i.d. and its
        covariates from :math:`N(0, \operatorname{diag}\lambda)` (``Lambda`` is then the mean covariance, and
        must be left ``None``). Draws, from ``numpy.random.default_rng(seed)``: the tasks, the covariates, the
        noise.
        """
        d = positive_int("d", d, 1, 10**4)
        N = positive_int("N", N, 1, 10**6)
        task = choice("task", task, TASKS)
        link = choice("link", link, LINKS)
        noise = nonneg_float("noise", noise)
        if Lambda is None:
            L = np.eye(d)
        else:
            L = real_array("Lambda", Lambda, (1, 2))
            L = np.diag(L) if L.ndim == 1 else L
            if L.shape != (d, d):
                raise ValueError(f"Lambda must be (d,) or (d, d) with d = {d}; got {L.shape}")
        bounds = None
        if random_covariance is not None:
            if Lambda is not None or task != "isotropic":
                raise ValueError("random_covariance draws each prompt's Lambda: leave Lambda None and task "
                                 "'isotropic'")
            bounds = real_array("random_covariance", random_covariance, 1)
            if bounds.shape != (2,) or not 0 < bounds[0] <= bounds[1]:
                raise ValueError(f"random_covariance must be (low, high) with 0 < low <= high; got "
                                 f"{shown(random_covariance)}")
            L = np.eye(d) * bounds.mean()
        if n_prompts is None:
            if bounds is not None:
                raise ValueError("random_covariance needs sampled prompts (n_prompts)")
            return cls(Lambda=L, N=N, noise=noise, task=task, link=link)
        P = positive_int("n_prompts", n_prompts, 1)
        if P * (N + 1) * d > MAX_ENTRIES:
            raise ValueError(f"n_prompts * (N + 1) * d must be at most {MAX_ENTRIES:.0e}; got {P * (N + 1) * d}")
        rng = np.random.default_rng(check_seed(seed))
        evals, evecs = np.linalg.eigh((L + L.T) / 2)
        if evals[0] <= 0:
            raise ValueError("Lambda must be positive definite")
        root = evecs * np.sqrt(evals)
        w = rng.standard_normal((P, d))
        if task == "inverse":
            w = w @ (evecs / np.sqrt(evals)).T
        xi = rng.standard_normal((P, N + 1, d))
        lambdas = None
        if bounds is not None:
            lambdas = rng.uniform(bounds[0], bounds[1], (P, d))
            X = xi * np.sqrt(lambdas)[:, None, :]
        else:
            X = xi @ root.T
        y = _link(link, np.einsum("pnd,pd->pn", X, w)) + noise * rng.standard_normal((P, N + 1))
        return cls(Lambda=L, N=N, noise=noise, task=task, link=link, X=X, y=y, lambdas=lambdas)
