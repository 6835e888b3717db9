r"""Single-head softmax attention trained on a logistic loss: attention as a max-margin token selector.

Tarzanagh, Li, Thrampoulidis, Oymak 2023 ("Transformers as Support Vector Machines") and Tarzanagh, Li,
Zhang, Oymak 2023 ("Max-Margin Token Selection in Attention Mechanism"): sequences
:math:`X_i \in \mathbb{R}^{T\times d}` (tokens as rows), queries :math:`z_i \in \mathbb{R}^d`, labels
:math:`Y_i = \pm1`, a fixed head :math:`v`, and

.. math:: f_i(W) = v^\top X_i^\top\operatorname{softmax}(X_iWz_i),\qquad
          L(W) = \frac1n\sum_i \ell(Y_if_i),\quad \ell(m) = \log(1 + e^{-m}),

trained on :math:`W` (``parameterisation="W"``) or on the factors of :math:`W = KQ^\top`
(``"KQ"``, width ``m``). Gradient, by hand: with :math:`s_i = \operatorname{softmax}(X_iWz_i)`,
:math:`\gamma_i = X_iv` and :math:`c_i = \ell'(Y_if_i)Y_i/n`,

.. math:: \nabla_W L = \sum_i c_i\,X_i^\top\big[s_i\odot(\gamma_i - s_i^\top\gamma_i)\big]z_i^\top,\qquad
          \nabla_K = \nabla_W Q,\ \ \nabla_Q = \nabla_W^\top K .

Run it in float64: the direction converges while :math:`\|W\|` grows and the softmax saturates (the
logits are shifted by their maximum, and :math:`\ell` is evaluated with ``logaddexp``).
Algorithms: the driver's, plus normalised GD (``"ngd"``; :class:`sims.engine.rules.NormalizedGD`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine._validate import choice, positive_int, real_array, scale_array, shown
from ..engine.backend import DTYPES, asarray, check_seed, init_rng, namespace, xp_of
from ..engine.driver import ALGORITHMS as DRIVER_ALGORITHMS, Model, broadcast_runs, train
from ..engine.matmul import transpose
from ..engine.rules import NormalizedGD
from ..engine.trajectory import Trajectory

__all__ = ["ALGORITHMS", "PARAMETERISATIONS", "Problem", "correlation", "initial_state", "loss_grad", "model", "simulate"]

PARAMETERISATIONS = ("W", "KQ")
ALGORITHMS = DRIVER_ALGORITHMS + ("ngd",)


@dataclass(frozen=True, eq=False)
class Problem:
    r"""Sequences, queries, labels and the fixed head of a token-selection problem.

    Attributes
    ----------
    X : ndarray (n, T, d)
        Tokens, as rows.
    z : ndarray (n, d)
        Queries.
    Y : ndarray (n,)
        Labels in {-1, +1}.
    v : ndarray (d,)
        The fixed linear head.
    """

    X: np.ndarray
    z: np.ndarray
    Y: np.ndarray
    v: np.ndarray

    def __post_init__(self) -> None:
        X = real_array("X", self.X, 3)
        n, T, d = X.shape
        if T < 2:
            raise ValueError(f"X must hold T >= 2 tokens per sequence; got T = {T}")
        z = real_array("z", self.z, 2)
        if z.shape != (n, d):
            raise ValueError(f"z must be (n, d) = ({n}, {d}); got {z.shape}")
        Y = real_array("Y", self.Y, 1)
        if Y.shape != (n,) or not np.all(np.isin(Y, (-1.0, 1.0))):
            raise ValueError(f"Y must be n = {n} labels in {{-1, +1}}")
        v = real_array("v", self.v, 1)
        if v.shape != (d,):
            raise ValueError(f"v must be (d,) = ({d},); got {v.shape}")
        for name, a in (("X", X), ("z", z), ("Y", Y), ("v", v)):
            object.__setattr__(self, name, a)

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def T(self) -> int:
        return int(self.X.shape[1])

    @property
    def d(self) -> int:
        return int(self.X.shape[2])

    @property
    def scores(self) -> np.ndarray:
        r"""Token scores :math:`\gamma_{it} = Y_i v^\top x_{it}` (n, T)."""
        return self.Y[:, None] * (self.X @ self.v)

    @classmethod
    def random(cls, n: int = 6, T: int = 8, d: int = 10, seed: int = 0) -> "Problem":
        """Tarzanagh et al.'s setting: unit-norm Gaussian tokens, the query the first token
        (:math:`z_i = x_{i1}`), random labels and a random unit head."""
        n = positive_int("n", n, 1, 10**5)
        T = positive_int("T", T, 2, 10**5)
        d = positive_int("d", d, 1, 10**4)
        rng = np.random.default_rng(check_seed(seed))
        X = rng.standard_normal((n, T, d))
        X /= np.linalg.norm(X, axis=2, keepdims=True)
        v = rng.standard_normal(d)
        return cls(X=X, z=X[:, 0].copy(), Y=rng.choice([-1.0, 1.0], n), v=v / np.linalg.norm(v))


def initial_state(problem: Problem, alpha: Any, *, parameterisation: str = "W", width: int | None = None,
                  init: Any = "random", seed: int = 0, backend: str = "numpy", dtype: str = "float64",
                  device: Any = None) -> tuple[Any, ...]:
    r"""Parameters with :math:`\|W_0\|_F = \alpha` (one run per value).

    ``init="random"``: a Gaussian direction drawn from ``seed``'s init stream (``KQ``: independent Gaussian
    factors, each scaled to Frobenius norm :math:`\sqrt\alpha`). ``init`` a (d, d) array: that direction
    (``KQ``: its balanced factors :math:`K = U\sqrt\Sigma`, :math:`Q = V\sqrt\Sigma`, padded to ``width``).
    """
    parameterisation = choice("parameterisation", parameterisation, PARAMETERISATIONS)
    xp = namespace(backend)
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    d = problem.d
    m = d if width is None else positive_int("width", width, 1, 10**4)
    rng = init_rng(seed)
    if isinstance(init, str):
        choice("init", init, ("random",))
        if parameterisation == "W":
            G = rng.standard_normal((d, d))
            units = [G / np.linalg.norm(G)]
        else:
            K, Q = rng.standard_normal((d, m)), rng.standard_normal((d, m))
            units = [K / np.linalg.norm(K), Q / np.linalg.norm(Q)]
        scales = [a] if parameterisation == "W" else [np.sqrt(a), np.sqrt(a)]
    else:
        W = real_array("init", init, 2)
        if W.shape != (d, d) or not np.any(W):
            raise ValueError(f"init must be 'random' or a nonzero (d, d) = ({d}, {d}) direction")
        W = W / np.linalg.norm(W)
        if parameterisation == "W":
            units, scales = [W], [a]
        else:
            U, s, Vt = np.linalg.svd(W)
            k = min(m, d)
            K = np.zeros((d, m))
            Q = np.zeros((d, m))
            K[:, :k] = U[:, :k] * np.sqrt(s[:k])
            Q[:, :k] = Vt[:k].T * np.sqrt(s[:k])
            units, scales = [K, Q], [np.sqrt(a), np.sqrt(a)]
    return tuple(asarray(s[:, None, None] * u[None, ...], xp, dtype, device) for s, u in zip(scales, units))


def _W(state: tuple[Any, ...]) -> Any:
    if len(state) == 1:
        return state[0]
    return xp_of(state[0]).matmul(state[0], transpose(state[1]))


def _attention(X: Any, z: Any, W: Any) -> Any:
    """Softmax attention (B, n, T) of each sequence's tokens, logits shifted by their maximum."""
    xp = xp_of(W)
    Wz = transpose(xp.matmul(W, transpose(z)[None, ...]))  # (B, n, d): (W z_i)^T
    logits = xp.sum(X[None, ...] * Wz[:, :, None, :], axis=3)
    logits = logits - xp.max(logits, axis=2, keepdims=True)
    e = xp.exp(logits)
    return e / xp.sum(e, axis=2, keepdims=True)


