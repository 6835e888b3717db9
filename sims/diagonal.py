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

Examples
--------
>>> problem = Problem.random(n=20, d=40, sparsity=3, seed=0)
>>> traj = simulate(problem, alpha=[1e-3, 1.0], t_max=1e3)
>>> traj.final["w"].shape
(2, 40)
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validate import choice, nonneg_float, positive_array, positive_float, positive_int, real_array, scale_array
from .backend import DTYPES, asarray, check_seed, namespace, xp_of
from .diagonal_shaped import shaped_initial_state, shaped_loss_grad, shaped_predictor
from .diagonal_reduced import reduced_model
from .driver import ALGORITHMS, COORDINATES, Model, broadcast_runs, resolve_coordinates, train
from .trajectory import Trajectory

__all__ = ["ALGORITHMS", "Problem", "initial_state", "loss_grad", "model", "observe", "observe_w", "predictor", "shaped_initial_state",
           "shaped_loss_grad", "shaped_predictor", "simulate", "simulate_rescaled", "split", "sweep_gd_phase", "sweep_limit"]

#: Largest design matrix Problem.random builds (a guard against typos such as d=10**9).
MAX_ENTRIES = 10**8


@dataclass(frozen=True, eq=False)
class Problem:
    """A regression problem ``(X, y)`` for a diagonal linear network.

    Attributes
    ----------
    X : ndarray, shape (n, d)
        Design matrix, finite.
    y : ndarray, shape (n,)
        Targets, finite.
    w_star : ndarray, shape (d,), optional
        The teacher, when known (enables the distance-to-teacher observable).
    noise : float
        Standard deviation of the label noise used to make ``y`` (provenance only).
    """

    X: np.ndarray
    y: np.ndarray
    w_star: np.ndarray | None = None
    noise: float = 0.0

    def __post_init__(self) -> None:
        X = real_array("X", self.X, 2)
        y = real_array("y", self.y, 1)
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"y must have length n={X.shape[0]} (the rows of X); got {y.shape[0]}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "y", y)
        if self.w_star is not None:
            w = real_array("w_star", self.w_star, 1)
            if w.shape[0] != X.shape[1]:
                raise ValueError(f"w_star must have length d={X.shape[1]} (the columns of X); got {w.shape[0]}")
            object.__setattr__(self, "w_star", w)
        object.__setattr__(self, "noise", nonneg_float("noise", self.noise))

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.X.shape[0])

    @property
    def d(self) -> int:
        """Number of coordinates."""
        return int(self.X.shape[1])

    @classmethod
    def random(cls, n: int, d: int, sparsity: int, noise: float = 0.0, seed: int = 0) -> "Problem":
        r"""Gaussian design and a sparse teacher (Woodworth et al. 2020, Sec. 6).

        :math:`X_{ij} \sim N(0, 1)`; :math:`w^*` has ``sparsity`` non-zero
        entries equal to :math:`1/\sqrt{\text{sparsity}}` on a random support
        (so :math:`\|w^*\|_2 = 1`); :math:`y = Xw^* + \text{noise}\cdot\xi`,
        :math:`\xi \sim N(0, I_n)`.
        """
        n = positive_int("n", n, 1, MAX_ENTRIES)
        d = positive_int("d", d, 1, MAX_ENTRIES)
        if n * d > MAX_ENTRIES:
            raise ValueError(f"n * d must be at most {MAX_ENTRIES:.0e} entries; got n={n}, d={d}")
        sparsity = positive_int("sparsity", sparsity, 1, d)
        noise = nonneg_float("noise", noise)
        rng = np.random.default_rng(check_seed(seed))
        X = rng.standard_normal((n, d))
        w_star = np.zeros(d)
        w_star[rng.choice(d, size=sparsity, replace=False)] = 1.0 / math.sqrt(sparsity)
        y = X @ w_star + noise * rng.standard_normal(n)
        return cls(X=X, y=y, w_star=w_star, noise=noise)

    def digest(self) -> str:
        """A short stable hash of the data, for provenance in results."""
        h = hashlib.sha256()
        for a in (self.X, self.y) + ((self.w_star,) if self.w_star is not None else ()):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]


def alpha_grid(alpha: Any, d: int) -> np.ndarray:
    """Initial scales as a ``(B, d)`` host array.

    A number gives one run; a 1-D array gives one run per value (the batch);
    a 2-D ``(B, d)`` array gives a per-coordinate scale for each run.
    """
    a = scale_array("alpha", alpha, (0, 1, 2))
    if a.ndim == 0:
        return np.full((1, d), float(a))
    if a.ndim == 1:
        return np.repeat(a[:, None], d, axis=1)
    if a.shape[1] != d:
        raise ValueError(f"a 2-D alpha must have shape (B, d={d}); got {a.shape}")
    return a


