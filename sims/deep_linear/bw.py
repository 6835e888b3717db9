r"""A generative deep linear network fitted to a covariance by the Bures-Wasserstein loss, simulated.

Bréchet, Papagiannouli, An & Montúfar 2023 (ICML): the generator :math:`x = W_N\cdots W_1 z`,
:math:`z \sim N(0, I_{d_0})`, has covariance :math:`\Sigma = WW^\top` of rank at most the narrowest
width; it is fitted to a target :math:`\Sigma_0` by

.. math:: L_\tau(W) = B^2(\Sigma_0, WW^\top + \tau I)
          = \operatorname{tr}\Sigma_0 + \operatorname{tr}(WW^\top + \tau I)
          - 2\operatorname{tr} M^{1/2}, \qquad M = \Sigma_0^{1/2}(WW^\top + \tau I)\Sigma_0^{1/2},

:math:`\tau = 0` the Bures-Wasserstein loss itself and :math:`\tau > 0` a smooth perturbation of it
(see :mod:`theory.deep_linear.bw` for why this form). The gradient written by hand: from
:math:`d\operatorname{tr}M^{1/2} = \tfrac12\operatorname{tr}(M^{-1/2}dM)` and
:math:`dM = \Sigma_0^{1/2}(dW\,W^\top + W\,dW^\top)\Sigma_0^{1/2}`,

.. math:: \nabla_W L_\tau = 2(I - T)W, \qquad T = \Sigma_0^{1/2} M^{-1/2} \Sigma_0^{1/2},

(:math:`T` is the Brenier map from :math:`N(0, WW^\top + \tau I)` to :math:`N(0, \Sigma_0)`), and each
factor's gradient is :math:`A_j^\top (\nabla_W L) B_j^\top` as for the square loss
(:mod:`sims.deep_linear`). At :math:`\tau = 0` and rank-deficient :math:`W`, :math:`M^{-1/2}` is the
pseudo-inverse square root on the range of :math:`M` (at :math:`\tau = 0` only: eigenvalues below
``d * 1e3 * eps`` times the largest count as zero; for :math:`\tau > 0` every positive one is inverted): :math:`\Sigma_0^{1/2}M^{+1/2}\Sigma_0^{1/2}W = \Sigma_0^{1/2}UV^\top` for
:math:`\Sigma_0^{1/2}W = USV^\top`, the gradient of :math:`\|W\|^2 - 2\|\Sigma_0^{1/2}W\|_*` where it
exists. That is where the loss is not smooth: the Hessian of the nuclear norm grows like
:math:`1/s_{\min}(\Sigma_0^{1/2}W)`, the blow-up the paper's perturbation removes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine._validate import choice, positive_array, positive_int, real_array, scale_array
from ..engine.backend import DTYPES, asarray, check_seed, host_rng, namespace, xp_of
from ..engine.driver import Model, broadcast_runs, resolve_coordinates, train
from ..engine.matmul import chains, product, transpose
from ..engine.trajectory import Trajectory
from .dynamics import initial_state as _layers
from .problem import Problem as _Shape

__all__ = ["Problem", "loss_grad", "model", "simulate", "INITS"]

INITS = ("random", "balanced")


@dataclass(frozen=True, eq=False)
class Problem:
    """A target covariance and the widths of the generator that fits it.

    Attributes
    ----------
    covariance : ndarray (d, d)
        :math:`\\Sigma_0`, symmetric positive semi-definite.
    hidden : tuple of int
        Hidden widths :math:`h_1, \\dots, h_{N-1}` (depth ``len(hidden) + 1``).
    latent : int
        :math:`d_0`, the dimension of the generator's input noise :math:`z`.
    """

    covariance: np.ndarray
    hidden: tuple[int, ...] = ()
    latent: int | None = None

    def __post_init__(self) -> None:
        c = real_array("covariance", self.covariance, 2)
        if c.shape[0] != c.shape[1] or c.shape[0] > 1000:
            raise ValueError(f"covariance must be a square (d, d) matrix with d <= 1000; got shape {c.shape}")
        if not np.all(np.isfinite(c)) or not np.allclose(c, c.T, rtol=0, atol=1e-12 * max(1.0, float(np.abs(c).max()))):
            raise ValueError("covariance must be finite and symmetric")
        c = (c + c.T) / 2
        if np.linalg.eigvalsh(c)[0] < -1e-12 * max(1.0, float(np.abs(c).max())):
            raise ValueError("covariance must be positive semi-definite")
        object.__setattr__(self, "covariance", c)
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            raise TypeError("hidden must be a tuple of integers >= 1 (the hidden widths)")
        object.__setattr__(self, "hidden", tuple(positive_int("hidden width", h, 1, 10_000) for h in self.hidden))
        latent = c.shape[0] if self.latent is None else positive_int("latent", self.latent, 1, 10_000)
        object.__setattr__(self, "latent", latent)

    @property
    def d(self) -> int:
        return self.covariance.shape[0]

    @property
    def depth(self) -> int:
        return len(self.hidden) + 1

    @property
    def widths(self) -> tuple[int, ...]:
        """``(d_0, h_1, ..., h_{N-1}, d)``."""
        return (self.latent,) + self.hidden + (self.d,)

    @property
    def rank_bound(self) -> int:
        """:math:`k = \\min` of the widths: the largest rank :math:`WW^\\top` can have."""
        return min(self.widths)

    def eigh(self) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (decreasing) and eigenvectors of the target."""
        lam, vec = np.linalg.eigh(self.covariance)
        return lam[::-1], vec[:, ::-1]

    def root(self) -> np.ndarray:
        """:math:`\\Sigma_0^{1/2}` (from the eigendecomposition, negative round-off clipped)."""
        lam, vec = self.eigh()
        return (vec * np.sqrt(np.maximum(lam, 0.0))) @ vec.T

    def digest(self) -> str:
        return hashlib.sha256(self.covariance.tobytes() + repr(self.widths).encode()).hexdigest()[:16]

    @classmethod
    def random(cls, d: int, hidden: tuple[int, ...] = (), latent: int | None = None, eigenvalues: Any = None,
               seed: int = 0) -> "Problem":
        """A target :math:`Q\\operatorname{diag}(\\lambda)Q^\\top` with Haar-random :math:`Q` (default
        eigenvalues evenly spaced from 2 down to 0.2: distinct, so every critical point is isolated)."""
        d = positive_int("d", d, 1, 1000)
        lam = np.linspace(2.0, 0.2, d) if eigenvalues is None else positive_array("eigenvalues", eigenvalues, 1)
        if lam.shape[0] != d:
            raise ValueError(f"eigenvalues must have d = {d} entries; got {lam.shape[0]}")
        q, _ = np.linalg.qr(host_rng(seed).standard_normal((d, d)))
        return cls(covariance=(q * lam) @ q.T, hidden=tuple(hidden), latent=latent)


