r"""Linear self-attention trained on in-context linear regression, simulated.

A prompt holds :math:`N` examples :math:`x_i \sim N(0, \Lambda)` (or, per prompt, its own random
:math:`\Lambda = \operatorname{diag}(\lambda)`), labels :math:`y_i = g(\langle w, x_i\rangle) + \varepsilon_i`
(link :math:`g` = identity or tanh, noise :math:`N(0, s^2)`), a task :math:`w \sim N(0, I)` (``task="isotropic"``)
or :math:`N(0, \Lambda^{-1})` (``"inverse"``), and a query :math:`x_q` with its label :math:`y_q`. Three
architectures, each with its paper's conventions:

* ``"full"`` -- Zhang, Frei, Bartlett 2024 (ZFB): :math:`f(E) = E + W^{PV}E\,(E^\top W^{KQ}E)/N` on the
  embedding :math:`E = [[x_1 \cdots x_N\ x_q], [y_1 \cdots y_N\ 0]]`, the prediction its bottom-right entry,
  :math:`\hat y = r^\top S\,W^{KQ}q` with :math:`r` the last row of :math:`W^{PV}`, :math:`S = EE^\top/N`
  (``mask_query=True`` leaves the query column out of :math:`S`, as Ahn et al. do), :math:`q = (x_q, 0)`.
  Only :math:`r` reaches the prediction; the other rows of :math:`W^{PV}` keep their initial value.
  Loss :math:`\frac12\,\text{mean}(\hat y - y_q)^2`.
* ``"reduced"`` -- ZFB's coordinates :math:`(u, U_{11})` (Lemma 5.2; their flow keeps every other parameter at
  0 from their initialisation): :math:`\hat y = u\,h^\top U_{11}x_q = x_q^\top A h`,
  :math:`A = uU_{11}^\top`, :math:`h = \frac1N\sum_i y_ix_i`. On a population problem (no sampled prompts)
  the loss is the closed form :func:`solvable.theory.lsa.loss` (clean target), with gradient
  :math:`\nabla_A = \Lambda AC - \Lambda\Omega\Lambda`; on sampled prompts the query's label is noisy like
  the others, so the loss estimates that plus :math:`s^2/2`.
* ``"ahn"`` -- Ahn, Cheng, Daneshmand, Sra 2023: :math:`L` masked layers in the sparse form of their
  Lemma 1, :math:`P_l = [[0, 0], [0, 1]]`, :math:`Q_l = -[[A_l, 0], [0, 0]]`, so the label row evolves as
  :math:`z^{l+1}_j = z^l_j - x_j^\top A_l^\top\frac1n\sum_{i\le n}z^l_ix_i` and the prediction is
  :math:`-z^L_q`; loss :math:`\text{mean}(z^L_q + y_q)^2` without the 1/2 (theirs).

Gradients by hand. Full: :math:`\nabla_r = \sum_p \omega_pe_p\,S_pW^{KQ}q_p`,
:math:`\nabla_{W^{KQ}} = \sum_p\omega_pe_p\,(S_pr)q_p^\top`. Reduced: with
:math:`G = \sum_p\omega_pe_p\,x_{q,p}h_p^\top`, :math:`\nabla_u = \langle G, U_{11}^\top\rangle`,
:math:`\nabla_{U_{11}} = uG^\top`. Ahn: backpropagation through the label-row recursion,
:math:`\nabla_{A_l} = -\sum_p g_{l,p}v_{l,p}^\top` with :math:`g_l = \frac1n\sum_{i\le n}z^l_ix_i` and
:math:`v_l = \sum_j\delta^{l+1}_jx_j`. Per-prompt weights :math:`\omega` (rows summing to one; SGD's) replace
the mean.

Examples
--------
>>> problem = Problem.random(d=3, N=10)           # population: closed-form expectations
>>> traj = simulate(problem, alpha=0.1, t_max=200.0)
>>> traj.final["A"].shape
(1, 3, 3)
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine._validate import choice, nonneg_float, positive_int, real_array, scale_array, shown
from .engine.backend import device_of as _device, DTYPES, asarray, check_seed, init_rng, namespace, xp_of
from .engine.matmul import transpose
from .engine.driver import Model, broadcast_runs, resolve_coordinates, train
from .engine.trajectory import Trajectory

__all__ = ["ARCHITECTURES", "INITS", "LINKS", "TASKS", "Problem", "initial_state", "label_symmetric", "loss_grad",
           "model", "predict", "reduced_refusal", "rotated_covariance", "simulate", "sweep_icl"]

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


def _theta(rng: np.random.Generator, d: int) -> np.ndarray:
    """ZFB's :math:`\\Theta\\Theta^\\top` with :math:`\\|\\Theta\\Theta^\\top\\|_F = 1` (Assumption 3.3)."""
    th = rng.standard_normal((d, d))
    tt = th @ th.T
    return tt / np.linalg.norm(tt)