def initial_state(problem: Problem, alpha: Any, *, backend: str = "numpy", dtype: str = "float64",
                  device: Any = None) -> tuple[Any]:
    """The state ``(z,)`` with ``z = [u | v]`` of shape ``(B, 2d)`` at ``u = v = alpha``, on the backend.

    The two factors live side by side in one array so that the integrator
    works on a single buffer (no packing per gradient evaluation).
    """
    xp = namespace(backend)
    a = alpha_grid(alpha, problem.d)
    return (asarray(np.concatenate([a, a], axis=1), xp, dtype, device),)


def split(state: tuple[Any, ...]) -> tuple[Any, Any]:
    """``(u, v)`` from the state ``(z,)``, ``z = [u | v]`` (views)."""
    (z,) = state
    d = z.shape[1] // 2
    return z[:, :d], z[:, d:]


def predictor(state: tuple[Any, ...]) -> Any:
    """The linear predictor ``w = u*u - v*v``."""
    (z,) = state
    d = z.shape[1] // 2
    z2 = z * z
    return z2[:, :d] - z2[:, d:]


def loss_grad(problem_data: tuple[Any, Any], state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple[Any]]:
    r"""Loss and its hand-written gradient, batched.

    Parameters
    ----------
    problem_data : (X, y) on the backend, shapes (n, d) and (n,)
    state : (z,) with z = [u | v] of shape (B, 2d)
    weights : (B, n) or None
        Sample weights summing to one per run; ``None`` is the uniform 1/n.

    Returns
    -------
    loss : (B,)
        :math:`\sum_j \omega_j r_j^2 / 2`, :math:`r = Xw - y`, :math:`w = u^2 - v^2`.
    grads : (grad_z,)
        :math:`[2u \odot g \mid -2v \odot g]`, :math:`g = X^\top(\omega \odot r)`.
    """
    X, y = problem_data
    xp = xp_of(X)
    w = predictor(state)
    r = xp.matmul(w, X.T) - y  # (B, n)
    if weights is None:
        n = X.shape[0]
        loss = xp.sum(r * r, axis=1) / (2 * n)
        g2 = xp.matmul(r, X) * (2.0 / n)
    else:
        wr = weights * r
        loss = xp.sum(wr * r, axis=1) / 2
        g2 = 2.0 * xp.matmul(wr, X)
    (z,) = state
    return loss, (z * xp.concat([g2, -g2], axis=1),)


def observe(problem_data: tuple[Any, Any], w_star: Any, state: tuple[Any, ...], record_w: bool = False,
            shaped: bool = False) -> dict[str, Any]:
    """Observables: ``loss``, ``l1`` (:math:`\\|w\\|_1`), ``distance`` (to the teacher), optionally ``w``."""
    return observe_w(problem_data, w_star, shaped_predictor(state) if shaped else predictor(state), record_w)


def observe_w(problem_data: tuple[Any, Any], w_star: Any, w: Any, record_w: bool = False) -> dict[str, Any]:
    """The observables of :func:`observe` from the predictor ``w`` (B, d), in whichever coordinates it came."""
    X, y = problem_data
    xp = xp_of(X)
    r = xp.matmul(w, X.T) - y
    out = {"loss": xp.sum(r * r, axis=1) / (2 * X.shape[0]), "l1": xp.sum(xp.abs(w), axis=1)}
    if w_star is not None:
        diff = w - w_star
        out["distance"] = xp.sqrt(xp.sum(diff * diff, axis=1))
    if record_w:
        out["w"] = w
    return out


