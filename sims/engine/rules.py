r"""Discrete training algorithms as rule objects: ``init`` their own state, then ``step``.

A rule is a frozen dataclass of hyper-parameters with two methods::

    rule_state = rule.init(y0, objective, rng)
    y_new, rule_state, info = rule.step(y, rule_state, objective, k)

``step`` is :meth:`Rule.draw` (the step's host-side inputs, such as SGD's
sample indices, put in ``rule_state.inputs``), the step size, then
:meth:`Rule.update`, which is array operations only: the loop may hand it to a
compiler (``compile=True``, :mod:`sims.engine.compiled`).
``y`` is the packed ``(B, P)`` parameter array of a batch of runs,
``objective`` the model's :class:`~sims.engine.state.Objective`, ``k`` the step
index, and ``info`` a :class:`StepInfo` with the loss and squared gradient
norm at ``y`` when the rule computed them (the loop computes them itself
otherwise, only when it tests convergence). Step sizes ``lr`` are a number or
one per run, times ``schedule(k)`` when a schedule is given. A new algorithm
is a new subclass that implements :meth:`Rule.update`; the loop
(:func:`sims.engine.discrete.run_discrete`) does not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from ._validate import shown
from .backend import device_of as _device, xp_of
from .rk import column
from .state import Objective, State, row_norm_sq

__all__ = ["GD", "SAM", "SGD", "Algorithm", "Flooding", "GradientRegularized", "MinibatchSampler", "PreconditionedGD", "Rule",
           "batch_weights",
           "NormalizedGD", "RuleState", "ScaledGD", "StepInfo", "Subgradient", "geometric", "scaled_direction"]


def geometric(q: float) -> Callable[[int], float]:
    """Step schedule ``eta_k = eta_0 q^k`` (sub-gradient methods on non-smooth losses)."""
    if not (isinstance(q, (int, float)) and 0 < q <= 1):
        raise ValueError(f"q must lie in (0, 1]; got {shown(q)}")
    return lambda k: float(q) ** k


def _check_lr(lr: Any) -> None:
    arr = np.asarray(lr, dtype=float) if not callable(lr) else None
    if arr is None or arr.ndim > 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"lr must be a finite number > 0 or a 1-D array of them (one per run); got {shown(lr)}")


def _check_real(name: str, v: Any, positive: bool) -> None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 if positive else v >= 0)
    if not ok:
        raise ValueError(f"{name} must be a finite number {'>' if positive else '>='} 0; got {shown(v)}")


@dataclass(frozen=True)
class StepInfo:
    """What a step measured at its starting point (``None``: not computed)."""

    loss: Any = None
    grad_sq: Any = None


@dataclass
class RuleState:
    """A rule's state between steps: the per-run step sizes ``(B, 1)`` and whatever else it keeps."""

    lr: Any
    extra: Any = None
    #: This step's inputs made outside :meth:`Rule.update` (:meth:`Rule.draw`; SGD: the sample indices).
    inputs: Any = None


@dataclass(frozen=True)
class Rule:
    """Base of the discrete rules: step sizes per run, an optional schedule, the shared ``step``."""

    lr: Any
    schedule: Callable[[int], float] | None = field(default=None, kw_only=True)

    #: Steps between convergence tests (a rule that does not evaluate the full loss tests less often).
    check_every: ClassVar[int] = 1

    def __post_init__(self) -> None:
        _check_lr(self.lr)
        if self.schedule is not None and not callable(self.schedule):
            raise TypeError("schedule must be callable: step index -> factor")

    @property
    def name(self) -> str:
        """The rule's name in results (``"gd"``, ``"sgd"``...)."""
        return type(self).__name__.lower()

    def init(self, y0: Any, objective: Objective, rng: np.random.Generator) -> RuleState:
        """The step sizes as a float64 ``(B, 1)`` column on ``y0``'s device."""
        batch = y0.shape[0]
        lr = np.asarray(self.lr, dtype=float)
        if lr.ndim == 1 and lr.shape[0] != batch:
            raise ValueError(f"lr has {lr.shape[0]} values but the batch has {batch} runs")
        xp = xp_of(y0)
        col = xp.asarray(np.broadcast_to(lr, (batch,)).astype(np.float64), device=_device(y0))
        return RuleState(lr=xp.reshape(col, (batch, 1)))

    def step_size(self, rule_state: RuleState, k: int, like: Any) -> Any:
        """``lr * schedule(k)`` as a ``(B, 1)`` column in ``like``'s dtype."""
        col = rule_state.lr if self.schedule is None else rule_state.lr * float(self.schedule(k))
        return col if col.dtype == like.dtype else xp_of(like).astype(col, like.dtype)

    def draw(self, rule_state: RuleState) -> None:
        """Put this step's inputs from the host side in ``rule_state.inputs`` (none by default).

        Kept out of :meth:`update` so that ``update`` is array operations on its arguments only, which a
        compiler can trace once and replay every step (a Python iterator inside it would be traced as a
        constant)."""

    def step(self, y: Any, rule_state: RuleState, objective: Objective, k: int) -> tuple[Any, RuleState, StepInfo]:
        """One update of every run: ``(y_new, rule_state, info)``."""
        self.draw(rule_state)
        y_new, info = self.update(y, self.step_size(rule_state, k, y), objective, rule_state)
        return y_new, rule_state, info

    def update(self, y: Any, lr: Any, objective: Objective, rule_state: RuleState) -> tuple[Any, StepInfo]:
        raise NotImplementedError