def initial_state(problem: Problem, alpha: Any, *, architecture: str = "reduced", layers: int = 1,
                  init: str = "zfb", seed: int = 0, backend: str = "numpy", dtype: str = "float64",
                  device: Any = None) -> tuple[Any, ...]:
    r"""The parameters at scale ``alpha`` (one run per value), drawn on the host from ``seed``'s init stream.

    ``"zfb"`` (ZFB Assumption 3.3, :math:`\sigma` = ``alpha``): :math:`W^{PV} = \sigma[[0, 0], [0, 1]]`,
    :math:`W^{KQ} = \sigma[[\Theta\Theta^\top, 0], [0, 0]]` with :math:`\Theta` Gaussian and
    :math:`\|\Theta\Theta^\top\|_F = 1`, i.e. :math:`u = \sigma`, :math:`U_{11} = \sigma\Theta\Theta^\top`;
    ``ahn``: :math:`A_l = \sigma\Theta_l\Theta_l^\top` per layer. ``"random"``: every parameter i.i.d.
    :math:`N(0, \alpha^2/(d + 1))`. The runs of a batch share the draw and differ by their scale.
    """
    architecture = choice("architecture", architecture, ARCHITECTURES)
    init = choice("init", init, INITS)
    xp = namespace(backend)
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    d = problem.d
    D = d + 1
    rng = init_rng(seed)
    if architecture == "ahn":
        if init == "zfb":
            units = [np.stack([_theta(rng, d) for _ in range(layers)])]
        else:
            units = [rng.standard_normal((layers, d, d)) / math.sqrt(D)]
    elif architecture == "reduced":
        units = [np.ones(1), _theta(rng, d)] if init == "zfb" else \
            [rng.standard_normal(1) / math.sqrt(D), rng.standard_normal((d, d)) / math.sqrt(D)]
    elif init == "zfb":
        r = np.zeros(D)
        r[d] = 1.0
        K = np.zeros((D, D))
        K[:d, :d] = _theta(rng, d)
        units = [r, K]
    else:
        units = [rng.standard_normal(D) / math.sqrt(D), rng.standard_normal((D, D)) / math.sqrt(D)]
    return tuple(asarray(a.reshape((-1,) + (1,) * u.ndim) * u[None, ...], xp, dtype, device) for u in units)


@dataclass(frozen=True)
class _Data:
    """What a loss evaluation needs, on the backend."""

    kind: str  # "population" | "samples"
    arrays: dict


