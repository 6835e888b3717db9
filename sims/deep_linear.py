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
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine._validate import choice, positive_array, positive_int, scale_array, real_array
from .engine.backend import device_of as _device, DTYPES, asarray, check_seed, host_rng, init_rng, namespace, xp_of
from .deep_linear_reduced import (balanced_layers, end_to_end_model, reduced_model, reduced_refusal, scalar_model,
                                  scalar_refusal)
from .engine.driver import ALGORITHMS, COORDINATES, Model, broadcast_runs, resolve_coordinates, train
from .deep_linear_hessian import flatten, hessian_dense, hvp, sharpness
from .engine.matmul import chains, layer_gradients, product, transpose
from .regression import (model_collapse, simulate_teacher_student, teacher_student_data, teacher_student_spectrum,
                         wishart_spectrum)
from .engine.trajectory import Trajectory

__all__ = ["ALGORITHMS", "Problem", "initial_state", "loss_grad", "hvp", "sharpness", "hessian_dense",
           "model", "product", "simulate", "simulate_teacher_student", "teacher_student_data", "model_collapse",
           "sweep_limit", "teacher_student_spectrum", "wishart_spectrum"]

INITS = ("aligned", "random", "balanced")


@dataclass(frozen=True, eq=False)
class Problem:
    """A target matrix (or data) and the hidden widths of the network that fits it.

    Attributes
    ----------
    target : ndarray, shape (d_out, d_in)
        :math:`\\Phi`, the input-output correlation of whitened data; computed as
        :math:`Y^\\top X/n` when data are given.
    hidden : tuple of int
        Hidden widths :math:`h_1, \\dots, h_{N-1}`; the depth is ``len(hidden) + 1``.
    X, Y : ndarray, shape (n, d_in) and (n, d_out), optional
        Training data: the loss is then the mean squared error on them (see the
        module docstring) and SGD draws its mini-batches from the ``n`` samples.
    """

    target: np.ndarray | None = None
    hidden: tuple[int, ...] = ()
    X: np.ndarray | None = None
    Y: np.ndarray | None = None

    def __post_init__(self) -> None:
        if (self.X is None) != (self.Y is None):
            raise ValueError("X and Y come together (the inputs and outputs of the same samples)")
        if self.X is not None:
            X, Y = real_array("X", self.X, 2), real_array("Y", self.Y, 2)
            if X.shape[0] != Y.shape[0]:
                raise ValueError(f"X and Y must have the same number of rows (samples); got {X.shape[0]} and {Y.shape[0]}")
            if X.size + Y.size > 10**7:
                raise ValueError("X and Y must have at most 1e7 entries together")
            phi = Y.T @ X / X.shape[0]
            if self.target is not None:
                given = real_array("target", self.target, 2)
                if given.shape != phi.shape or not np.allclose(given, phi, rtol=1e-12, atol=1e-12 * float(np.abs(phi).max())):
                    raise ValueError("target must equal Y^T X / n when data are given (or be left out)")
            object.__setattr__(self, "X", X)
            object.__setattr__(self, "Y", Y)
            object.__setattr__(self, "target", phi)
        elif self.target is None:
            raise ValueError("give a target matrix or data X, Y")
        t = real_array("target", self.target, 2)
        object.__setattr__(self, "target", t)
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            raise TypeError("hidden must be a tuple of integers >= 1 (the hidden widths)")
        object.__setattr__(self, "hidden", tuple(positive_int("hidden width", h, 1, 10_000) for h in self.hidden))
        if t.size > 10**6:
            raise ValueError("target must have at most 1e6 entries")

    @property
    def depth(self) -> int:
        return len(self.hidden) + 1

    @property
    def widths(self) -> tuple[int, ...]:
        """``(d_in, h_1, ..., h_{N-1}, d_out)``."""
        return (self.target.shape[1],) + self.hidden + (self.target.shape[0],)

    def svd(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``U, s, V`` with ``target = U diag(s) V^T`` (thin)."""
        u, s, vt = np.linalg.svd(self.target, full_matrices=False)
        return u, s, vt.T

    @property
    def n(self) -> int | None:
        """Number of samples (``None`` for a target-only problem)."""
        return None if self.X is None else self.X.shape[0]

    @property
    def input_covariance(self) -> np.ndarray | None:
        """:math:`\\Sigma_{xx} = X^\\top X/n` (``None`` for a target-only problem: whitened, the identity)."""
        return None if self.X is None else self.X.T @ self.X / self.X.shape[0]

    def digest(self) -> str:
        parts = [self.target.tobytes(), repr(self.hidden).encode()]
        if self.X is not None:
            parts += [self.X.tobytes(), self.Y.tobytes()]
        return hashlib.sha256(b"".join(parts)).hexdigest()[:16]

    @classmethod
    def from_data(cls, X: Any, Y: Any, hidden: tuple[int, ...] = ()) -> "Problem":
        """Fit data ``X (n, d_in)``, ``Y (n, d_out)`` by mean squared error."""
        return cls(hidden=tuple(hidden), X=X, Y=Y)

    @classmethod
    def random(cls, d_in: int, d_out: int, hidden: tuple[int, ...], singular_values: Any = None,
               seed: int = 0) -> "Problem":
        """A target ``U diag(s) V^T`` with Haar-random ``U, V`` and singular values ``s``
        (default: ``r`` values evenly spaced from 3 down to 1, ``r = min(d_in, d_out)``)."""
        d_in, d_out = positive_int("d_in", d_in, 1, 1000), positive_int("d_out", d_out, 1, 1000)
        r = min(d_in, d_out)
        s = np.linspace(3.0, 1.0, r) if singular_values is None else positive_array("singular_values", singular_values, 1)
        if s.shape[0] != r:
            raise ValueError(f"singular_values must have min(d_in, d_out) = {r} entries; got {s.shape[0]}")
        rng = host_rng(seed)
        u, _ = np.linalg.qr(rng.standard_normal((d_out, r)))
        v, _ = np.linalg.qr(rng.standard_normal((d_in, r)))
        return cls(target=(u * s) @ v.T, hidden=tuple(hidden))

    @classmethod
    def scalar(cls, depth: int, y: float = 1.0) -> "Problem":
        """The scalar network :math:`f = w_1\\cdots w_D` fitting ``y`` (Kreisler et al. 2023)."""
        depth = positive_int("depth", depth, 1, 1000)
        y = float(real_array("y", y, 0))
        if y == 0:
            raise ValueError("y must be non-zero")
        return cls(target=np.array([[y]]), hidden=(1,) * (depth - 1))
def loss_grad(target: Any, layers: tuple[Any, ...], weights: Any = None,
              data: tuple[Any, Any] | None = None) -> tuple[Any, tuple[Any, ...]]:
    r"""Loss per run and its gradient :math:`A_j^\top R B_j^\top`.

    Without ``data``: :math:`\tfrac12\|W_N\cdots W_1 - \Phi\|_F^2`, :math:`R = W - \Phi`.
    With ``data = (X, Y)`` (device arrays ``(n, d_in)``, ``(n, d_out)``):
    :math:`\tfrac12\sum_i\omega_i\|Wx_i - y_i\|^2`, :math:`R = \sum_i\omega_i(Wx_i - y_i)x_i^\top`,
    with ``weights`` :math:`\omega` of shape ``(B, n)`` (SGD) or uniform :math:`1/n`.
    """
    xp = xp_of(layers[0])
    pre, suf = chains(layers)
    w = xp.matmul(layers[-1], pre[-1])
    if data is None:
        resid = w - target
        loss = xp.sum(resid * resid, axis=(1, 2)) / 2
    else:
        X, Y = data
        err = xp.matmul(w, X.T) - Y.T  # (B, d_out, n): per-sample residuals
        weighted = err / X.shape[0] if weights is None else err * weights[:, None, :]
        loss = xp.sum(weighted * err, axis=(1, 2)) / 2
        resid = xp.matmul(weighted, X)
    return loss, layer_gradients(pre, suf, resid)


def initial_state(problem: Problem, alpha: Any, init: str = "aligned", *, seed: int = 0, backend: str = "numpy",
                  dtype: str = "float64", device: Any = None) -> tuple[Any, ...]:
    r"""Layers at scale ``alpha`` (one run per value).

    ``"aligned"``: balanced and aligned with the target's singular vectors,
    :math:`W_1 = E_1 \operatorname{diag}(a) V^\top`,
    :math:`W_j = E_j \operatorname{diag}(a) E_{j-1}^\top`,
    :math:`W_N = U \operatorname{diag}(a) E_{N-1}^\top` with :math:`a = \alpha^{1/N}`, so that
    :math:`W = \alpha\, U V^\top` and :math:`W_{j+1}^\top W_{j+1} = W_j W_j^\top`
    (Saxe et al. 2014's decoupled start; needs every hidden width >= rank).
    ``"balanced"``: balanced but not aligned, with random orthonormal frames
    (:func:`sims.deep_linear_reduced.balanced_layers`): :math:`W = \alpha PQ^\top` on
    :math:`k = \min` (all widths) random directions, the start of Arora et al.'s end-to-end ODE.
    ``"random"``: Gaussian entries of variance :math:`\alpha^{2/N}/h_{j-1}`,
    drawn on the host from ``seed``; the runs of a batch share the draw and
    differ by their scale (a run is the same alone or in a batch).
    """
    xp = namespace(backend)
    a = scale_array("alpha", alpha, (0, 1))
    a = np.atleast_1d(a)
    init = choice("init", init, INITS)
    n, widths = problem.depth, problem.widths
    layers = []
    if init == "aligned":
        u, _, v = problem.svd()
        r = u.shape[1]
        if any(h < r for h in problem.hidden):
            raise ValueError(f"init='aligned' needs hidden widths >= rank {r}; got {problem.hidden}")
        scale = a ** (1.0 / n)
        for j in range(n):
            left = u if j == n - 1 else np.eye(widths[j + 1])[:, :r]
            right = v if j == 0 else np.eye(widths[j])[:, :r]
            layers.append(scale[:, None, None] * (left @ right.T)[None])
    elif init == "balanced":
        layers = balanced_layers(problem, a, seed)
    else:
        rng = init_rng(seed)  # not host_rng: Problem.random(seed=seed) drew the target's vectors from that
        for j in range(n):
            std = a[:, None, None] ** (1.0 / n) / math.sqrt(widths[j])
            layers.append(std * rng.standard_normal((widths[j + 1], widths[j]))[None])
    return tuple(asarray(w, xp, dtype, device) for w in layers)


def simulate(
    problem: Problem,
    alpha: Any = 1e-3,
    algorithm: Any = "flow",
    *,
    lr: Any = None,
    steps: int | None = None,
    t_max: float | None = None,
    init: str = "aligned",
    layers: Any = None,
    record_sharpness: bool = False,
    record_layers: bool = False,
    sharpness_iters: int = 20,
    coordinates: str | None = None,
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: Any = None,
    **options: Any,
) -> Trajectory:
    r"""Train a batch of deep linear (or scalar) networks.

    Parameters
    ----------
    problem : Problem
    alpha : float or 1-D array
        Initial scale (one run per value); ignored when ``layers`` is given.
    algorithm : {"flow", "gd", "sgd", "sam", "gr"} or an algorithm object
        Gradient flow (adaptive Dormand-Prince), gradient descent, mini-batch SGD
        (problems with data; ``batch_size`` samples drawn without replacement per
        step and run from a host schedule seeded by ``seed``), SAM
        (``sam_normalized=False`` for :math:`\theta - \eta\nabla L(\theta + \rho\nabla L)`,
        the form of Agarwala & Dauphin 2023), gradient-regularised GD; see :mod:`sims.driver`.
    lr, steps, t_max
        Step size (one per run if an array), step budget, and horizon (flow:
        final time, default 50).
    init : {"aligned", "random"}
        See :func:`initial_state`.
    layers : sequence of arrays, optional
        Explicit initial layers, each ``(B, h_j, h_{j-1})`` (overrides ``alpha``/``init``).
    record_sharpness : bool
        Record the top Hessian eigenvalue (Lanczos on exact HVPs) at every output time.
    record_layers : bool
        Record all parameters, flattened (``params``: for scalar networks, the ``w_i``).
    coordinates : {"reduced", "full"}, optional
        ``"reduced"`` integrates one ODE per mode, :math:`\dot\sigma = N\sigma^{2-2/N}(s - \sigma)`
        (:mod:`sims.deep_linear_reduced`), exact for gradient flow from ``init="aligned"`` on a
        target-only problem, and the default there; ``"full"`` integrates every layer.
    seed, backend, dtype, device
        As in every family (see :func:`sims.diagonal.simulate`).
    **options
        The driver's options (:mod:`sims.driver`); ``atol`` defaults to 1e-14
        here (layers pass through zero-free but small values from a small
        start) and ``loss_tol`` to 0 (runs stop at ``t_max`` or the budget).

    Returns
    -------
    Trajectory
        Observables ``loss``, ``modes`` (:math:`\operatorname{diag}(U^\top W V)`,
        the end-to-end matrix on the target's singular pairs), ``balancedness``
        (:math:`\max_j\|W_{j+1}^\top W_{j+1} - W_j W_j^\top\|_F`) and optionally
        ``sharpness``; ``final`` has ``layer_j`` and ``product``.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.deep_linear.Problem; got {type(problem).__name__}")
    if layers is None:
        alpha = broadcast_runs(np.atleast_1d(scale_array("alpha", alpha, (0, 1)))[:, None], lr)[:, 0]
    coordinates = resolve_coordinates(coordinates, algorithm, stiff=False, refusal=reduced_refusal(
        problem, init, layers, record_sharpness, record_layers))
    m = model(problem, alpha, init=init, layers=layers, record_sharpness=record_sharpness,
              record_layers=record_layers, sharpness_iters=sharpness_iters, coordinates=coordinates, seed=seed,
              backend=backend, dtype=dtype, device=device)
    return train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)


def model(problem: Problem, alpha: Any = 1e-3, *, init: str = "aligned", layers: Any = None,
          record_sharpness: bool = False, record_layers: bool = False, sharpness_iters: int = 20,
          coordinates: str = "full", seed: int = 0, backend: str = "numpy", dtype: str = "float64",
          device: Any = None) -> Model:
    """The deep linear network on ``problem`` as the driver's :class:`~sims.driver.Model` (arguments as in
    :func:`simulate`; its ``loss_grad`` takes per-sample weights when the problem has data)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.deep_linear.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    seed = check_seed(seed)
    xp = namespace(backend)
    coordinates = choice("coordinates", coordinates, COORDINATES)
    meta = {"widths": list(problem.widths), "problem": {"digest": problem.digest()},
            "init": init if layers is None else "given"}
    if coordinates == "reduced":
        why = reduced_refusal(problem, init, layers, record_sharpness, record_layers)
        if why:
            raise ValueError(f"coordinates='reduced' does not apply here: {why}; use coordinates='full'")
        if not scalar_refusal(problem, record_sharpness):  # a scalar network: one ODE per run from any start
            if layers is not None:
                w0 = np.concatenate([real_array(f"layers[{j}]", w, 3).reshape(-1, 1) for j, w in enumerate(layers)],
                                    axis=1)
            else:
                host = initial_state(problem, alpha, init, seed=seed, backend="numpy", dtype="float64")
                w0 = np.concatenate([np.asarray(w).reshape(-1, 1) for w in host], axis=1)
            return scalar_model(problem, w0, record_layers=bool(record_layers), backend=backend, dtype=dtype,
                                device=device, meta=meta)
        scales = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
        if init == "balanced":
            return end_to_end_model(problem, scales, seed=seed, backend=backend, dtype=dtype, device=device, meta=meta)
        return reduced_model(problem, scales, backend=backend, dtype=dtype, device=device, meta=meta)
    if layers is not None:
        given = [real_array(f"layers[{j}]", w, 3) for j, w in enumerate(layers)]
        if len(given) != problem.depth:
            raise ValueError(f"layers must hold depth = {problem.depth} arrays; got {len(given)}")
        for j, w in enumerate(given):
            want = (problem.widths[j + 1], problem.widths[j])
            if w.shape[1:] != want or w.shape[0] != given[0].shape[0]:
                raise ValueError(f"layers[{j}] must have shape (B, {want[0]}, {want[1]}); got {w.shape}")
        state0 = tuple(asarray(w, xp, dtype, device) for w in given)
    else:
        state0 = initial_state(problem, alpha, init, seed=seed, backend=backend, dtype=dtype, device=device)
    target = asarray(problem.target, xp, dtype, device)
    data = None if problem.X is None else (asarray(problem.X, xp, dtype, device), asarray(problem.Y, xp, dtype, device))
    cov = None if problem.X is None else asarray(problem.input_covariance, xp, dtype, device)
    u, _, v = problem.svd()
    u_dev, v_dev = asarray(u, xp, dtype, device), asarray(v, xp, dtype, device)
    sharpness_iters = positive_int("sharpness_iters", sharpness_iters, 1, 10_000)

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        p = product(state)
        modes = xp.sum(xp.matmul(u_dev.T, p) * v_dev.T, axis=2)
        bal = xp.zeros((state[0].shape[0],), dtype=state[0].dtype, device=_device(state[0]))
        for lower, upper in zip(state[:-1], state[1:]):
            diff = xp.matmul(transpose(upper), upper) - xp.matmul(lower, transpose(lower))
            bal = xp.maximum(bal, xp.sqrt(xp.sum(diff * diff, axis=(1, 2))))
        if data is None:
            loss = xp.sum((p - target) ** 2, axis=(1, 2)) / 2
        else:
            err = xp.matmul(p, data[0].T) - data[1].T
            loss = xp.sum(err * err, axis=(1, 2)) / (2 * data[0].shape[0])
        out = {"loss": loss, "modes": modes, "balancedness": bal}
        if record_sharpness:
            out["sharpness"] = sharpness(target, state, iters=sharpness_iters, seed=seed, cov=cov)
        if record_layers:
            out["params"] = flatten(state)
        return out

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        out = {f"layer_{j + 1}": w for j, w in enumerate(host)}
        prod = host[0]
        for w in host[1:]:
            prod = np.matmul(w, prod)
        out["product"] = prod
        return out

    return Model(
        name="deep_linear", state0=state0,
        loss_grad=lambda state, weights=None: loss_grad(target, state, weights, data),
        observe=observe, final=final,
        meta=meta,
        backend=backend, dtype=dtype, n_samples=problem.n, t_max=50.0, atol=1e-14,
        samples_hint="use Problem.from_data(X, Y, hidden)",
    )


def sweep_limit(*, d_in: int, d_out: int, hidden: list[int], alpha: float, seed: int = 0, init: str = "aligned",
                algorithm: str = "flow", lr: float | None = None, steps: int | None = None, t_max: float = 50.0,
                backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    r"""Sweep task ``deep_linear.limit``: one run on :meth:`Problem.random` (singular values 3..1), summarised.

    Returns the status, steps, stopping time, final loss, the largest error of
    a mode :math:`\max_i|u_i^\top W v_i - s_i|`, the balancedness and the top
    Hessian eigenvalue at the end (numbers only, so a sweep store is plain JSON).
    """
    problem = Problem.random(d_in, d_out, tuple(hidden), seed=seed)
    traj = simulate(problem, alpha, algorithm, lr=lr, steps=steps, t_max=t_max, init=init, seed=seed,
                    backend=backend, device=device)
    _, s, _ = problem.svd()
    last = {k: v[0, -1] for k, v in traj.observables.items()}  # runs that stop early repeat their final values
    layers = tuple(traj.final[f"layer_{j + 1}"] for j in range(problem.depth))
    return {
        "status": str(traj.status[0]),
        "stop_step": int(traj.stop_step[0]),
        "stop_time": float(traj.stop_time[0]),
        "loss": float(last["loss"]),
        "mode_error": float(np.max(np.abs(last["modes"] - s))),
        "balancedness": float(last["balancedness"]),
        "sharpness": float(sharpness(problem.target, layers)[0]),
    }