def loss_grad(X: Any, z: Any, Y: Any, gam: Any, gap: Any, state: tuple[Any, ...],
              weights: Any = None) -> tuple[Any, tuple]:
    r"""Logistic loss per run and its hand-written gradient (module docstring).

    ``gap`` is :math:`\gamma_{it} - \gamma_{iu}` (n, T, T): the factor :math:`\gamma_t - s^\top\gamma` is
    computed as :math:`\sum_u s_u(\gamma_t - \gamma_u)`, a sum of products. Formed as a difference it
    cancels once the softmax saturates (the non-selected weights fall below the rounding error of
    :math:`s^\top\gamma`), and the gradient's direction -- what normalised GD follows -- becomes noise.
    """
    xp = xp_of(state[0])
    W = _W(state)
    s = _attention(X, z, W)
    f = xp.sum(s * gam[None, ...], axis=2)  # (B, n)
    margin = Y[None, ...] * f
    ell = xp.logaddexp(xp.zeros_like(margin), -margin)
    dell = -xp.exp(-xp.logaddexp(xp.zeros_like(margin), margin))  # l'(m) = -1/(1 + e^m)
    w = 1.0 / margin.shape[1] if weights is None else weights
    value = xp.sum(w * ell, axis=1)
    c = w * dell * Y[None, ...]
    centred = xp.matmul(gap[None, ...], s[..., None])[..., 0]  # (B, n, T): gamma_t - s^T gamma, without cancellation
    b = c[:, :, None] * s * centred
    Xb = xp.matmul(b[:, :, None, :], X[None, ...])[:, :, 0, :]  # (B, n, d)
    gW = xp.matmul(transpose(Xb), z[None, ...])
    if len(state) == 1:
        return value, (gW,)
    K, Q = state
    return value, (xp.matmul(gW, Q), xp.matmul(transpose(gW), K))