def default_loss_tol(problem: Problem, alpha: np.ndarray, dtype: str, rel_error: float, *,
                     cancellation: bool = True) -> np.ndarray:
    r"""Per-run convergence threshold: the loss below which the residual is noise.

    The larger of two floors:

    * round-off in :math:`r = Xw - y`: ``(1e3 eps)^2 mean(y^2) / 2``;
    * the relative error ``rel_error`` of ``u`` and ``v`` (the flow's ``rtol``;
      ``eps`` for discrete steps). It is an absolute error
      :math:`\text{rel}\,(u_i^2 + v_i^2) \le \text{rel}\,(|w_i| + 2\alpha^2)` on
      each coordinate of :math:`w = u^2 - v^2` (at large alpha the
      cancellation makes it large), hence a residual of about
      :math:`\text{rel}\,\|x_j\|\,(\|w\|/\sqrt d + 2\alpha^2)` per sample,
      with :math:`\|w\|_2` bounded by :math:`\|w_{\ell_2}\|_1` of the minimum-norm
      interpolator: it bounds the l2 norm of both limits, the min-l2 interpolator and the
      min-l1 one (:math:`\|w_{\ell_1}\|_2 \le \|w_{\ell_1}\|_1 \le \|w_{\ell_2}\|_1`), which
      is sparse and can be several times longer than :math:`w_{\ell_2}` when n << d (the norm of
      :math:`w_{\ell_2}` itself left a 5 x 164 problem stalled on the floor). A margin of
      10 keeps the threshold above what the integrator resolves: below it the
      loss stalls on this floor and the run would never stop.

    ``cancellation=False`` drops the :math:`2\alpha^2` term, for the reduced coordinates
    (:mod:`sims.diagonal_reduced`): there :math:`w = -(u_0^2 + v_0^2)\sinh(2X^\top\mu)` has no
    difference of squares, and the :math:`\mu`-flow's only equilibrium is the limit itself
    (:math:`Xw(\mu) = y` has one solution, the map being strictly monotone), so the integration
    error moves the path but not where it ends: the loss falls to round-off at every alpha, and
    the threshold only has to put the stopped state within about ``rel_error`` of the limit
    (measured by ``benchmarks/diagonal_flow.py``: 1e-6 at rtol 1e-8 for alpha from 1e-3 to 3, where
    the full coordinates' threshold leaves 5e-5 at alpha = 3).

    Returns an array ``(B,)``.
    """
    eps = float(np.finfo(np.dtype(dtype)).eps)
    roundoff = (1e3 * eps) ** 2 * (float(np.mean(problem.y**2)) / 2 or 1.0)
    row_sq = float(np.mean(np.sum(problem.X**2, axis=1)))
    w_ref = float(np.sum(np.abs(np.linalg.lstsq(problem.X, problem.y, rcond=None)[0])))
    coord = w_ref / math.sqrt(problem.d) + (2.0 if cancellation else 0.0) * np.max(alpha, axis=1) ** 2
    integration = 0.5 * (10 * max(rel_error, eps) * coord) ** 2 * row_sq
    return np.maximum(roundoff, integration)