def _device_data(problem: Problem, architecture: str, mask_query: bool, xp: Any, dtype: str, device: Any) -> _Data:
    put = functools.partial(asarray, xp=xp, dtype=dtype, device=device)
    if problem.X is None:
        L, om = problem.Lambda, problem.task_cov
        N, s = problem.N, problem.noise
        C = (1 + 1 / N) * L @ om @ L + (np.trace(om @ L) + s**2) / N * L
        return _Data("population", {"L": put(L), "C": put(C), "LOL": put(L @ om @ L),
                                    "const": float(np.trace(L @ om))})
    X, y, N = problem.X, problem.y, problem.N
    yq = put(y[:, N])
    if architecture == "reduced":
        h = np.einsum("pn,pnd->pd", y[:, :N], X[:, :N]) / N
        return _Data("samples", {"h": put(h), "xq": put(X[:, N]), "yq": yq})
    if architecture == "full":
        E = np.concatenate([X, y[:, :, None]], axis=2)  # (P, N + 1, d + 1): tokens as rows
        E[:, N, -1] = 0.0  # the query's label is not in the prompt
        cols = E[:, :N] if mask_query else E
        S = np.einsum("pni,pnj->pij", cols, cols) / N
        q = E[:, N]
        return _Data("samples", {"S": put(S), "q": put(q), "yq": yq})
    return _Data("samples", {"X": put(X), "y": put(y[:, :N]), "yq": yq})


def _reduced_A(state: tuple[Any, ...]) -> Any:
    u, U = state
    return u[:, :, None] * transpose(U)


def _weights(e: Any, weights: Any) -> Any:
    return e / e.shape[1] if weights is None else weights * e


def loss_grad(data: _Data, architecture: str, state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple]:
    """Loss per run and its hand-written gradient (module docstring), batched over runs and prompts."""
    xp = xp_of(state[0])
    ar = data.arrays
    if architecture == "reduced":
        u, U = state
        A = _reduced_A(state)
        if data.kind == "population":
            LAC = xp.matmul(xp.matmul(ar["L"][None, ...], A), ar["C"][None, ...])
            value = 0.5 * (xp.sum(A * LAC, axis=(1, 2)) - 2 * xp.sum(A * ar["LOL"][None, ...], axis=(1, 2)) + ar["const"])
            G = LAC - ar["LOL"][None, ...]
        else:
            Ah = xp.matmul(ar["h"][None, ...], transpose(A))  # (B, P, d): (A h_p)^T
            e = xp.sum(ar["xq"][None, ...] * Ah, axis=2) - ar["yq"][None, ...]
            we = _weights(e, weights)
            value = 0.5 * xp.sum(we * e, axis=1)
            G = xp.matmul(transpose(ar["xq"][None, ...] * we[:, :, None]), ar["h"][None, ...])
        return value, (xp.sum(G * transpose(U), axis=(1, 2))[:, None], u[:, :, None] * transpose(G))
    if architecture == "full":
        r, K = state
        S, q = ar["S"], ar["q"]
        Kq = xp.matmul(q[None, ...], transpose(K))  # (B, P, D)
        SKq = xp.matmul(S[None, ...], Kq[..., None])[..., 0]
        Sr = xp.matmul(S[None, ...], r[:, None, :, None])[..., 0]
        e = xp.sum(r[:, None, :] * SKq, axis=2) - ar["yq"][None, ...]
        we = _weights(e, weights)
        value = 0.5 * xp.sum(we * e, axis=1)
        grad_r = xp.matmul(we[:, None, :], SKq)[:, 0, :]
        grad_K = xp.matmul(transpose(Sr * we[:, :, None]), q[None, ...])
        return value, (grad_r, grad_K)
    (As,) = state
    X, y = ar["X"], ar["y"]
    n = y.shape[1]
    batch, layers = As.shape[0], As.shape[1]
    Xc = X[:, :n, :]
    z = xp.concat([xp.broadcast_to(y[None, ...], (batch,) + y.shape), xp.zeros((batch, y.shape[0], 1), dtype=y.dtype,
                                                                           device=_device(y))], axis=2)
    zs, gs = [], []
    for l in range(layers):
        g = xp.matmul(z[:, :, None, :n], Xc[None, ...])[:, :, 0, :] / n  # (B, P, d)
        zs.append(z)
        gs.append(g)
        Ag = xp.matmul(g, As[:, l, ...])  # (B, P, d): (A_l^T g)^T
        z = z - xp.matmul(X[None, ...], Ag[..., None])[..., 0]
    e = z[:, :, n] + ar["yq"][None, ...]
    we = _weights(e, weights)
    value = xp.sum(we * e, axis=1)
    delta = xp.concat([xp.zeros((batch, y.shape[0], n), dtype=y.dtype, device=_device(y)), (2 * we)[:, :, None]],
                      axis=2)
    grads = [None] * layers
    for l in range(layers - 1, -1, -1):
        v = xp.matmul(delta[:, :, None, :], X[None, ...])[:, :, 0, :]  # (B, P, d)
        grads[l] = -xp.matmul(transpose(gs[l]), v)
        Av = xp.matmul(v, transpose(As[:, l, ...]))  # (A_l v)^T
        corr = xp.matmul(Xc[None, ...], Av[..., None])[..., 0] / n
        delta = xp.concat([delta[:, :, :n] - corr, delta[:, :, n:]], axis=2)
    return value, (xp.stack(grads, axis=1),)


