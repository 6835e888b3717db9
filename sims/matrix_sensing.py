r"""Matrix sensing with factorised models, simulated.

A low-rank ground truth :math:`M^* \in \mathbb{R}^{n_1\times n_2}` (PSD for the
symmetric case) is observed through a near-isometric linear operator
(:mod:`sims.matrix_sensing_operator`): :math:`y = \mathcal A(M^*) + \text{noise}`,
a fraction of gross outliers optional. The model is a factorisation

* ``"symmetric"``: :math:`M = XX^\top`, :math:`X \in \mathbb{R}^{n\times k}` (Burer-Monteiro);
* ``"asymmetric"``: :math:`M = FG^\top`, :math:`F \in \mathbb{R}^{n_1\times k}`, :math:`G \in \mathbb{R}^{n_2\times k}`;
* ``"deep"``: :math:`M = W_N\cdots W_1` (Arora, Cohen, Hu, Luo 2019), hidden width ``k``;

and the loss is one of

* ``"l2"``: :math:`f = s\,\|\mathcal A(M) - y\|^2` with ``loss_scale`` :math:`s`. The
  default :math:`s = 1/2` is the library's; ScaledGD(:math:`\lambda`) (Xu et al.
  2023) and Xiong, Ding, Du 2023 write :math:`f = \frac14\|\cdot\|^2`
  (``loss_scale=0.25``): the same flow at half the speed, the same GD at twice the step.
* ``"l1"``: :math:`f = \frac{1}{\sqrt m}\sum_i |\langle A_i, M\rangle - y_i|`: with our
  :math:`A_i` of variance-:math:`1/m` entries this is exactly Ma & Fattahi 2023's
  :math:`\frac1m\sum_i|\langle \tilde A_i, M\rangle - \tilde y_i|` for standard Gaussian
  :math:`\tilde A_i = \sqrt m A_i`.

Gradients, by hand, with :math:`G_M = \nabla_M f = 2s\,\mathcal A^*(r)` (l2) or
:math:`\frac{1}{\sqrt m}\mathcal A^*(\operatorname{sign} r)` (a sub-gradient of l1):
:math:`\nabla_X = (G_M + G_M^\top)X`, :math:`\nabla_F = G_M G`, :math:`\nabla_G = G_M^\top F`,
:math:`\nabla_{W_j} = (W_N\cdots W_{j+1})^\top G_M (W_{j-1}\cdots W_1)^\top`. With SGD's
per-measurement weights :math:`\omega` (rows summing to one) the sum
:math:`\sum_i r_i^2` becomes :math:`m\sum_i \omega_i r_i^2`.

Examples
--------
>>> problem = Problem.random(10, 10, rank=2, m=200, symmetric=True, operator="symmetric", seed=0)
>>> traj = simulate(problem, alpha=[1e-3, 1e-2], k=4, t_max=50.0)
>>> traj.final["M"].shape
(2, 10, 10)
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .engine._validate import choice, nonneg_float, positive_float, positive_int, real_array, scale_array, shown
from .engine.backend import DTYPES, asarray, check_seed, init_rng, namespace, xp_of
from .matrix_sensing_reduced import reduced_model, reduced_refusal
from .engine.driver import COORDINATES, resolve_coordinates, ALGORITHMS as DRIVER_ALGORITHMS, Model, broadcast_runs, train
from .engine.matmul import chains, layer_gradients, product, transpose
from .matrix_sensing_operator import DeviceOperator, device_operator
from .engine.rules import ScaledGD, Subgradient
from .engine.trajectory import Trajectory

__all__ = ["ALGORITHMS", "FACTORISATIONS", "INITS", "LOSSES", "OPERATORS", "Problem", "end_to_end",
           "initial_state", "loss_grad", "model", "simulate", "sweep_recovery"]

OPERATORS = ("gaussian", "symmetric", "completion", "population")
FACTORISATIONS = ("symmetric", "asymmetric", "deep")
LOSSES = ("l2", "l1")
INITS = ("random", "aligned")
#: The driver's algorithms plus ScaledGD(lambda) (``damping``) and the sub-gradient method (``decay``).
ALGORITHMS = DRIVER_ALGORITHMS + ("scaledgd", "subgradient")
#: Largest dense operator Problem.random builds, in entries (3.2 GB in float64).
MAX_ENTRIES = 4 * 10**8
#: Size of a gross outlier, in units of the typical clean measurement ||M*||_F / sqrt(m).
OUTLIER_SCALE = 10.0


@dataclass(frozen=True, eq=False)
class Problem:
    r"""A matrix-sensing problem: ground truth, operator and measurements.

    Attributes
    ----------
    M_star : ndarray (n1, n2)
        The ground truth.
    operator : {"gaussian", "symmetric", "completion", "population"}
    A : ndarray (m, n1, n2) or None
        Measurement matrices (``gaussian``: i.i.d. :math:`N(0, 1/m)` entries;
        ``symmetric``: :math:`(G + G^\top)/2` of such a :math:`G`).
    mask : bool ndarray (n1, n2) or None
        Observed entries (``completion``).
    y : ndarray (m,) or None
        Measurements :math:`\mathcal A(M^*)` + noise; for completion the observed entries in
        ``np.flatnonzero(mask)`` order, scaled by :math:`1/\sqrt p` like the operator; ``None``
        for the population operator (the loss is the distance to ``M_star``).
    noise : float
        Standard deviation of the dense Gaussian noise added to ``y``.
    outliers : float in [0, 1)
        Fraction of grossly corrupted measurements (provenance; ``corrupted`` says which).
    corrupted : bool ndarray (m,) or None
    symmetric : bool
        ``M_star`` is PSD and a symmetric factorisation ``X X^T`` may fit it.
    """

    M_star: np.ndarray
    operator: str = "population"
    A: np.ndarray | None = None
    mask: np.ndarray | None = None
    y: np.ndarray | None = None
    noise: float = 0.0
    outliers: float = 0.0
    corrupted: np.ndarray | None = None
    symmetric: bool = False

    def __post_init__(self) -> None:
        M = real_array("M_star", self.M_star, 2)
        object.__setattr__(self, "M_star", M)
        op = choice("operator", self.operator, OPERATORS)
        n1, n2 = M.shape
        if not isinstance(self.symmetric, (bool, np.bool_)):
            raise TypeError(f"symmetric must be a bool; got {type(self.symmetric).__name__}")
        if self.symmetric:
            if n1 != n2 or not np.allclose(M, M.T, atol=1e-12 * max(1.0, np.abs(M).max())):
                raise ValueError("symmetric=True needs a square symmetric M_star")
            if np.linalg.eigvalsh(M)[0] < -1e-10 * max(1.0, np.abs(M).max()):
                raise ValueError("symmetric=True needs a positive semi-definite M_star (it is fitted by X X^T)")
        if op in ("gaussian", "symmetric"):
            A = real_array("A", self.A, 3)
            if A.shape[1:] != (n1, n2):
                raise ValueError(f"A must have shape (m, n1={n1}, n2={n2}); got {A.shape}")
            if op == "symmetric" and not np.allclose(A, np.transpose(A, (0, 2, 1))):
                raise ValueError("operator='symmetric' needs symmetric measurement matrices A_i")
            object.__setattr__(self, "A", A)
            m = A.shape[0]
        elif self.A is not None:
            raise ValueError(f"A is only for the gaussian and symmetric operators, not {shown(op)}")
        if op == "completion":
            mask = np.asarray(self.mask)
            if mask.dtype != bool or mask.shape != (n1, n2):
                raise ValueError(f"mask must be a boolean array of shape ({n1}, {n2})")
            if not mask.any():
                raise ValueError("mask must observe at least one entry")
            object.__setattr__(self, "mask", mask)
            m = int(mask.sum())
        elif self.mask is not None:
            raise ValueError(f"mask is only for operator='completion', not {shown(op)}")
        if op == "population":
            if self.y is not None:
                raise ValueError("the population operator has no measurements y (the loss is the distance to M_star)")
        else:
            y = real_array("y", self.y, 1)
            if y.shape[0] != m:
                raise ValueError(f"y must have one entry per measurement (m={m}); got {y.shape[0]}")
            object.__setattr__(self, "y", y)
        object.__setattr__(self, "noise", nonneg_float("noise", self.noise))
        out = nonneg_float("outliers", self.outliers)
        if out >= 1:
            raise ValueError(f"outliers must lie in [0, 1); got {out}")
        object.__setattr__(self, "outliers", out)
        if op == "population" and (self.noise or out):
            raise ValueError("the population operator measures M_star exactly: noise and outliers must be 0")

    @property
    def n1(self) -> int:
        return int(self.M_star.shape[0])

    @property
    def n2(self) -> int:
        return int(self.M_star.shape[1])

    @property
    def m(self) -> int:
        """Number of measurements (``n1 n2`` for the population operator)."""
        if self.A is not None:
            return int(self.A.shape[0])
        if self.mask is not None:
            return int(self.mask.sum())
        return self.n1 * self.n2

    @property
    def singular_values(self) -> np.ndarray:
        """Singular values of ``M_star`` (decreasing)."""
        return np.linalg.svd(self.M_star, compute_uv=False)

    @property
    def rank(self) -> int:
        s = self.singular_values
        return int(np.sum(s > s[0] * max(self.n1, self.n2) * np.finfo(float).eps)) if s[0] > 0 else 0

    @property
    def kappa(self) -> float:
        """Condition number :math:`\\sigma_1/\\sigma_r` of ``M_star``."""
        s = self.singular_values[: max(self.rank, 1)]
        return float(s[0] / s[-1]) if s[-1] > 0 else math.inf

    def measure(self, M: np.ndarray) -> np.ndarray:
        """:math:`\\mathcal A(M)` for host matrices ``(..., n1, n2)`` (completion: the scaled observed entries)."""
        M = np.asarray(M, dtype=float)
        if self.A is not None:
            return M.reshape(M.shape[:-2] + (-1,)) @ self.A.reshape(self.m, -1).T
        if self.mask is not None:
            return M[..., self.mask] / math.sqrt(self.m / (self.n1 * self.n2))
        return M.reshape(M.shape[:-2] + (-1,))

    def digest(self) -> str:
        """A short stable hash of the data, for provenance in results (computed once: a dense operator is
        hundreds of MB, and every simulate call records it)."""
        return self._digest

    @functools.cached_property
    def _digest(self) -> str:
        h = hashlib.sha256(self.operator.encode())
        for a in (self.M_star, self.A, self.mask, self.y):
            if a is not None:
                h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
        return h.hexdigest()[:16]

    @classmethod
    def random(cls, n1: int, n2: int, rank: int, m: int | None = None, kappa: float = 1.0, symmetric: bool = False,
               noise: float = 0.0, outliers: float = 0.0, operator: str = "gaussian", seed: int = 0,
               singular_values: Any = None) -> "Problem":
        r"""A random rank-``rank`` ground truth and its measurements.

        :math:`M^* = U\operatorname{diag}(\sigma)V^\top` with Haar-random orthonormal
        :math:`U, V` (:math:`V = U` when ``symmetric``) and singular values
        ``singular_values``, or by default geometric from :math:`\sigma_1 = 1` to
        :math:`\sigma_r = 1/\kappa`. ``operator``: ``gaussian`` (:math:`A_i` with
        i.i.d. :math:`N(0, 1/m)` entries), ``symmetric`` (their symmetrisation
        :math:`(G_i + G_i^\top)/2`, which needs ``symmetric=True``), ``completion`` (``m``
        entries observed uniformly without replacement), ``population`` (``m`` must be
        ``None``). ``noise``: i.i.d. :math:`N(0, \text{noise}^2)` added to every
        measurement; ``outliers``: that fraction of the measurements (chosen at random)
        further gets :math:`N(0, (10\|M^*\|_F/\sqrt m)^2)`, ten times a typical clean one.
        """
        n1 = positive_int("n1", n1, 1, 10**5)
        n2 = positive_int("n2", n2, 1, 10**5)
        rank = positive_int("rank", rank, 1, min(n1, n2))
        operator = choice("operator", operator, OPERATORS)
        if not isinstance(symmetric, (bool, np.bool_)):
            raise TypeError(f"symmetric must be a bool; got {type(symmetric).__name__}")
        if symmetric and n1 != n2:
            raise ValueError(f"symmetric=True needs n1 == n2; got {n1} and {n2}")
        if operator == "symmetric" and not symmetric:
            raise ValueError("operator='symmetric' needs symmetric=True")
        if singular_values is None:
            kappa = float(real_array("kappa", kappa, 0))
            if not 1 <= kappa <= 1e12:
                raise ValueError(f"kappa must lie in [1, 1e12]; got {kappa}")
            sigma = kappa ** (-np.arange(rank) / max(rank - 1, 1))
        else:
            sigma = real_array("singular_values", singular_values, 1)
            if sigma.shape[0] != rank or np.any(sigma <= 0):
                raise ValueError(f"singular_values must be {rank} numbers > 0")
            sigma = np.sort(sigma)[::-1]
        rng = np.random.default_rng(check_seed(seed))
        U = np.linalg.qr(rng.standard_normal((n1, rank)))[0]
        V = U if symmetric else np.linalg.qr(rng.standard_normal((n2, rank)))[0]
        M = (U * sigma) @ V.T
        if symmetric:
            M = (M + M.T) / 2
        if operator == "population":
            if m is not None:
                raise ValueError("m must be None for operator='population' (it measures every entry exactly)")
            return cls(M_star=M, operator="population", symmetric=bool(symmetric))
        if m is None:
            raise ValueError(f"m (the number of measurements) is required for operator={shown(operator)}")
        m = positive_int("m", m, 1, n1 * n2 if operator == "completion" else None)
        noise, outliers = nonneg_float("noise", noise), nonneg_float("outliers", outliers)
        A = mask = None
        if operator in ("gaussian", "symmetric"):
            if m * n1 * n2 > MAX_ENTRIES:
                raise ValueError(f"m * n1 * n2 must be at most {MAX_ENTRIES:.0e} entries; got {m * n1 * n2}")
            A = rng.standard_normal((m, n1, n2)) / math.sqrt(m)
            if operator == "symmetric":
                A = (A + np.transpose(A, (0, 2, 1))) / 2
            clean = A.reshape(m, -1) @ M.reshape(-1)
        else:
            mask = np.zeros(n1 * n2, dtype=bool)
            mask[rng.choice(n1 * n2, size=m, replace=False)] = True
            mask = mask.reshape(n1, n2)
            clean = M[mask] / math.sqrt(m / (n1 * n2))
        y = clean + noise * rng.standard_normal(m)
        corrupted = np.zeros(m, dtype=bool)
        if outliers:
            corrupted[rng.choice(m, size=int(round(outliers * m)), replace=False)] = True
            y = y + corrupted * rng.standard_normal(m) * OUTLIER_SCALE * np.linalg.norm(M) / math.sqrt(m)
        return cls(M_star=M, operator=operator, A=A, mask=mask, y=y, noise=noise, outliers=outliers,
                   corrupted=corrupted, symmetric=bool(symmetric))


def _factor_shapes(problem: Problem, factorisation: str, k: int, depth: int) -> list[tuple[int, int]]:
    if factorisation == "symmetric":
        return [(problem.n1, k)]
    if factorisation == "asymmetric":
        return [(problem.n1, k), (problem.n2, k)]
    widths = [problem.n2] + [k] * (depth - 1) + [problem.n1]
    return [(widths[j + 1], widths[j]) for j in range(depth)]


def initial_state(problem: Problem, alpha: Any, *, factorisation: str = "symmetric", k: int = 1, depth: int = 3,
                  beta: Any = None, init: str = "random", seed: int = 0, backend: str = "numpy",
                  dtype: str = "float64", device: Any = None) -> tuple[Any, ...]:
    r"""The factors at scale ``alpha`` (one run per value), drawn on the host from ``seed``.

    ``"random"``: :math:`X_0 = \alpha\bar X` (symmetric); :math:`F_0 = \alpha\bar F`,
    :math:`G_0 = \beta\bar G` (asymmetric; ``beta`` defaults to ``alpha``), with i.i.d.
    :math:`N(0, 1)` entries; deep: :math:`W_j = \alpha^{1/N}\bar W_j` with i.i.d.
    :math:`N(0, 1/h_{j-1})` entries (fan-in scaling, so :math:`\|M_0\| \sim \alpha`).
    ``"aligned"`` (the commuting case): the leading ``k`` singular vectors of
    :math:`M^*`, completed to an orthonormal basis: :math:`X_0 = \alpha U_k`,
    :math:`F_0 = \alpha U_k`, :math:`G_0 = \beta V_k`; deep: :math:`W_1 = a V_k^\top`,
    :math:`W_j = a I`, :math:`W_N = a U_k` with :math:`a = \alpha^{1/N}`.
    The runs of a batch share the draw and differ by their scale, so an alpha sweep follows one direction.
    The draw comes from its own stream of ``seed`` (:func:`init_rng`): with the seed of
    :meth:`Problem.random` it would otherwise repeat the numbers that made :math:`M^*`'s singular
    vectors, and start inside their span.
    """
    xp = namespace(backend)
    a = np.atleast_1d(scale_array("alpha", alpha, (0, 1)))
    b = a if beta is None else np.atleast_1d(scale_array("beta", beta, (0, 1)))
    if b.shape[0] != a.shape[0]:
        if b.shape[0] == 1:
            b = np.repeat(b, a.shape[0])
        elif a.shape[0] == 1:
            a = np.repeat(a, b.shape[0])
        else:
            raise ValueError(f"alpha and beta must have the same number of runs; got {a.shape[0]} and {b.shape[0]}")
    if beta is not None and factorisation != "asymmetric":
        raise ValueError("beta (the scale of G) applies to factorisation='asymmetric' only")
    shapes = _factor_shapes(problem, factorisation, k, depth)
    rng = init_rng(seed)
    if init == "aligned":
        if k > min(problem.n1, problem.n2):
            raise ValueError(f"init='aligned' needs k <= min(n1, n2) = {min(problem.n1, problem.n2)}; got k={k}")
        U, _, Vt = np.linalg.svd(problem.M_star)
        Uk, Vk = U[:, :k], Vt[:k].T
        if factorisation == "symmetric":
            units = [Uk]
        elif factorisation == "asymmetric":
            units = [Uk, Vk]
        else:
            units = [Vk.T] + [np.eye(k)] * (depth - 2) + [Uk]
    elif factorisation == "deep":
        units = [rng.standard_normal(s) / math.sqrt(s[1]) for s in shapes]
    else:
        units = [rng.standard_normal(s) for s in shapes]
    if factorisation == "deep":
        scales = [a ** (1.0 / depth)] * depth
    elif factorisation == "asymmetric":
        scales = [a, b]
    else:
        scales = [a]
    return tuple(asarray(s[:, None, None] * u[None], xp, dtype, device) for s, u in zip(scales, units))


def end_to_end(state: tuple[Any, ...], factorisation: str) -> Any:
    """The matrices ``M`` ``(B, n1, n2)`` of the factors."""
    xp = xp_of(state[0])
    if factorisation == "symmetric":
        return xp.matmul(state[0], transpose(state[0]))
    if factorisation == "asymmetric":
        return xp.matmul(state[0], transpose(state[1]))
    return product(state)


def loss_grad(op: DeviceOperator, factorisation: str, loss: str, loss_scale: float, state: tuple[Any, ...],
              weights: Any = None) -> tuple[Any, tuple[Any, ...]]:
    r"""Loss per run and its hand-written gradient (module docstring), batched.

    Cost per evaluation: the end-to-end product (:math:`O(n_1 n_2 k)` per run,
    :math:`O(N n^2 k)` for depth N), the operator and its adjoint (see
    :mod:`sims.matrix_sensing_operator`: :math:`2\cdot 2 m n_1 n_2` flops per run
    for a dense operator), and the factor gradients (:math:`O(n_1 n_2 k)`).
    """
    xp = xp_of(state[0])
    batch = state[0].shape[0]
    if factorisation == "deep":
        pre, suf = chains(state)
        M = xp.matmul(state[-1], pre[-1])
    else:
        M = end_to_end(state, factorisation)
    n1, n2 = M.shape[1], M.shape[2]
    r = op.residual(xp.reshape(M, (batch, n1 * n2)))
    w = None if weights is None else weights * op.m
    if loss == "l2":
        wr = r if w is None else w * r
        value = loss_scale * xp.sum(wr * r, axis=1)
        gM = (2 * loss_scale) * op.adjoint(wr)
    else:
        c = 1.0 / math.sqrt(op.m)
        sg = xp.sign(r)
        value = c * xp.sum(xp.abs(r) if w is None else w * xp.abs(r), axis=1)
        gM = c * op.adjoint(sg if w is None else w * sg)
    gM = xp.reshape(gM, (batch, n1, n2))
    if factorisation == "symmetric":
        (X,) = state
        return value, (xp.matmul(gM + transpose(gM), X),)
    if factorisation == "asymmetric":
        F, G = state
        return value, (xp.matmul(gM, G), xp.matmul(transpose(gM), F))
    return value, layer_gradients(pre, suf, gM)


def observe(op: DeviceOperator, M_star: Any, factorisation: str, loss: str, loss_scale: float,
            state: tuple[Any, ...], record_sv: bool, record_M: bool = False) -> dict[str, Any]:
    """Observables: ``loss``, ``rel_error`` :math:`\\|M - M^*\\|_F/\\|M^*\\|_F`, ``sv`` (every singular value
    of ``M``, decreasing) when ``record_sv``, ``M`` itself when ``record_M``, and ``imbalance``
    :math:`\\|F^\\top F - G^\\top G\\|_F` (asymmetric)."""
    xp = xp_of(state[0])
    M = end_to_end(state, factorisation)
    batch = M.shape[0]
    flat = xp.reshape(M, (batch, -1))
    r = op.residual(flat)
    value = loss_scale * xp.sum(r * r, axis=1) if loss == "l2" else xp.sum(xp.abs(r), axis=1) / math.sqrt(op.m)
    diff = M - M_star
    out = {"loss": value,
           "rel_error": xp.sqrt(xp.sum(diff * diff, axis=(1, 2)) / xp.sum(M_star * M_star))}
    if record_sv:
        out["sv"] = xp.linalg.svdvals(M)
    if record_M:
        out["M"] = M
    if factorisation == "asymmetric":
        F, G = state
        imb = xp.matmul(transpose(F), F) - xp.matmul(transpose(G), G)
        out["imbalance"] = xp.sqrt(xp.sum(imb * imb, axis=(1, 2)))
    return out


def _default_factorisation(problem: Problem, factorisation: str | None) -> str:
    if factorisation is None:
        return "symmetric" if problem.symmetric else "asymmetric"
    factorisation = choice("factorisation", factorisation, FACTORISATIONS)
    if factorisation == "symmetric" and not problem.symmetric:
        raise ValueError("factorisation='symmetric' (X X^T) needs a symmetric PSD problem (Problem.random(..., "
                         "symmetric=True))")
    return factorisation


def model(problem: Problem, alpha: Any, *, k: int, factorisation: str | None = None, depth: int = 3,
          beta: Any = None, init: str = "random", loss: str = "l2", loss_scale: float = 0.5, record_sv: bool = True,
          record_M: bool = False, coordinates: str = "full", seed: int = 0, backend: str = "numpy",
          dtype: str = "float64", device: Any = None) -> Model:
    """The factorised model on ``problem`` from scale ``alpha``, as the driver's :class:`~sims.driver.Model`
    (see :func:`simulate` for the arguments; ``loss_grad`` takes per-measurement weights for a dense operator)."""
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.matrix_sensing.Problem; got {type(problem).__name__}")
    dtype = choice("dtype", dtype, DTYPES)
    factorisation = _default_factorisation(problem, factorisation)
    k = positive_int("k", k, 1, 10**5)
    depth = positive_int("depth", depth, 2, 64)
    init = choice("init", init, INITS)
    loss = choice("loss", loss, LOSSES)
    loss_scale = nonneg_float("loss_scale", loss_scale)
    if loss_scale == 0:
        raise ValueError("loss_scale must be > 0")
    for name, flag in (("record_sv", record_sv), ("record_M", record_M)):
        if not isinstance(flag, (bool, np.bool_)):
            raise TypeError(f"{name} must be a bool; got {type(flag).__name__}")
    coordinates = choice("coordinates", coordinates, COORDINATES)
    xp = namespace(backend)
    state0 = initial_state(problem, alpha, factorisation=factorisation, k=k, depth=depth, beta=beta, init=init,
                           seed=seed, backend=backend, dtype=dtype, device=device)
    op = device_operator(problem, xp, dtype, device)
    M_star = asarray(problem.M_star, xp, dtype, device)
    a = np.atleast_1d(np.asarray(alpha, dtype=float))
    names = {"symmetric": ["X"], "asymmetric": ["F", "G"]}.get(factorisation, [f"layer_{j + 1}" for j in range(depth)])

    def final(host: tuple[np.ndarray, ...]) -> dict[str, np.ndarray]:
        out = dict(zip(names, host))
        if factorisation == "symmetric":
            out["M"] = host[0] @ np.transpose(host[0], (0, 2, 1))
        elif factorisation == "asymmetric":
            out["M"] = host[0] @ np.transpose(host[1], (0, 2, 1))
        else:
            out["M"] = product(host)
        return out

    eps = float(np.finfo(np.dtype(dtype)).eps)
    scale = max(float(np.linalg.norm(problem.M_star)), 0.0 if problem.y is None else float(np.linalg.norm(problem.y)))
    clean = problem.noise == 0 and problem.outliers == 0 and loss == "l2"

    def loss_tol(rel: float) -> float:
        # Noise-free l2: the loss reaches 0, but below s (100 rel max(||M*||_F, ||y||))^2 it only measures
        # integration and round-off error: relative error rel on the factors is ~2 rel on M, which the
        # operator maps to residuals of order rel ||y||, amplified along stiff directions (a margin of 100:
        # at 10 a run on commuting measurements hovered at the floor and never stopped). Otherwise the loss
        # never reaches 0 and runs stop on grad_tol or time.
        return loss_scale * (100 * max(rel, eps) * scale) ** 2 if clean else 0.0

    meta = {"problem": {"n1": problem.n1, "n2": problem.n2, "rank": problem.rank, "m": problem.m,
                        "operator": problem.operator, "kappa": problem.kappa, "noise": problem.noise,
                        "outliers": problem.outliers, "digest": problem.digest()},
            "alpha": a.tolist(), "beta": None if beta is None else np.atleast_1d(beta).astype(float).tolist(),
            "factorisation": factorisation, "k": k, "depth": depth if factorisation == "deep" else None,
            "init": init, "loss": loss, "loss_scale": loss_scale}
    if coordinates == "reduced":
        why = reduced_refusal(problem, init, loss)
        if why:
            raise ValueError(f"coordinates='reduced' does not apply here: {why}; use coordinates='full'")
        runs = state0[0].shape[0]
        a_runs = np.broadcast_to(a, (runs,)).astype(float)
        b_runs = None if beta is None else np.broadcast_to(np.atleast_1d(np.asarray(beta, dtype=float)), (runs,))
        return reduced_model(problem, a_runs, b_runs, k=k, factorisation=factorisation, depth=depth,
                             loss_scale=loss_scale, record_sv=bool(record_sv), record_M=bool(record_M),
                             backend=backend, dtype=dtype, device=device, meta=meta, loss_tol=loss_tol)
    return Model(
        name="matrix_sensing",
        state0=state0,
        loss_grad=lambda state, weights=None: loss_grad(op, factorisation, loss, loss_scale, state, weights),
        observe=lambda state: observe(op, M_star, factorisation, loss, loss_scale, state, bool(record_sv),
                                      bool(record_M)),
        final=final,
        meta=meta,
        backend=backend, dtype=dtype, n_samples=problem.m if problem.A is not None else None,
        # the aligned starts hold zeros that pure relative error control never lets move: exact ones off the
        # diagonal of the deep middle layers, and round-off ones in the singular vectors LAPACK returns for a
        # repeated singular value (kappa = 1; found by `solvable check matrix_sensing.reduced_equals_full`),
        # scaled by alpha in the outer factors; so an absolute floor, 1e-14 min(1, alpha) (1e-14 for deep)
        t_max=1e4, atol=_aligned_atol(init, factorisation, a), loss_tol=loss_tol,
        samples_hint="SGD draws measurements, which a dense operator has (operator='gaussian' or 'symmetric')",
    )


def _aligned_atol(init: str, factorisation: str, alpha: Any) -> float:
    """The flow's default absolute tolerance (see :func:`simulate`)."""
    if init != "aligned":
        return 0.0
    if factorisation == "deep":
        return 1e-14
    return 1e-14 * min(1.0, float(np.min(alpha)))