def loss_grad(root: Any, layers: tuple[Any, ...], tau: float = 0.0) -> tuple[Any, tuple[Any, ...]]:
    r""":math:`L_\tau` per run and its gradients :math:`A_j^\top\,2(I - T)W\,B_j^\top` (module docstring).

    ``root`` is :math:`\Sigma_0^{1/2}` on the device, ``layers`` the factors ``(B, h_j, h_{j-1})``.
    """
    xp = xp_of(layers[0])
    pre, suf = chains(layers)
    w = xp.matmul(layers[-1], pre[-1])  # (B, d, d_0)
    d = w.shape[1]
    cov = xp.matmul(w, transpose(w))
    m = xp.matmul(xp.matmul(root, cov), root)
    if tau:
        m = m + tau * xp.matmul(root, root)
    m = (m + transpose(m)) / 2
    evals, evecs = xp.linalg.eigh(m)
    evals = xp.where(evals > 0, evals, 0.0 * evals)  # round-off below zero on the null space of M
    if tau:
        kept = evals > 0  # M = S0^{1/2}(WW^T + tau I)S0^{1/2} is positive definite: nothing to cut
    else:
        # the pseudo-inverse on the range of M: WW^T has rank <= k, its null space's eigenvalues are
        # round-off of size d eps ||M||
        top = xp.max(evals, axis=1, keepdims=True)
        floor = d * 1e3 * float(np.finfo(np.float64 if evals.dtype == xp.float64 else np.float32).eps)
        kept = evals > floor * top
    roots = xp.sqrt(evals)
    inv = xp.where(kept, 1.0 / xp.where(kept, roots, 1.0), 0.0 * roots)
    transport = xp.matmul(xp.matmul(root, evecs * inv[:, None, :]), xp.matmul(transpose(evecs), root))
    grad_w = 2 * (w - xp.matmul(transport, w))
    trace_target = xp.sum(root * root, axis=(-2, -1))  # tr(S0) = ||S0^{1/2}||_F^2
    # the kept roots only: round-off eigenvalues ~eps on M's null space would add ~sqrt(eps) each
    loss = trace_target + xp.sum(w * w, axis=(1, 2)) + tau * d - 2 * xp.sum(roots * inv * roots, axis=1)
    grads = tuple(xp.matmul(xp.matmul(transpose(a), grad_w), transpose(b)) for a, b in zip(suf, pre))
    return loss, grads


def initial_state(problem: Problem, alpha: Any, init: str = "random", *, seed: int = 0, backend: str = "numpy",
                  dtype: str = "float64", device: Any = None) -> tuple[Any, ...]:
    r"""Factors at end-to-end scale ``alpha`` (one run per value), as :func:`sims.deep_linear.initial_state`:
    ``"random"`` Gaussian entries of variance :math:`\alpha^{2/N}/h_{j-1}`, ``"balanced"`` the balanced start
    :math:`W = \alpha PQ^\top` on random orthonormal frames (:math:`W_{j+1}^\top W_{j+1} = W_jW_j^\top`)."""
    init = choice("init", init, INITS)
    shape = _Shape(target=np.zeros((problem.d, problem.latent)), hidden=problem.hidden)
    return _layers(shape, alpha, init, seed=seed, backend=backend, dtype=dtype, device=device)


