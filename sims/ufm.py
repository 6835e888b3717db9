r"""The unconstrained feature model, simulated: free features, a (deep linear) classifier, MSE or cross-entropy.

.. math::
    f = \frac1N\ell(W_M\cdots W_1\,\phi(H) + b\mathbf 1^\top, Y)
      + \sum_m\frac{\lambda_W}{2}\|W_m\|_F^2 + \frac{\lambda_H}{2}\|H\|_F^2 + \frac{\lambda_b}{2}\|b\|^2,

with :math:`\phi` the identity or ReLU, :math:`\ell` the squared error
:math:`\tfrac12\|\cdot\|_F^2` or the summed cross-entropy, samples ordered by
class. With :math:`D = \partial\ell/\partial Z / N` (``(Z - Y)/N`` or
``(softmax(Z) - Y)/N``) the gradient written by hand is
:math:`\nabla_{W_j} = A_j^\top D\phi(H)^\top B_j^\top + \lambda_W W_j`,
:math:`\nabla_H = \phi'(H)\odot(W^\top D) + \lambda_H H`,
:math:`\nabla_b = D\mathbf 1 + \lambda_b b` (:math:`A_j, B_j` the products of
the layers above and below, as in :mod:`sims.deep_linear`).

Neural-collapse metrics (observables, on :math:`\phi(H)`):

* ``nc1`` :math:`= \operatorname{tr}(\Sigma_W\Sigma_B^+)/K` with
  :math:`\Sigma_W = \frac1N\sum_i (h_i - \mu_{y_i})(h_i - \mu_{y_i})^\top` and
  :math:`\Sigma_B = \frac1K\sum_k (\mu_k - \bar\mu)(\mu_k - \bar\mu)^\top`, centred at
  the **mean of the class means** :math:`\bar\mu` (not the sample-weighted
  global mean; they differ under imbalance);
* ``nc2`` :math:`= \|\tilde M^\top\tilde M/\|\cdot\|_F - E/\|E\|_F\|_F`, the
  normalised Gram of the centred class means against the simplex ETF
  :math:`E`; ``nc2_w`` the same for the rows of the end-to-end classifier;
* ``nc3`` :math:`= \|W/\|W\|_F - \tilde M^\top/\|\tilde M\|_F\|_F` (self-duality), with
  the centred means when the model has a bias and the raw class means when
  it does not (the bias-free minimisers are self-dual without centring);
* ``nc4`` the fraction of samples on which the classifier's decision
  differs from the nearest class mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine._validate import choice, nonneg_float, positive_float, positive_int, real_array, scale_array
from .engine.backend import device_of as _device, DTYPES, asarray, check_seed, host_rng, host_to, namespace, xp_of
from .engine.driver import Model, broadcast_runs, resolve_coordinates, train
from .engine.matmul import product, transpose
from .ufm_reduced import aligned_model, aligned_refusal, collapsed_model, collapsed_refusal
from .ufm_scl import batch_masks, scl_features, scl_loss_grad, simulate_scl
from .engine.trajectory import Trajectory

__all__ = ["INITS", "LOSSES", "Problem", "aligned_frame", "batch_masks", "initial_state", "loss_grad", "metrics", "model", "scl_features",
           "scl_loss_grad", "simulate", "simulate_scl", "sweep_collapse"]

LOSSES = ("mse", "ce")
INITS = ("random", "collapsed", "aligned")


@dataclass(frozen=True, eq=False)
class Problem:
    r"""An unconstrained feature model.

    Attributes
    ----------
    n : tuple of int
        Class sizes ``n_1..n_K`` (K >= 2).
    d : int
        Feature dimension (and the width of hidden classifier layers).
    loss : {"mse", "ce"}
    lambda_W, lambda_H : float > 0
        Weight decay on every classifier layer and on the features.
    lambda_b : float >= 0 or None
        None: no bias; 0: an unregularised bias; > 0: a regularised one.
    depth : int
        Number of classifier layers M (Dang et al. 2023's deep linear head).
    relu : bool
        Apply ReLU to the features before the classifier.
    anchor : ndarray (d, N), optional
        Features the regulariser pulls toward: :math:`\frac{\lambda_H}{2}\|H - H_0\|^2`
        instead of :math:`\frac{\lambda_H}{2}\|H\|^2` (Tirer, Huang & Niles-Weed 2023's
        perturbation model: features that cannot move far from given ones).
    """

    n: tuple[int, ...]
    d: int
    loss: str = "mse"
    lambda_W: float = 5e-3
    lambda_H: float = 5e-3
    lambda_b: float | None = None
    depth: int = 1
    relu: bool = False
    anchor: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.n, (str, bytes)) or not hasattr(self.n, "__iter__"):
            raise TypeError("n must be a sequence of class sizes")
        n = tuple(positive_int("n (class size)", k, 1, 100_000) for k in self.n)
        if len(n) < 2:
            raise ValueError("n must hold at least two class sizes")
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "d", positive_int("d", self.d, 1, 100_000))
        object.__setattr__(self, "loss", choice("loss", self.loss, LOSSES))
        object.__setattr__(self, "lambda_W", positive_float("lambda_W", self.lambda_W))
        object.__setattr__(self, "lambda_H", positive_float("lambda_H", self.lambda_H))
        if self.lambda_b is not None:
            object.__setattr__(self, "lambda_b", nonneg_float("lambda_b", self.lambda_b))
        object.__setattr__(self, "depth", positive_int("depth", self.depth, 1, 50))
        if not isinstance(self.relu, (bool, np.bool_)):
            raise TypeError("relu must be a bool")
        if sum(n) * self.d > 10**8:
            raise ValueError("N * d must be at most 1e8 entries")
        if self.anchor is not None:
            a = real_array("anchor", self.anchor, 2)
            if a.shape != (self.d, sum(n)):
                raise ValueError(f"anchor must have shape (d, N) = ({self.d}, {sum(n)}); got {a.shape}")
            object.__setattr__(self, "anchor", a)

    @property
    def K(self) -> int:
        return len(self.n)

    @property
    def N(self) -> int:
        return int(sum(self.n))

    def labels(self) -> np.ndarray:
        """One-hot ``Y`` (K x N)."""
        return np.repeat(np.eye(self.K), self.n, axis=1)


def _widths(p: Problem) -> list[tuple[int, int]]:
    """(out, in) of each classifier layer, bottom to top."""
    return [(p.d, p.d)] * (p.depth - 1) + [(p.K, p.d)]


def initial_state(problem: Problem, alpha: Any = 0.1, *, init: str = "random", seed: int = 0, backend: str = "numpy",
                  dtype: str = "float64", device: Any = None, class_vectors: bool = False) -> tuple[Any, ...]:
    """``(W_1, ..., W_M, H[, b])`` with i.i.d. Gaussian entries of standard deviation ``alpha`` (one run per value).

    ``init="collapsed"``: every feature starts at its class's vector, one Gaussian column per class
    (``class_vectors=True`` returns those ``(B, d, K)`` in place of ``H``; the layers are the same draw).
    ``init="aligned"`` (one layer, ``d >= K``): on a seeded orthonormal frame ``q_1..q_K``
    (:func:`aligned_frame`), ``W = alpha sum_k e_k q_k^T`` and every feature of class ``k`` at ``alpha q_k``.
    The runs of a batch share one draw from ``seed``, scaled by their ``alpha``: a run is the same whether
    simulated alone or in a batch.
    """
    xp = namespace(backend)
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    init = choice("init", init, INITS)
    B = a.shape[0]
    if init == "aligned":
        Q = aligned_frame(problem, seed)
        parts = [a[:, None, None] * Q.T[None], a[:, None, None] * (Q[None] if class_vectors
                                                                    else np.repeat(Q, problem.n, axis=1)[None])]
        if problem.lambda_b is not None:
            parts.append(np.zeros((B, problem.K)))
        return tuple(asarray(x, xp, dtype, device) for x in parts)
    rng = host_rng(seed)
    parts = [a[:, None, None] * rng.standard_normal(shape)[None] for shape in _widths(problem)]
    if init == "collapsed":
        means = a[:, None, None] * rng.standard_normal((problem.d, problem.K))[None]
        parts.append(means if class_vectors else np.repeat(means, problem.n, axis=2))
    else:
        parts.append(a[:, None, None] * rng.standard_normal((problem.d, problem.N))[None])
    if problem.lambda_b is not None:
        parts.append(np.zeros((B, problem.K)))
    return tuple(asarray(x, xp, dtype, device) for x in parts)


def aligned_frame(problem: Problem, seed: int = 0) -> np.ndarray:
    """The orthonormal frame ``(d, K)`` of ``init="aligned"``: the first K columns of a seeded random rotation."""
    if problem.depth != 1:
        raise ValueError(f"init='aligned' needs a one-layer head (depth 1); got depth {problem.depth}")
    if problem.d < problem.K:
        raise ValueError(f"init='aligned' needs d >= K (an orthonormal frame of K vectors); got d = {problem.d}, "
                         f"K = {problem.K}")
    Q, R = np.linalg.qr(host_rng(seed).standard_normal((problem.d, problem.d)))
    return (Q * np.sign(np.diag(R)))[:, :problem.K]


def _features(problem: Problem, H: Any) -> Any:
    xp = xp_of(H)
    return xp.where(H > 0, H, 0.0) if problem.relu else H


def _split(problem: Problem, state: tuple[Any, ...]) -> tuple[tuple[Any, ...], Any, Any]:
    M = problem.depth
    layers, H = state[:M], state[M]
    b = state[M + 1] if problem.lambda_b is not None else None
    return layers, H, b


def _logits(problem: Problem, state: tuple[Any, ...]) -> Any:
    xp = xp_of(state[0])
    layers, H, b = _split(problem, state)
    Z = xp.matmul(product(layers), _features(problem, H))
    return Z if b is None else Z + b[:, :, None]


def loss_grad(problem: Problem, Y: Any, state: tuple[Any, ...], weights: Any = None,
              anchor: Any = None) -> tuple[Any, tuple[Any, ...]]:
    """Objective per run and its hand-written gradient (see the module docstring).

    ``anchor``: the backend copy of ``problem.anchor`` (``H`` is regularised toward it).
    """
    xp = xp_of(state[0])
    layers, H, b = _split(problem, state)
    N = problem.N
    F = _features(problem, H)
    Z = _logits(problem, state)
    # per-sample weights: 1/N for the full objective, the mini-batch mean for SGD
    wts = xp.full((Z.shape[0], 1, N), 1.0 / N, dtype=Z.dtype, device=_device(Z)) if weights is None else weights[:, None, :]
    if problem.loss == "mse":
        R = Z - Y
        data = xp.sum(wts * R * R, axis=(1, 2)) / 2
        D = wts * R
    else:
        zmax = xp.max(Z, axis=1, keepdims=True)
        ez = xp.exp(Z - zmax)
        tot = xp.sum(ez, axis=1, keepdims=True)
        lse = zmax + xp.log(tot)
        data = xp.sum(xp.sum(wts * (lse - Z) * Y, axis=1), axis=1)
        D = wts * (ez / tot - Y)
    reg = sum(xp.sum(w * w, axis=(1, 2)) for w in layers) * (problem.lambda_W / 2)
    Hd = H if anchor is None else H - anchor
    reg = reg + xp.sum(Hd * Hd, axis=(1, 2)) * (problem.lambda_H / 2)
    grads = []
    # classifier layers: A_j^T (D F^T) B_j^T
    DF = xp.matmul(D, transpose(F))
    pre = [None] * len(layers)
    acc = None
    for j, w in enumerate(layers):
        pre[j] = acc
        acc = w if acc is None else xp.matmul(w, acc)
    suf = [None] * len(layers)
    acc = None
    for j in range(len(layers) - 1, -1, -1):
        suf[j] = acc
        acc = layers[j] if acc is None else xp.matmul(acc, layers[j])
    for j, w in enumerate(layers):
        g = DF if suf[j] is None else xp.matmul(transpose(suf[j]), DF)
        g = g if pre[j] is None else xp.matmul(g, transpose(pre[j]))
        grads.append(g + problem.lambda_W * w)
    gF = xp.matmul(transpose(product(layers)), D)
    gH = (xp.where(H > 0, gF, 0.0) if problem.relu else gF) + problem.lambda_H * Hd
    grads.append(gH)
    if b is not None:
        grads.append(xp.sum(D, axis=2) + problem.lambda_b * b)
        reg = reg + xp.sum(b * b, axis=1) * (problem.lambda_b / 2)
    return data + reg, tuple(grads)


def metrics(problem: Problem, state: tuple[Any, ...]) -> dict[str, Any]:
    """The neural-collapse metrics of the module docstring, per run."""
    xp = xp_of(state[0])
    layers, H, _ = _split(problem, state)
    F = _features(problem, H)
    B = F.shape[0]
    K, N = problem.K, problem.N
    bounds = np.concatenate([[0], np.cumsum(problem.n)])
    means = xp.stack([xp.mean(F[:, :, int(bounds[k]) : int(bounds[k + 1])], axis=2) for k in range(K)], axis=2)
    centre = xp.mean(means, axis=2, keepdims=True)
    Mt = means - centre  # (B, d, K)
    # self-duality: with a bias the classifier matches the centred means; bias-free minimisers match the
    # raw class means (Dang et al. 2023)
    dual = Mt if problem.lambda_b is not None else means
    idx = np.repeat(np.arange(K), problem.n)
    onehot = host_to(np.eye(K)[idx].T, F)
    within = F - xp.matmul(means, onehot)
    sw = xp.matmul(within, transpose(within)) / N
    sb = xp.matmul(Mt, transpose(Mt)) / K
    nc1 = xp.sum(xp.linalg.diagonal(xp.matmul(sw, xp.linalg.pinv(sb))), axis=1) / K
    etf = host_to((K / (K - 1) * (np.eye(K) - 1.0 / K)) / math.sqrt(K), F)

    def gram_gap(vectors_as_cols: Any) -> Any:
        norms = xp.sqrt(xp.sum(vectors_as_cols * vectors_as_cols, axis=1, keepdims=True))
        unit = vectors_as_cols / xp.where(norms > 0, norms, 1.0)
        g = xp.matmul(transpose(unit), unit)
        gn = xp.reshape(xp.sqrt(xp.sum(g * g, axis=(1, 2))), (B, 1, 1))
        g = g / xp.where(gn > 0, gn, 1.0)
        diff = g - etf / xp.sqrt(xp.sum(etf * etf))
        return xp.sqrt(xp.sum(diff * diff, axis=(1, 2)))

    W = product(layers)  # (B, K, d)
    nc2 = gram_gap(Mt)
    nc2_w = gram_gap(transpose(W))
    wnorm = xp.reshape(xp.sqrt(xp.sum(W * W, axis=(1, 2))), (B, 1, 1))
    mnorm = xp.reshape(xp.sqrt(xp.sum(dual * dual, axis=(1, 2))), (B, 1, 1))
    wn = W / xp.where(wnorm > 0, wnorm, 1.0)
    mn = transpose(dual) / xp.where(mnorm > 0, mnorm, 1.0)
    nc3 = xp.sqrt(xp.sum((wn - mn) ** 2, axis=(1, 2)))
    decision = xp.argmax(_logits(problem, state), axis=1)
    d2 = xp.sum(F * F, axis=1)[:, None, :] - 2 * xp.matmul(transpose(means), F) + xp.sum(means * means, axis=1)[:, :, None]
    nearest = xp.argmin(d2, axis=1)
    nc4 = xp.mean(xp.astype(decision != nearest, F.dtype), axis=1)
    return {"nc1": nc1, "nc2": nc2, "nc2_w": nc2_w, "nc3": nc3, "nc4": nc4}


def simulate(
    problem: Problem,
    alpha: Any = 0.1,
    algorithm: Any = "flow",
    *,
    lr: Any = None,
    steps: int | None = None,
    t_max: float | None = None,
    record_metrics: bool = True,
    init: str = "random",
    coordinates: str | None = None,
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: Any = None,
    **options: Any,
) -> Trajectory:
    r"""Train a batch of unconstrained feature models from small random initialisations.

    ``algorithm``: ``"flow"`` (adaptive Dormand-Prince), ``"gd"``, ``"sgd"``
    (``batch_size`` samples per step: the data term is the mini-batch mean,
    the regulariser stays whole, so feature columns outside the batch only
    decay), ``"sam"``, ``"gr"``, or an algorithm object (see :mod:`sims.driver`).
    ``t_max`` defaults to 1e4. A run converges when its gradient norm falls
    below ``grad_tol`` (default 1e-10: the objective does not go to zero, it is
    regularised); ``atol`` defaults to 1e-12.

    ``init``: ``"random"`` (every feature its own Gaussian column), ``"collapsed"`` (every feature at its
    class's Gaussian vector) or ``"aligned"`` (collapsed on an orthonormal frame with the classifier's rows
    along it; one layer). ``coordinates``: from a collapsed start gradient flow keeps each class collapsed,
    and ``"reduced"`` (the default there) integrates one feature per class; from the aligned start with the
    squared error (no bias, ReLU or anchor) two numbers per class (:mod:`sims.ufm_reduced`); ``"full"`` every
    feature. Refused, with the reason, where it is not exact.

    Returns a :class:`Trajectory` with observables ``loss`` and, with
    ``record_metrics``, ``nc1``-``nc4``; ``final`` holds ``W_1..W_M``, ``H``,
    ``b`` (if any) and the end-to-end classifier ``W``.
    """
    a = broadcast_runs(np.atleast_1d(scale_array("alpha", alpha, (0, 1)))[:, None], lr)[:, 0]
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.ufm.Problem; got {type(problem).__name__}")
    coordinates = resolve_coordinates(coordinates, algorithm, stiff=False,
                                      refusal=collapsed_refusal(problem, choice("init", init, INITS)))
    m = model(problem, a, record_metrics=record_metrics, init=init, coordinates=coordinates, seed=seed,
              backend=backend, dtype=dtype, device=device)
    return train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)


def model(problem: Problem, alpha: Any = 0.1, *, record_metrics: bool = True, init: str = "random",
          coordinates: str = "full", seed: int = 0, backend: str = "numpy", dtype: str = "float64",
          device: Any = None) -> Model:
    """The unconstrained feature model as the driver's :class:`~sims.driver.Model` (arguments as in
    :func:`simulate`; its ``loss_grad`` takes per-sample weights in full coordinates)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.ufm.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    seed = check_seed(seed)
    xp = namespace(backend)
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    init = choice("init", init, INITS)
    meta = {"n": list(problem.n), "d": problem.d, "loss": problem.loss, "lambda_W": problem.lambda_W,
            "lambda_H": problem.lambda_H, "lambda_b": problem.lambda_b, "depth": problem.depth,
            "relu": problem.relu, "alpha": a.tolist(), "init": init}
    if coordinates == "reduced":
        why = collapsed_refusal(problem, init)
        if why:
            raise ValueError(f"coordinates='reduced' does not apply here: {why}; use coordinates='full'")
        if not aligned_refusal(problem, init):
            meta["reduction"] = "aligned modes"
            return aligned_model(problem, aligned_frame(problem, seed), a, record_metrics=record_metrics,
                                 backend=backend, dtype=dtype, device=device, meta=meta, t_max=1e4, atol=1e-12,
                                 grad_tol=1e-10)
        meta["reduction"] = "collapsed classes"
        state0 = initial_state(problem, a, init=init, seed=seed, backend=backend, dtype=dtype, device=device,
                               class_vectors=True)
        return collapsed_model(problem, state0, record_metrics=record_metrics, backend=backend, dtype=dtype,
                               device=device, meta=meta, t_max=1e4, atol=1e-12, grad_tol=1e-10)
    state0 = initial_state(problem, a, init=init, seed=seed, backend=backend, dtype=dtype, device=device)
    Y = asarray(problem.labels(), xp, dtype, device)
    anchor = None if problem.anchor is None else asarray(problem.anchor, xp, dtype, device)

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        out = {"loss": loss_grad(problem, Y, state, anchor=anchor)[0]}
        if record_metrics:
            out.update(metrics(problem, state))
        return out

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        M = problem.depth
        out = {f"W_{j + 1}": w for j, w in enumerate(host[:M])}
        out["H"] = host[M]
        if problem.lambda_b is not None:
            out["b"] = host[M + 1]
        out["W"] = product(host[:M])
        return out

    return Model(
        name="ufm", state0=state0,
        loss_grad=lambda state, weights=None: loss_grad(problem, Y, state, weights, anchor=anchor),
        observe=observe, final=final,
        meta=meta,
        backend=backend, dtype=dtype, n_samples=problem.N, t_max=1e4, atol=1e-12, grad_tol=1e-10,
    )


def sweep_collapse(*, n: list[int], d: int, loss: str = "mse", lambda_W: float = 5e-3, lambda_H: float = 5e-3,
                   depth: int = 1, alpha: float = 0.1, seed: int = 0, algorithm: str = "flow",
                   lr: float | None = None, steps: int | None = None, t_max: float = 1e4,
                   backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    """Sweep task ``ufm.collapse``: one bias-free UFM run, summarised by its final loss and NC1-NC4."""
    problem = Problem(n=tuple(n), d=d, loss=loss, lambda_W=lambda_W, lambda_H=lambda_H, depth=depth)
    traj = simulate(problem, alpha, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, backend=backend,
                    device=device)
    out: dict[str, Any] = {"status": str(traj.status[0]), "stop_step": int(traj.stop_step[0]),
                           "stop_time": float(traj.stop_time[0])}
    out.update({k: float(v[0, -1]) for k, v in traj.observables.items()})
    return out