@dataclass(frozen=True)
class GD(Rule):
    """Gradient descent ``theta <- theta - lr_k * grad L(theta)``."""

    def update(self, y: Any, lr: Any, objective: Objective, rule_state: RuleState) -> tuple[Any, StepInfo]:
        loss, g = objective.loss_grad(y)
        return y - lr * g, StepInfo(loss, row_norm_sq(g))


class MinibatchSampler:
    """Endless per-step ``(B, size)`` sample indices, drawn without replacement on the host.

    Keys are drawn ``chunk`` steps at a time from ``rng`` and moved to the
    device once per chunk, so the same seed gives the same schedule on every
    backend.
    """

    def __init__(self, rng: np.random.Generator, batch: int, n_samples: int, size: int, chunk: int, like: Any) -> None:
        self.rng, self.batch, self.n_samples, self.size, self.chunk = rng, batch, n_samples, size, chunk
        self.xp, self.dev = xp_of(like), _device(like)
        self.samples = self.xp.arange(n_samples, device=self.dev)  # the sample labels 0..n-1, on the device
        self._indices = self._draw()

    def _draw(self) -> Iterator[Any]:
        while True:
            keys = self.rng.random((self.chunk, self.batch, self.n_samples))
            if self.size < self.n_samples:
                idx = np.argpartition(keys, self.size - 1, axis=-1)[..., : self.size]
            else:
                idx = np.argsort(keys, axis=-1)
            dev_idx = self.xp.asarray(idx.astype(np.int64), device=self.dev)
            for c in range(self.chunk):
                yield dev_idx[c, ...]

    def next(self) -> Any:
        """The next step's sample indices ``(B, size)`` on the device."""
        return next(self._indices)

    def weights(self, dtype: Any) -> Any:
        """The next step's rows ``(B, n)`` (:func:`batch_weights` of :meth:`next`)."""
        return batch_weights(self.next(), self.samples, dtype)


def batch_weights(idx: Any, samples: Any, dtype: Any) -> Any:
    """Rows ``(B, n)`` equal to ``1/size`` on the samples ``idx`` ``(B, size)`` and 0 elsewhere: the mini-batch
    mean as sample weights (``samples``: the labels ``0..n-1`` on the device)."""
    xp = xp_of(idx)
    hits = xp.astype(idx[:, :, None] == samples[None, None, :], dtype)
    return xp.sum(hits, axis=1) / idx.shape[1]