def model(problem: Problem, alpha: Any = 1e-2, *, tau: float = 0.0, init: str = "random", layers: Any = None,
          seed: int = 0, backend: str = "numpy", dtype: str = "float64", device: Any = None) -> Model:
    """The generator on ``problem`` as the driver's :class:`~sims.engine.driver.Model` (arguments as in :func:`simulate`)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.deep_linear.bw.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    seed = check_seed(seed)
    tau = float(tau)
    if not np.isfinite(tau) or tau < 0:
        raise ValueError(f"tau (the perturbation of the loss) must be finite and >= 0; got {tau}")
    xp = namespace(backend)
    if layers is not None:
        given = [np.asarray(w, dtype=float) for w in layers]
        if len(given) != problem.depth:
            raise ValueError(f"layers must hold depth = {problem.depth} arrays; got {len(given)}")
        for j, w in enumerate(given):
            want = (problem.widths[j + 1], problem.widths[j])
            if w.ndim != 3 or w.shape[1:] != want or w.shape[0] != given[0].shape[0]:
                raise ValueError(f"layers[{j}] must have shape (B, {want[0]}, {want[1]}); got {w.shape}")
            if not np.all(np.isfinite(w)):
                raise ValueError(f"layers[{j}] must be finite")
        state0 = tuple(asarray(w, xp, dtype, device) for w in given)
    else:
        state0 = initial_state(problem, alpha, init, seed=seed, backend=backend, dtype=dtype, device=device)
    lam, vec = problem.eigh()
    root = asarray(problem.root(), xp, dtype, device)
    basis = asarray(vec, xp, dtype, device)

    def observe(state: tuple[Any, ...]) -> dict[str, Any]:
        loss, _ = loss_grad(root, state, tau)
        w = product(state)
        cov = xp.matmul(w, transpose(w))
        # Sigma on the target's eigenvectors: lambda_i - tau at a critical point's kept modes, 0 elsewhere
        spectrum = xp.sum(xp.matmul(transpose(basis), cov) * transpose(basis), axis=2)
        return {"loss": loss, "spectrum": spectrum}

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        out = {f"layer_{j + 1}": w for j, w in enumerate(host)}
        prod = host[0]
        for w in host[1:]:
            prod = np.matmul(w, prod)
        out["covariance"] = np.matmul(prod, np.swapaxes(prod, 1, 2))
        return out

    return Model(
        name="deep_linear_bw", state0=state0,
        loss_grad=lambda state, weights=None: loss_grad(root, state, tau),
        observe=observe, final=final,
        meta={"widths": list(problem.widths), "tau": tau, "problem": {"digest": problem.digest()},
              "init": init if layers is None else "given", "eigenvalues": [float(x) for x in lam]},
        backend=backend, dtype=dtype, t_max=100.0, atol=1e-14,
    )


def simulate(problem: Problem, alpha: Any = 1e-2, algorithm: Any = "flow", *, lr: Any = None,
             steps: int | None = None, t_max: float | None = None, tau: float = 0.0, init: str = "random", layers: Any = None,
             coordinates: str | None = None, seed: int = 0, backend: str = "numpy", dtype: str = "float64",
             device: Any = None, **options: Any) -> Trajectory:
    r"""Train a batch of generators on :math:`L_\tau(W) = B^2(\Sigma_0, WW^\top + \tau I)`.

    Parameters
    ----------
    problem : Problem
    alpha : float or 1-D array
        Initial end-to-end scale (one run per value); ignored when ``layers`` is given.
    algorithm : {"flow", "gd"} or an algorithm object
        Gradient flow (adaptive Dormand-Prince) or gradient descent (Bréchet et al.'s two results);
        the driver's other rules run too (:mod:`sims.engine.driver`), SGD excepted (no samples).
    tau : float
        The perturbation: 0 is the Bures-Wasserstein loss, > 0 its smooth version.
    lr, steps, t_max
        Step size, step budget, horizon (flow: default 100).
    init : {"random", "balanced"}
        See :func:`initial_state`.
    layers : sequence of arrays, optional
        Explicit initial factors ``(B, h_j, h_{j-1})``.
    coordinates : {"full"}, optional
        Only the full factors: no reduction is implemented (the transport map couples every mode
        unless the start commutes with the target).
    seed, backend, dtype, device
        As in every family.
    **options
        The driver's options; ``atol`` defaults to 1e-14, ``loss_tol`` to 0.

    Returns
    -------
    Trajectory
        Observables ``loss`` (:math:`L_\tau`) and ``spectrum`` (:math:`v_i^\top\Sigma v_i` on the target's
        eigenvectors, eigenvalues decreasing); ``final`` has ``layer_j`` and ``covariance``.
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.deep_linear.bw.Problem; got {type(problem).__name__}")
    if layers is None:
        alpha = broadcast_runs(np.atleast_1d(scale_array("alpha", alpha, (0, 1)))[:, None], lr)[:, 0]
    resolve_coordinates(coordinates, algorithm, stiff=False,
                        refusal="no reduced coordinates are implemented for the Bures-Wasserstein generator")
    m = model(problem, alpha, tau=tau, init=init, layers=layers, seed=seed, backend=backend, dtype=dtype,
              device=device)
    return train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)