def simulate(
    problem: Problem,
    alpha: Any,
    algorithm: Any = "flow",
    *,
    lr: Any = None,
    steps: int | None = None,
    t_max: float | None = None,
    shape: float = 0.0,
    record_w: bool = False,
    coordinates: str | None = None,
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: Any = None,
    **options: Any,
) -> Trajectory:
    r"""Train a batch of diagonal linear networks.

    Parameters
    ----------
    problem : Problem
    alpha : float, 1-D array (B,) or 2-D array (B, d)
        Initial scale ``u(0) = v(0) = alpha``; one run per row. A single
        scale with one ``lr`` per run gives one run per step size.
    algorithm : {"flow", "gd", "sgd", "sam", "gr"} or an algorithm object
        Gradient flow (adaptive Dormand-Prince), gradient descent, mini-batch
        SGD, SAM, or gradient descent on the gradient-regularised loss
        :math:`L + \tfrac{\lambda}{2}\|\nabla L\|^2` (``lam``; ``gr_eps`` is the
        finite-difference step of Karakida et al. 2023, see
        :class:`sims.rules.GradientRegularized`); or ``flow.Flow(...)``,
        ``flow.SGD(...)``... (see :mod:`sims.driver`).
    lr : float or 1-D array (B,), required by the discrete algorithms
        Step size (one per run if an array).
    steps : int, optional
        Step budget of a discrete algorithm (default ``ceil(t_max / min(lr))``).
    t_max : float, optional
        Flow: final time. Default 1e4.
    shape : float in (-1, 1)
        0 simulates :math:`w = u^2 - v^2`; otherwise the shaped network
        :math:`w = u_+ v_+ - u_- v_-` with :math:`u_0 v_0 = \alpha^2` and
        :math:`(u_0^2 - v_0^2)/(u_0^2 + v_0^2) =` ``shape`` (Azulay et al. 2021; see
        :func:`shaped_initial_state`).
    record_w : bool
        Also record the predictor ``w`` at every output time.
    coordinates : {"reduced", "full"}, optional
        ``"reduced"`` integrates the exact n-dimensional :math:`\mu`-flow
        (:mod:`sims.diagonal_reduced`: :math:`u = u_0e^{-2X^\top\mu}`...) by the
        Rosenbrock-W integrator; ``"full"`` integrates all the factors. Default:
        reduced for gradient flow (``"flow"``, or a ``Flow`` with a Rosenbrock
        tableau), full for the discrete algorithms, which have no reduction.
    seed : int
        Seed of SGD's mini-batch schedule (initial states are deterministic).
    backend, dtype, device
        Array backend (see :func:`sims.backend.namespace`), precision, and the
        backend's device (``None``: its default).
    **options
        The driver's options (:mod:`sims.driver`): ``batch_size, rho,
        sam_normalized, lam, gr_eps, t_eval, rtol, atol, max_steps, loss_tol,
        grad_tol``. Here ``atol`` defaults to 0 (pure relative control is right:
        ``u`` and ``v`` stay strictly positive, are multiplicative,
        ``u = alpha exp(-2 int g)``, and span many decades when alpha is small),
        and ``loss_tol`` to :func:`default_loss_tol`.

    Returns
    -------
    Trajectory
        ``final`` has ``w``, ``u`` and ``v`` of shape ``(B, d)`` (``w``,
        ``u_plus``... for a shaped network); observables are ``loss``, ``l1``,
        ``distance`` (when the teacher is known) and ``w`` when ``record_w``.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.diagonal.Problem; got {type(problem).__name__}")
    a = broadcast_runs(alpha_grid(alpha, problem.d), lr)
    coordinates = resolve_coordinates(coordinates, algorithm)
    m = model(problem, a, shape=shape, record_w=record_w, coordinates=coordinates, backend=backend, dtype=dtype,
              device=device)
    return train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)


def model(problem: Problem, alpha: Any, *, shape: float = 0.0, record_w: bool = False, coordinates: str = "full",
          backend: str = "numpy", dtype: str = "float64", device: Any = None) -> Model:
    """The diagonal network on ``problem`` from scale ``alpha``, as the driver's :class:`~sims.driver.Model`
    (see :func:`simulate` for the arguments; its ``loss_grad`` takes per-sample weights)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.diagonal.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    shape = float(real_array("shape", shape, 0))
    if not -1 < shape < 1:
        raise ValueError(f"shape must lie in (-1, 1); got {shape}")
    shaped = shape != 0.0
    coordinates = choice("coordinates", coordinates, COORDINATES)
    xp = namespace(backend)
    a = alpha_grid(alpha, problem.d)
    meta = {"problem": {"n": problem.n, "d": problem.d, "noise": problem.noise, "digest": problem.digest()},
            "alpha": a[:, 0].tolist() if np.all(a == a[:, :1]) else a.tolist(), "shape": shape}
    if coordinates == "reduced":
        return reduced_model(problem, a, shape=shape, record_w=bool(record_w), backend=backend, dtype=dtype,
                             device=device, meta=meta,
                             loss_tol=lambda rel: default_loss_tol(problem, a, dtype, rel, cancellation=False))
    if shaped:
        state0 = shaped_initial_state(problem, a, shape, backend=backend, dtype=dtype, device=device)
    else:
        state0 = initial_state(problem, a, backend=backend, dtype=dtype, device=device)
    model_grad = shaped_loss_grad if shaped else loss_grad
    data = (asarray(problem.X, xp, dtype, device), asarray(problem.y, xp, dtype, device))
    w_star = None if problem.w_star is None else asarray(problem.w_star, xp, dtype, device)
    d = problem.d

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        (z,) = host
        if shaped:
            return {"w": shaped_predictor(host), "u_plus": z[:, :d], "v_plus": z[:, d : 2 * d],
                    "u_minus": z[:, 2 * d : 3 * d], "v_minus": z[:, 3 * d :]}
        u, v = split(host)
        return {"w": u * u - v * v, "u": u, "v": v}

    return Model(
        name="diagonal",
        state0=state0,
        loss_grad=lambda state, weights=None: model_grad(data, state, weights),
        observe=lambda state: observe(data, w_star, state, bool(record_w), shaped),
        final=final,
        meta=meta,
        backend=backend, dtype=dtype, n_samples=problem.n, t_max=1e4, atol=0.0,
        loss_tol=lambda rel: default_loss_tol(problem, a, dtype, rel),
    )