@dataclass(frozen=True)
class SGD(Rule):
    """Mini-batch SGD: the gradient of the loss on ``batch_size`` samples drawn
    without replacement, independently for every run and step, by the rule's
    own :class:`MinibatchSampler` (seeded on the host, so a seed fixes the
    schedule on every backend). Its step does not evaluate the full loss, so
    convergence is tested every :attr:`check_every` steps."""

    batch_size: int = 1
    check_every: ClassVar[int] = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        bs = self.batch_size
        if isinstance(bs, bool) or not isinstance(bs, (int, np.integer)) or bs < 1:
            raise ValueError(f"batch_size must be an integer >= 1; got {shown(bs)}")

    def init(self, y0: Any, objective: Objective, rng: np.random.Generator) -> RuleState:
        state = super().init(y0, objective, rng)
        n = objective.n_samples
        if n is None or self.batch_size > n:
            raise ValueError(f"batch_size must lie in [1, n_samples={n}]; got {self.batch_size}")
        batch = y0.shape[0]
        state.extra = MinibatchSampler(rng, batch, n, int(self.batch_size), max(1, 4096 // batch), y0)
        return state

    def draw(self, rule_state: RuleState) -> None:
        rule_state.inputs = rule_state.extra.next()

    def update(self, y: Any, lr: Any, objective: Objective, rule_state: RuleState) -> tuple[Any, StepInfo]:
        _, g = objective.loss_grad(y, batch_weights(rule_state.inputs, rule_state.extra.samples, y.dtype))
        return y - lr * g, StepInfo()


@dataclass(frozen=True)
class SAM(Rule):
    r"""Sharpness-aware minimisation (Foret et al. 2021):
    ``theta <- theta - lr * grad L(theta + rho * g / ||g||)`` with
    ``g = grad L(theta)``; ``normalized=False`` uses ``theta + rho * g``
    (the unnormalised variant of Andriushchenko & Flammarion 2022 and
    Agarwala & Dauphin 2023)."""

    rho: float
    normalized: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real("rho", self.rho, positive=False)

    def update(self, y: Any, lr: Any, objective: Objective, rule_state: RuleState) -> tuple[Any, StepInfo]:
        xp = xp_of(y)
        loss, g = objective.loss_grad(y)
        gn2 = row_norm_sq(g)
        if self.normalized:
            gn = xp.sqrt(gn2)
            coef = xp.where(gn > 0, self.rho / xp.where(gn > 0, gn, 1.0), 0.0)
            y_adv = y + column(coef, y) * g
        else:
            y_adv = y + self.rho * g
        _, g_adv = objective.loss_grad(y_adv)
        return y - lr * g_adv, StepInfo(loss, gn2)


@dataclass(frozen=True)
class PreconditionedGD(Rule):
    """``theta <- theta - lr * P(theta, grad L(theta))`` for a model-supplied
    preconditioner ``precondition(state, grads) -> direction`` (tuples shaped
    like the state; e.g. ScaledGD for matrix sensing)."""

    precondition: Callable[[State, State], State]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not callable(self.precondition):
            raise TypeError("precondition must be callable: (state, grads) -> direction")

    def update(self, y: Any, lr: Any, objective: Objective, rule_state: RuleState) -> tuple[Any, StepInfo]:
        loss, g = objective.loss_grad(y)
        direction = objective.pack(self.precondition(objective.unpack(y), objective.unpack(g)))
        return y - lr * direction, StepInfo(loss, row_norm_sq(g))


def scaled_direction(state: State, grads: State, damping: float) -> State:
    r"""The ScaledGD(:math:`\lambda`) direction of a factorised matrix (Xu, Shen, Ma, Chi 2023, Eq. (6)).

    One factor :math:`X` (``M = X X^T``): :math:`\nabla_X f\,(X^\top X + \lambda I)^{-1}`.
    Two factors (``M = F G^T``): :math:`(\nabla_F f\,(G^\top G + \lambda I)^{-1},\;
    \nabla_G f\,(F^\top F + \lambda I)^{-1})` (Tong, Ma, Chi 2021's ScaledGD with the damping of Xu et al.).
    Each factor is a ``(B, n, k)`` stack; the ``k x k`` systems are solved, not inverted.
    """
    if len(state) not in (1, 2):
        raise ValueError(f"ScaledGD preconditions one factor (X X^T) or two (F G^T); this state has {len(state)}")
    xp = xp_of(state[0])
    k = state[0].shape[-1]
    eye = xp.eye(k, dtype=state[0].dtype, device=_device(state[0]))

    def right_solve(g: Any, factor: Any) -> Any:
        gram = xp.matmul(xp.permute_dims(factor, (0, 2, 1)), factor) + damping * eye
        return xp.permute_dims(xp.linalg.solve(gram, xp.permute_dims(g, (0, 2, 1))), (0, 2, 1))

    if len(state) == 1:
        return (right_solve(grads[0], state[0]),)
    F, G = state
    return right_solve(grads[0], G), right_solve(grads[1], F)


@dataclass(frozen=True)
class ScaledGD(PreconditionedGD):
    r"""ScaledGD(:math:`\lambda`) of Xu, Shen, Ma, Chi 2023 ("The Power of Preconditioning in
    Overparameterized Low-Rank Matrix Sensing", Eq. (6)):
    :math:`X \leftarrow X - \eta\,\nabla f(X)\,(X^\top X + \lambda I)^{-1}`, per factor
    (see :func:`scaled_direction`). ``damping`` is :math:`\lambda \ge 0`; 0 is the undamped
    ScaledGD of Tong, Ma, Chi 2021 (singular once a factor loses rank)."""

    precondition: Callable[[State, State], State] | None = None
    damping: float = 0.0

    @property
    def name(self) -> str:
        return "scaledgd"

    def __post_init__(self) -> None:
        _check_real("damping", self.damping, positive=False)
        damping = float(self.damping)
        object.__setattr__(self, "precondition", lambda state, grads: scaled_direction(state, grads, damping))
        super().__post_init__()


@dataclass(frozen=True)
class NormalizedGD(GD):
    r"""Normalised gradient descent :math:`\theta \leftarrow \theta - \eta\,\nabla L/\|\nabla L\|`, the norm
    over every parameter of a run (Tarzanagh, Li, Zhang, Oymak 2023, "Max-Margin Token Selection in Attention
    Mechanism", Sec. 3: its iterates grow in norm at a steady rate, so their direction converges in far fewer
    steps than plain GD's on a loss whose minimum lies at infinity). A zero gradient leaves the run still."""

    @property
    def name(self) -> str:
        return "ngd"

    def update(self, y: Any, lr: Any, objective: Objective, rule_state: RuleState) -> tuple[Any, StepInfo]:
        loss, g = objective.loss_grad(y)
        sq = row_norm_sq(g)
        xp = xp_of(y)
        norm = xp.sqrt(sq)
        scale = xp.where(norm > 0, 1.0 / xp.where(norm > 0, norm, 1.0), 0.0)
        return y - lr * (g * scale[:, None]), StepInfo(loss, sq)


@dataclass(frozen=True)
class Subgradient(GD):
    r"""The sub-gradient method with geometrically decaying steps :math:`\eta_t = \eta_0 q^t`
    (Ma & Fattahi 2023, "Global Convergence of Sub-gradient Method for Robust Matrix Recovery",
    Algorithm 1): :math:`\theta \leftarrow \theta - \eta_t g_t` with :math:`g_t` a sub-gradient
    (the model's ``loss_grad`` returns one for a non-smooth loss). ``decay`` is :math:`q \in (0, 1]`."""

    decay: float = 1.0

    @property
    def name(self) -> str:
        return "subgradient"

    def __post_init__(self) -> None:
        if self.schedule is not None:
            raise ValueError("Subgradient sets its own schedule from decay; do not pass schedule")
        object.__setattr__(self, "schedule", geometric(self.decay))
        super().__post_init__()


@dataclass(frozen=True)
class GradientRegularized(Rule):
    r"""Gradient descent on the gradient-regularised loss :math:`L + \frac{\lambda}{2}\|\nabla L\|^2`.

    Its gradient :math:`\nabla L + \lambda H\nabla L` is computed by the
    finite difference of Karakida et al. 2023 ("Understanding Gradient
    Regularization in Deep Learning", Sec. 3): a gradient-ascent step of size
    ``eps`` then :math:`\nabla L + \frac{\lambda}{\epsilon}(\nabla L(\theta + \epsilon g) - g)`.
    Small ``eps`` (the default) is exact GR up to :math:`O(\epsilon)`; a
    finite ``eps`` is their "finite-difference GR", with an extra bias of its own.
    """

    lam: float
    eps: float = 1e-6

    @property
    def name(self) -> str:
        return "gr"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real("lam", self.lam, positive=True)
        _check_real("eps", self.eps, positive=True)

    def update(self, y: Any, lr: Any, objective: Objective, rule_state: RuleState) -> tuple[Any, StepInfo]:
        loss, g = objective.loss_grad(y)
        _, g_up = objective.loss_grad(y + self.eps * g)
        return y - lr * (g + (self.lam / self.eps) * (g_up - g)), StepInfo(loss, row_norm_sq(g))


@dataclass(frozen=True)
class Flooding(Rule):
    r"""Gradient descent on the flooded loss :math:`|L - b| + b` (Ishida, Yamane, Sakai, Niu & Sugiyama 2020):
    :math:`\theta \leftarrow \theta - \eta\,\mathrm{sign}(L(\theta) - b)\nabla L(\theta)`, an ascent step below the
    flood level ``level`` = :math:`b` (a descent step at or above it). Near the level it alternates, and an ascent
    step followed by a descent step is :math:`\theta - \eta(\nabla L(\theta + \eta\nabla L) - \nabla L)`: one
    finite-difference step on :math:`\frac{\eta}{2}\|\nabla L\|^2` (Karakida, Takase, Hayase & Osawa 2023, Sec. 5).
    A run stays at the level rather than converging (``loss_tol`` below ``level`` never fires)."""

    level: float = 0.0

    @property
    def name(self) -> str:
        return "flood"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real("level", self.level, positive=False)

    def update(self, y: Any, lr: Any, objective: Objective, rule_state: RuleState) -> tuple[Any, StepInfo]:
        xp = xp_of(y)
        loss, g = objective.loss_grad(y)
        sign = 2 * xp.astype(loss >= self.level, y.dtype) - 1  # +1 at or above the level, -1 below
        return y - lr * column(sign, y) * g, StepInfo(loss, row_norm_sq(g))


#: The rules shipped with the engine (any :class:`Rule` subclass works).
Algorithm = GD | SGD | SAM | PreconditionedGD | ScaledGD | Subgradient | GradientRegularized | Flooding