def model(problem: Problem, alpha: Any, *, parameterisation: str = "W", width: int | None = None,
          init: Any = "random", seed: int = 0, backend: str = "numpy", dtype: str = "float64",
          device: Any = None) -> Model:
    """The attention model on ``problem`` from scale ``alpha``, as the driver's :class:`~sims.engine.driver.Model`."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.lsa.softmax.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    xp = namespace(backend)
    state0 = initial_state(problem, alpha, parameterisation=parameterisation, width=width, init=init, seed=seed,
                           backend=backend, dtype=dtype, device=device)
    put = lambda a: asarray(a, xp, dtype, device)  # noqa: E731
    gam_host = problem.X @ problem.v
    X, z, Y, gam = put(problem.X), put(problem.z), put(problem.Y), put(gam_host)
    gap = put(gam_host[:, :, None] - gam_host[:, None, :])

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        W = _W(state)
        value, _ = loss_grad(X, z, Y, gam, gap, state)
        return {"loss": value, "W": W, "norm": xp.sqrt(xp.sum(W * W, axis=(1, 2))), "attention": _attention(X, z, W)}

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        if len(host) == 1:
            return {"W": host[0]}
        return {"K": host[0], "Q": host[1], "W": host[0] @ np.transpose(host[1], (0, 2, 1))}

    a = np.atleast_1d(np.asarray(alpha, dtype=float))
    return Model(
        name="lsa_softmax",
        state0=state0,
        loss_grad=lambda state, weights=None: loss_grad(X, z, Y, gam, gap, state, weights),
        observe=observe,
        final=final,
        meta={"problem": {"n": problem.n, "T": problem.T, "d": problem.d}, "alpha": a.tolist(),
              "parameterisation": parameterisation, "width": problem.d if width is None else int(width),
              "init": init if isinstance(init, str) else "given direction"},
        backend=backend, dtype=dtype, n_samples=problem.n, t_max=1e4, atol=1e-12, loss_tol=0.0,
    )


def simulate(
    problem: Problem,
    alpha: Any,
    algorithm: Any = "flow",
    *,
    lr: Any = None,
    steps: int | None = None,
    t_max: float | None = None,
    parameterisation: str = "W",
    width: int | None = None,
    init: Any = "random",
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: Any = None,
    **options: Any,
) -> Trajectory:
    r"""Train single-head softmax attention on a token-selection problem.

    Parameters
    ----------
    problem : Problem
    alpha : float or 1-D array (B,)
        :math:`\|W_0\|_F`, one run per value.
    algorithm : {"flow", "gd", "sgd", "sam", "gr", "ngd"} or an algorithm object
        ``"ngd"``: normalised GD, :math:`W \leftarrow W - \eta\nabla L/\|\nabla L\|` (needs ``lr``).
    lr, steps, t_max
        As in every family (:mod:`sims.engine.driver`).
    parameterisation : {"W", "KQ"}
    width : int, optional
        Width :math:`m` of :math:`K, Q \in \mathbb{R}^{d\times m}` (default d).
    init : "random" or (d, d) array
        See :func:`initial_state`.
    seed, backend, dtype, device
    **options
        The driver's options (``atol`` default 1e-12). The loss has no minimiser (it decreases as :math:`\|W\| \to \infty` along a
        separating direction): runs end at the step budget.

    Returns
    -------
    Trajectory
        ``final``: ``W`` (and ``K``, ``Q``); observables ``loss``, ``W``, ``norm``, ``attention`` (B, T_rec, n, T).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.lsa.softmax.Problem; got {type(problem).__name__}")
    if isinstance(algorithm, str) and algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS} or an algorithm object; got {shown(algorithm)}")
    lr_for_runs = lr
    if algorithm == "ngd":
        if lr is None:
            raise ValueError("lr is required for algorithm='ngd': a number > 0 or one per run")
        algorithm, lr = NormalizedGD(lr=lr), None
    a = broadcast_runs(np.atleast_1d(scale_array("alpha", alpha, (0, 1)))[:, None], lr_for_runs)[:, 0]
    m = model(problem, a, parameterisation=parameterisation, width=width, init=init, seed=seed, backend=backend,
              dtype=dtype, device=device)
    return train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)


def correlation(W: Any, reference: Any) -> np.ndarray:
    r"""Correlation :math:`\langle W, W^{mm}\rangle/(\|W\|_F\|W^{mm}\|_F)` of every matrix in ``W`` (..., d, d)
    with ``reference`` (d, d): Tarzanagh et al.'s measure of directional convergence."""
    W = np.asarray(W, dtype=float)
    R = np.asarray(reference, dtype=float)
    num = np.sum(W * R, axis=(-2, -1))
    return num / (np.linalg.norm(W, axis=(-2, -1)) * np.linalg.norm(R) + 1e-300)