def predictor(state: tuple[Any, ...], architecture: str, d: int) -> Any:
    """The matrix :math:`A` of :math:`\\hat y = x_q^\\top A h` ((B, d, d); Ahn: the stack (B, L, d, d))."""
    if architecture == "reduced":
        return _reduced_A(state)
    if architecture == "full":
        r, K = state
        return r[:, d][:, None, None] * transpose(K[:, :d, :d])
    return state[0]


def observe(data: _Data, architecture: str, d: int, state: tuple[Any, ...]) -> dict[str, Any]:
    """Observables: ``loss``, ``A`` (:func:`predictor`), ``balance`` (the conserved :math:`u^2 - \\|U_{11}\\|_F^2`,
    full: :math:`\\|r\\|^2 - \\|W^{KQ}\\|_F^2`) and, for ``full``, ``rest`` (the norm of the parameters ZFB's flow
    keeps at 0: :math:`r_{1:d}`, the last row and column of :math:`W^{KQ}`)."""
    xp = xp_of(state[0])
    value, _ = loss_grad(data, architecture, state)
    out = {"loss": value, "A": predictor(state, architecture, d)}
    if architecture == "reduced":
        u, U = state
        out["balance"] = u[:, 0] ** 2 - xp.sum(U * U, axis=(1, 2))
    elif architecture == "full":
        r, K = state
        out["balance"] = xp.sum(r * r, axis=1) - xp.sum(K * K, axis=(1, 2))
        out["rest"] = xp.sqrt(xp.sum(r[:, :d] ** 2, axis=1) + xp.sum(K[:, d, :] ** 2, axis=1)
                              + xp.sum(K[:, :d, d] ** 2, axis=1))
    return out


def predict(final: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray, *, architecture: str = "reduced",
            mask_query: bool = False) -> np.ndarray:
    r"""Predictions (B, P) of trained models (a trajectory's ``final``) on host prompts ``X`` (P, N + 1, d), ``y``
    (P, N + 1) (the query's label is not read): :math:`x_q^\top Ah` (reduced), :math:`r^\top SW^{KQ}q` (full),
    :math:`-z^L_q` (ahn, by the label-row recursion of the module docstring)."""
    architecture = choice("architecture", architecture, ARCHITECTURES)
    X = real_array("X", X, 3)
    y = real_array("y", y, 2)
    N = X.shape[1] - 1
    if architecture == "reduced":
        h = np.einsum("pn,pnd->pd", y[:, :N], X[:, :N]) / N
        return np.einsum("pd,bde,pe->bp", X[:, N], final["A"], h)
    if architecture == "full":
        E = np.concatenate([X, y[:, :, None]], axis=2)
        E[:, N, -1] = 0.0
        cols = E[:, :N] if mask_query else E
        S = np.einsum("pni,pnj->pij", cols, cols) / N
        r = final["W_PV"][:, -1, :]
        return np.einsum("bi,pij,bjk,pk->bp", r, S, final["W_KQ"], E[:, N])
    out = []
    for As in final["A"]:
        z = np.concatenate([y[:, :N], np.zeros((y.shape[0], 1))], axis=1)
        for A in As:
            g = np.einsum("pn,pnd->pd", z[:, :N], X[:, :N]) / N
            z = z - np.einsum("pnd,pd->pn", X, g @ A)
        out.append(-z[:, N])
    return np.stack(out)