def simulate(
    problem: Problem,
    alpha: Any,
    algorithm: Any = "flow",
    *,
    lr: Any = None,
    steps: int | None = None,
    t_max: float | None = None,
    k: int,
    factorisation: str | None = None,
    depth: int = 3,
    beta: Any = None,
    init: str = "random",
    loss: str = "l2",
    loss_scale: float = 0.5,
    damping: float | None = None,
    decay: float | None = None,
    record_sv: bool = True,
    record_M: bool = False,
    coordinates: str | None = None,
    seed: int = 0,
    backend: str = "numpy",
    dtype: str = "float64",
    device: Any = None,
    **options: Any,
) -> Trajectory:
    r"""Train a batch of factorised models on a matrix-sensing problem.

    Parameters
    ----------
    problem : Problem
    alpha : float or 1-D array (B,)
        Initial scale, one run per value (see :func:`initial_state`). A single
        scale with one ``lr`` per run gives one run per step size.
    algorithm : {"flow", "gd", "sgd", "sam", "gr", "scaledgd", "subgradient"} or an algorithm object
        The driver's algorithms (:mod:`sims.driver`), ScaledGD(:math:`\lambda`) of
        Xu et al. 2023 (``damping`` = :math:`\lambda`; :class:`sims.rules.ScaledGD`),
        and the sub-gradient method with steps :math:`\eta_0 q^t` of Ma & Fattahi 2023
        (``decay`` = :math:`q`; :class:`sims.rules.Subgradient`).
    lr, steps, t_max
        As in every family (:mod:`sims.driver`); default horizon 1e4.
    k : int (required)
        Width of the factors (their rank; k = r exact, k > r over-, k < r under-parameterised).
    factorisation : {"symmetric", "asymmetric", "deep"}, optional
        Default: symmetric for a symmetric problem, else asymmetric.
    depth : int >= 2
        Number of factors of the deep factorisation.
    beta : float or 1-D array, optional
        Initial scale of G (asymmetric only); default ``alpha``.
    init : {"random", "aligned"}
    loss : {"l2", "l1"}
        The l1 loss is non-smooth: gradient flow is refused for it.
    loss_scale : float
        :math:`s` in :math:`f = s\|\mathcal A(M) - y\|^2` (0.5; 0.25 for Xu et al. and Xiong et al.).
    damping, decay : float
        ``scaledgd``'s :math:`\lambda \ge 0` and ``subgradient``'s :math:`q \in (0, 1]`.
    record_sv : bool
        Record every singular value of ``M`` at every output time (``sv``, ``(B, T, min(n1, n2))``).
    record_M : bool
        Record ``M`` itself (``(B, T, n1, n2)``; small problems).
    coordinates : {"reduced", "full"}, optional
        ``"reduced"`` integrates one ODE per aligned mode (:mod:`sims.matrix_sensing_reduced`),
        exact for gradient flow with the l2 loss on the population operator from
        ``init="aligned"``, and the default there; ``"full"`` integrates the factors.
    seed : int
        Seed of the initial draw and of SGD's schedule.
    backend, dtype, device
    **options
        The driver's options. ``atol`` defaults to 0: the error norm is an RMS
        over all factor entries, which never vanish together for alpha > 0, and the
        factors span many decades at small alpha; for the aligned starts, whose
        factors hold zeros (exact ones in the deep middle layers, round-off ones in
        the singular vectors of a repeated singular value), ``1e-14 min(1, alpha)``
        (1e-14 for deep). ``loss_tol``: in a noise-free l2
        problem, :math:`s(100\,\text{rel}\,\max(\|M^*\|_F, \|y\|))^2` (below it the loss measures
        integration error); otherwise 0 (runs stop on ``grad_tol`` or time).

    Returns
    -------
    Trajectory
        ``final``: the factors (``X``; ``F``, ``G``; ``layer_j``) and ``M``;
        observables ``loss``, ``rel_error``, ``sv``, ``imbalance`` (asymmetric).
    """
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a solvable.sims.matrix_sensing.Problem; got {type(problem).__name__}")
    if isinstance(algorithm, str) and algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS} or an algorithm object; got {shown(algorithm)}")
    if damping is not None and algorithm != "scaledgd":
        raise ValueError(f"damping applies to algorithm 'scaledgd', not {shown(algorithm)}")
    if decay is not None and algorithm != "subgradient":
        raise ValueError(f"decay applies to algorithm 'subgradient', not {shown(algorithm)}")
    if loss == "l1" and algorithm == "flow":
        raise ValueError("loss='l1' is non-smooth: gradient flow is not defined by an ODE here; use "
                         "algorithm='subgradient' or 'gd'")
    if algorithm in ("scaledgd", "subgradient"):
        if lr is None:
            raise ValueError(f"lr is required for algorithm={shown(algorithm)}: a number > 0 or one per run")
        if algorithm == "scaledgd":
            if damping is None:
                raise ValueError("damping (lambda >= 0) is required for algorithm='scaledgd'")
            if factorisation == "deep":
                raise ValueError("scaledgd preconditions one or two factors, not factorisation='deep'")
            algorithm = ScaledGD(lr=lr, damping=damping)
        else:
            algorithm = Subgradient(lr=lr, decay=1.0 if decay is None else decay)
        lr_for_runs, lr = lr, None
    else:
        lr_for_runs = lr
    a = broadcast_runs(np.atleast_1d(scale_array("alpha", alpha, (0, 1)))[:, None], lr_for_runs)[:, 0]
    coordinates = resolve_coordinates(coordinates, algorithm, stiff=False,
                                      refusal=reduced_refusal(problem, init, loss))
    m = model(problem, a, k=k, factorisation=factorisation, depth=depth, beta=beta, init=init, loss=loss,
              loss_scale=loss_scale, record_sv=record_sv, record_M=record_M, coordinates=coordinates, seed=seed,
              backend=backend, dtype=dtype, device=device)
    return train(m, algorithm, lr=lr, steps=steps, t_max=t_max, seed=seed, **options)