def sweep_limit(*, n: int, d: int, sparsity: int, alpha: float, noise: float = 0.0, seed: int = 0,
                algorithm: str = "flow", lr: float | None = None, steps: int | None = None,
                batch_size: int | None = None, t_max: float = 1e5, backend: str = "numpy",
                device: str | None = None) -> dict[str, Any]:
    r"""Sweep task ``diagonal.limit``: one run on :meth:`Problem.random`, summarised.

    Returns the status, the step count at the stop, the stopping time, final loss, :math:`\|w\|_1` and
    the distance to the teacher (numbers only, so a sweep store is plain JSON).
    """
    problem = Problem.random(n, d, sparsity, noise=noise, seed=seed)
    traj = simulate(problem, alpha, algorithm, lr=lr, steps=steps, batch_size=batch_size, t_max=t_max, seed=seed,
                    backend=backend, device=device)
    w = traj.final["w"][0]
    return {
        "status": str(traj.status[0]),
        "stop_step": int(traj.stop_step[0]),
        "stop_time": float(traj.stop_time[0]),
        "loss": float(0.5 * np.mean((problem.X @ w - problem.y) ** 2)),
        "l1": float(np.abs(w).sum()),
        "distance": float(np.linalg.norm(w - problem.w_star)),
    }


def sweep_gd_phase(*, n: int, d: int, sparsity: int, lr_scale: float, alphas: list[float], noise: float = 0.0,
                   seed: int = 0, steps: int = 20_000, backend: str = "numpy",
                   device: str | None = None) -> dict[str, Any]:
    r"""Sweep task ``diagonal.gd_phase``: GD on :meth:`Problem.random` at step
    :math:`\eta = \text{lr\_scale} / \lambda_{\max}(X^\top X/n)` from every scale of ``alphas`` at once (one batched
    run of ``len(alphas)`` networks), summarised per scale: a row of a phase diagram over (alpha, step size).

    Returns ``lr``; and per scale, in the order of ``alphas``: ``status`` (``converged``, ``diverged`` with the
    step in ``stop_step``, or ``out_of_time``), ``stop_step``, ``distance`` (:math:`\|w - w^*\|`, ``nan`` for a
    diverged run) and ``l1`` (:math:`\|w\|_1`, likewise). Even, Pesme, Gunasekar & Flammarion 2023 (Sec. 3): large
    steps shrink GD's effective scale unevenly, so the limit drifts from the sparse one as the step grows, until
    GD leaves its stability region and diverges.
    """
    a = positive_array("alphas", alphas, 1)
    lr_scale = positive_float("lr_scale", lr_scale)
    problem = Problem.random(n, d, sparsity, noise=noise, seed=seed)
    lr = lr_scale / float(np.linalg.eigvalsh(problem.X.T @ problem.X / problem.n)[-1])
    traj = simulate(problem, a, "gd", lr=lr, steps=steps, seed=seed, backend=backend, device=device)
    w = np.asarray(traj.final["w"], dtype=float)
    bad = traj.status == "diverged"
    dist = np.where(bad, np.nan, np.linalg.norm(w - problem.w_star, axis=1))
    return {"lr": lr, "status": [str(x) for x in traj.status], "stop_step": [int(k) for k in traj.stop_step],
            "distance": [float(x) for x in dist], "l1": [float(x) for x in np.where(bad, np.nan, np.abs(w).sum(axis=1))]}


def simulate_rescaled(problem: Problem, alphas: Any, tau: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray, Trajectory]:
    r"""Gradient flow for several alphas, read at common *rescaled* times :math:`\tilde t = t/\ln(1/\alpha)`.

    The saddle-to-saddle limit (Pesme & Flammarion 2023) lives on this time
    scale. One batched run: the real output times are the union of
    :math:`\tilde t \ln(1/\alpha_b)` over the batch, and each run is read at its own.

    Returns
    -------
    w : ndarray (B, T, d)
    loss : ndarray (B, T)
    traj : Trajectory
        The underlying run (on the union of the real times).
    """
    a = positive_array("alphas", alphas, 1)
    if np.any(a >= 1):
        raise ValueError("alphas must lie in (0, 1): the rescaling divides by ln(1/alpha)")
    tau = positive_array("tau", tau, 1)
    if np.any(np.diff(tau) <= 0):
        raise ValueError("tau must be strictly increasing")
    scale = np.log(1 / a)
    t_eval = np.unique(np.concatenate([[0.0], (tau[None, :] * scale[:, None]).ravel()]))
    traj = simulate(problem, a, t_max=float(t_eval[-1]), t_eval=t_eval, record_w=True, **kwargs)
    cols = np.searchsorted(t_eval, tau[None, :] * scale[:, None])
    rows = np.arange(len(a))[:, None]
    return traj.observables["w"][rows, cols], traj.observables["loss"][rows, cols], traj