def model(problem: Problem, alpha: Any, *, architecture: str = "reduced", layers: int = 1, init: str = "zfb",
          mask_query: bool = False, seed: int = 0, backend: str = "numpy", dtype: str = "float64",
          device: Any = None) -> Model:
    """The LSA on ``problem`` from scale ``alpha``, as the driver's :class:`~sims.driver.Model` (see :func:`simulate`)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.lsa.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    architecture = choice("architecture", architecture, ARCHITECTURES)
    layers = positive_int("layers", layers, 1, 64)
    if layers > 1 and architecture != "ahn":
        raise ValueError(f"layers > 1 needs architecture='ahn' (the multi-layer sparse form); got {shown(architecture)}")
    if not isinstance(mask_query, (bool, np.bool_)):
        raise TypeError(f"mask_query must be a bool; got {type(mask_query).__name__}")
    if mask_query and architecture != "full":
        raise ValueError("mask_query applies to architecture='full' (reduced: the query never reaches the "
                         "prediction; ahn: always masked)")
    if problem.X is None and architecture != "reduced":
        raise ValueError(f"architecture={shown(architecture)} needs sampled prompts (Problem.random(..., "
                         f"n_prompts=P)); the population has closed forms for 'reduced' only")
    xp = namespace(backend)
    state0 = initial_state(problem, alpha, architecture=architecture, layers=layers, init=init, seed=seed,
                           backend=backend, dtype=dtype, device=device)
    data = _device_data(problem, architecture, bool(mask_query), xp, dtype, device)
    d = problem.d
    a = np.atleast_1d(np.asarray(alpha, dtype=float))

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        if architecture == "reduced":
            u, U = host
            return {"u": u[:, 0], "U11": U, "A": u[:, :, None] * np.transpose(U, (0, 2, 1))}
        if architecture == "full":
            r, K = host
            W_pv = np.zeros_like(K)
            W_pv[:, d, :] = r
            return {"W_PV": W_pv, "W_KQ": K, "A": r[:, d, None, None] * np.transpose(K[:, :d, :d], (0, 2, 1))}
        (As,) = host
        P = np.zeros(As.shape[:2] + (d + 1, d + 1))
        P[..., d, d] = 1.0
        Q = np.zeros_like(P)
        Q[..., :d, :d] = -As
        return {"A": As, "P": P, "Q": Q}

    return Model(
        name="lsa",
        state0=state0,
        loss_grad=lambda state, weights=None: loss_grad(data, architecture, state, weights),
        observe=lambda state: observe(data, architecture, d, state),
        final=final,
        meta={"problem": {"d": d, "N": problem.N, "noise": problem.noise, "task": problem.task,
                          "link": problem.link, "n_prompts": problem.n_prompts,
                          "random_covariance": problem.lambdas is not None, "digest": problem.digest()},
              "alpha": a.tolist(), "architecture": architecture, "layers": layers, "init": init,
              "mask_query": bool(mask_query),
              "convention": "ahn: loss mean (z_q + y_q)^2, prediction -z_q" if architecture == "ahn"
              else "zfb: loss 1/2 mean (y_hat - y_q)^2"},
        backend=backend, dtype=dtype, n_samples=problem.n_prompts,
        t_max=1e3, atol=0.0 if problem.X is None else 1e-12, loss_tol=0.0,
        samples_hint="SGD draws prompts: sample them with Problem.random(..., n_prompts=P)",
    )


def simulate(
    problem: Problem,
    alpha: Any,
    algorithm: Any = "flow",
    *,
    lr: Any = None,
    steps: int | None = None,
    t_max: float | None = None,
    architecture: str | None = None,
    layers: int = 1,
    init: str = "zfb",
    mask_query: bool = False,
    coordinates: str | None = None,
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: Any = None,
    **options: Any,
) -> Trajectory:
    r"""Train a batch of linear self-attention models on in-context regression.

    Parameters
    ----------
    problem : Problem
        A population (closed-form expectations; ``architecture="reduced"`` only) or sampled prompts.
    alpha : float or 1-D array (B,)
        Initial scale, one run per value (ZFB's :math:`\sigma` for ``init="zfb"``; see :func:`initial_state`).
    algorithm : {"flow", "gd", "sgd", "sam", "gr"} or an algorithm object
        As in every family (:mod:`sims.driver`); SGD draws prompts. Default horizon 1e3.
    lr, steps, t_max
    architecture : {"reduced", "full", "ahn"}, optional
        ZFB's :math:`(u, U_{11})`, ZFB's full one-layer LSA, or Ahn et al.'s sparse multi-layer form (module
        docstring: each with its own loss scale and sign convention). Default ``"reduced"``, or what
        ``coordinates`` says.
    layers : int
        Number of layers (``ahn`` only).
    init : {"zfb", "random"}
    mask_query : bool
        Leave the query column out of the attention sum (``full`` only; Ahn et al.'s masking).
    coordinates : {"reduced", "full"}, optional
        ZFB's one-layer LSA simulated in its exact reduced coordinates :math:`(u, U_{11})` or in every
        parameter, as in the other families: ``"reduced"`` is exact (ZFB Lemma 5.2) for gradient flow from
        ``init="zfb"`` on the population or on label-symmetric prompts (each with its label-negated copy:
        every off-block gradient is odd in the labels), and refused with the reason elsewhere; ``None``
        (default) keeps ``architecture``'s choice, where ``"reduced"`` on any prompts is ZFB's reduced model
        in its own right. Recorded in ``meta["coordinates"]``.
    seed, backend, dtype, device
    **options
        The driver's options. ``atol`` defaults to 1e-12 on sampled prompts: ZFB's start has exact zeros (the
        last row and column of :math:`W^{KQ}`, the first entries of :math:`r`) that sampled prompts move off
        zero, and a purely relative error test would demand ever smaller steps for them (the parameters are of
        order 0.1-1); on the population, where no parameter vanishes, 0 (a purely relative test, which lets
        the stiff runs of a wide spectrum settle below a gradient of 1e-9).
        The minimal loss is not 0: runs stop on ``grad_tol`` (default 0) or at the horizon.

    Returns
    -------
    Trajectory
        ``final``: ``u``, ``U11``, ``A`` (reduced); ``W_PV``, ``W_KQ``, ``A`` (full); ``A`` (L, d, d), ``P``,
        ``Q`` in Ahn et al.'s form (ahn). Observables ``loss``, ``A``, ``balance``, ``rest`` (see :func:`observe`).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.lsa.Problem; got {type(problem).__name__}")
    a = broadcast_runs(np.atleast_1d(scale_array("alpha", alpha, (0, 1)))[:, None], lr)[:, 0]
    if coordinates is not None:
        if architecture not in (None, "reduced", "full"):
            raise ValueError(f"coordinates applies to ZFB's one-layer LSA (architecture 'reduced' or 'full'); got "
                             f"architecture={shown(architecture)}")
        coordinates = resolve_coordinates(coordinates, algorithm, stiff=False,
                                          refusal=reduced_refusal(problem, init, mask_query))
        if architecture is not None and architecture != coordinates:
            raise ValueError(f"architecture={shown(architecture)} contradicts coordinates={shown(coordinates)}; give one")
        architecture = coordinates
    architecture = "reduced" if architecture is None else architecture
    m = model(problem, a, architecture=architecture, layers=layers, init=init, mask_query=mask_query, seed=seed,
              backend=backend, dtype=dtype, device=device)
    traj = train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)
    traj.meta["coordinates"] = "reduced" if architecture == "reduced" else "full"  # the parameters it integrated
    return traj