def sweep_recovery(*, n: int, rank: int, k: int, alpha: float, m: int | None = None, kappa: float = 1.0,
                   symmetric: bool = True, operator: str = "gaussian", noise: float = 0.0, seed: int = 0,
                   algorithm: str = "gd", lr: float | None = 0.1, steps: int | None = 3000, t_max: float | None = None,
                   sv_tol: float = 1e-3, backend: str = "numpy", device: str | None = None) -> dict[str, Any]:
    r"""Sweep task ``matrix_sensing.recovery``: one run on :meth:`Problem.random` (``n x n``, rank ``rank``,
    condition number ``kappa``, ``m`` measurements), summarised.

    Returns the status, the stop step and time, the final loss and relative error
    :math:`\|M - M^*\|_F / \|M^*\|_F`; ``rate``: the linear rate per step (per unit time for the flow),
    :math:`-\,d\ln(\text{error})/dt` fitted by least squares over the second half of the run (up to its stop) where the
    error is above :math:`10^{-12}` (negative where it grows; ``nan`` with fewer than three such points);
    ``learned_rank``: the singular values of the end-to-end :math:`M` above ``sv_tol`` times
    :math:`\sigma_1(M^*)`, and ``sv``: the largest ``rank + 2`` of them (numbers only, so a sweep store is plain
    JSON).
    """
    n = positive_int("n", n, 1, 10**4)
    problem = Problem.random(n, n, rank, m=m, kappa=kappa, symmetric=symmetric, operator=operator, noise=noise,
                             seed=seed)
    sv_tol = positive_float("sv_tol", sv_tol)
    if algorithm == "flow":
        options: dict[str, Any] = {} if t_max is None else {"t_max": t_max}
    else:  # 201 records over the run: enough for the fitted rate, little to store
        steps = positive_int("steps", steps, 1, 10**8)
        options = {"lr": lr, "steps": steps, "t_eval": np.unique(np.linspace(0, steps, 201).astype(int))}
    traj = simulate(problem, alpha, algorithm, k=k, seed=seed, backend=backend, device=device, **options)
    err, times = np.asarray(traj.observables["rel_error"][0], dtype=float), np.asarray(traj.times, dtype=float)
    stop = float(traj.stop_time[0])
    keep = (times >= stop / 2) & (times <= stop) & np.isfinite(err) & (err > 1e-12)
    rate = float(-np.polyfit(times[keep], np.log(err[keep]), 1)[0]) if keep.sum() >= 3 else float("nan")
    sv = np.asarray(traj.observables["sv"][0, -1], dtype=float)
    scale = float(np.linalg.svd(problem.M_star, compute_uv=False)[0])
    return {"status": str(traj.status[0]), "stop_step": int(traj.stop_step[0]), "stop_time": float(traj.stop_time[0]),
            "loss": float(traj.observables["loss"][0, -1]), "rel_error": float(err[-1]), "rate": rate,
            "learned_rank": int(np.sum(sv > sv_tol * scale)), "sv": [float(s) for s in sv[: rank + 2]]}