def label_symmetric(problem: Problem) -> bool:
    """Whether every sampled prompt comes with its label-negated copy (the population counts as symmetric)."""
    if problem.X is None:
        return True
    keys = {(x.tobytes(), y.tobytes()) for x, y in zip(problem.X, problem.y + 0.0)}
    return all((x.tobytes(), (-y + 0.0).tobytes()) in keys for x, y in zip(problem.X, problem.y))


def reduced_refusal(problem: Problem, init: str, mask_query: bool) -> str:
    """Why ZFB's reduction is not exact here (empty when it is): Lemma 5.2 needs their initialisation and
    data whose off-block gradients vanish, the population or label-symmetric prompts."""
    if init != "zfb":
        return f"init={shown(init)} (the reduction needs ZFB's initialisation, Assumption 3.3)"
    if mask_query:
        return "mask_query=True (the reduced coordinates describe the unmasked layer)"
    if not label_symmetric(problem):
        return ("the sampled prompts are not label-symmetric (append each prompt with its labels negated, as the "
                "population is): the full flow then leaves the (u, U11) block form")
    return ""


def sweep_icl(*, d: int, N: int, alpha: float = 0.1, M: int | None = None, Lambda: list[float] | None = None,
              n_prompts: int | None = None, noise: float = 0.0, seed: int = 0, algorithm: str = "flow",
              lr: float | None = None, steps: int | None = None, t_max: float = 1e3, grad_tol: float = 1e-10,
              backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    r"""Sweep task ``lsa.icl``: ZFB's one-layer linear attention in its reduced coordinates, trained on prompts
    of length ``N`` (the population, or ``n_prompts`` sampled prompts) with covariates
    :math:`N(0, \operatorname{diag}\Lambda)` (``Lambda``: the diagonal, default the identity), summarised.

    A run stops when its gradient norm falls below ``grad_tol`` (status ``converged``) or at the horizon.
    Returns the status, the stop step and time; ``loss``: the final training loss (ZFB's
    :math:`\frac12 E(\hat y - y)^2`; on the population, the risk at length ``N``); ``test_loss``: the population
    risk of the learned :math:`A` on prompts of length ``M`` (default ``N``), from the same closed-form
    expectations as the population loss; the learned preconditioner :math:`A = u\,U_{11}^\top`: ``A_diag`` (its
    diagonal, the first 16 entries), ``A_offdiag`` (the Frobenius norm of the rest) and ``A_trace``.
    """
    L = None if Lambda is None else np.asarray(Lambda, dtype=float)
    problem = Problem.random(d, N, n_prompts=n_prompts, Lambda=L, noise=noise, seed=seed)
    M = N if M is None else positive_int("M", M, 1, 10**6)
    traj = simulate(problem, alpha, algorithm, lr=lr, steps=steps, t_max=t_max, grad_tol=grad_tol, seed=seed,
                    backend=backend, device=device)
    u, U = traj.final["u"], traj.final["U11"]
    at_M = Problem.random(d, M, Lambda=L, noise=noise)  # the population at the test length
    data = _device_data(at_M, "reduced", False, np, "float64", None)
    test_loss = loss_grad(data, "reduced", (np.asarray(u[:, None], dtype=float), np.asarray(U, dtype=float)))[0]
    A = np.asarray(traj.final["A"][0], dtype=float)
    off = A - np.diag(np.diag(A))
    return {"status": str(traj.status[0]), "stop_step": int(traj.stop_step[0]), "stop_time": float(traj.stop_time[0]),
            "loss": float(traj.observables["loss"][0, -1]), "test_loss": float(test_loss[0]),
            "A_diag": [float(x) for x in np.diag(A)[:16]], "A_offdiag": float(np.linalg.norm(off)),
            "A_trace": float(np.trace(A))}
