r"""One driver for every model family: a :class:`Model` in, a :class:`~sims.engine.trajectory.Trajectory` out.

A family's ``simulate`` builds a :class:`Model` -- its initial state on the
backend, its loss and hand-written gradient (with per-sample weights when it
has samples), its observables, how to name the final parameters, and its
metadata -- and hands it to :func:`train` with the algorithm. The algorithm is
an object (``flow.Flow(rtol=...)``, ``flow.SGD(lr=..., batch_size=...)``,
``flow.SAM(lr=..., rho=...)``, any :class:`~sims.engine.rules.Rule`) or a string
shorthand (``"flow"``, ``"gd"``, ``"sgd"``, ``"sam"``, ``"gr"``, ``"flood"``) with its
hyper-parameters as keyword options. Every family therefore shares one
signature, one set of defaults, and one rule: an option that does not apply to
the chosen algorithm is refused with an error that names it.

Options, their defaults and the algorithms they apply to:

=============== ======================== ==========================================
option          default                  applies to
=============== ======================== ==========================================
lr              required                 gd, sgd, sam, gr, flood (one number or one per run)
steps           ``ceil(t_max / min lr)`` discrete rules (the step budget)
t_max           the family's horizon     flow (final time); discrete (budget, via lr)
t_eval          log-spaced               all (output times, or recording steps)
batch_size      1                        sgd
rho             required                 sam
sam_normalized  True (Foret et al.)      sam
lam             required                 gr
gr_eps          1e-6                     gr
flood_level     required                 flood (the level b of ``|L - b| + b``)
rtol            1e-10 (float32: 1e-5)    flow
atol            the family's default     flow
max_steps       200000                   flow (step attempts per run)
loss_tol        the family's default     all (converged once loss <= loss_tol; a
                                         number, or a sequence of one per run)
grad_tol        the family's default     all (converged once ||grad|| <= grad_tol)
sync_every      1 on NumPy, else <= 32   all (steps between two host reads of the
                                         batch's status; :mod:`sims.engine.sync`)
compile         False                    all (each step through the backend's
                                         compiler; torch only, :mod:`sims.engine.compiled`)
=============== ======================== ==========================================
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ._validate import nonneg_float, positive_array, positive_float, positive_int
from ._validate import shown
from .backend import device_of as _device, check_seed
from .compiled import check_compile
from .discrete import run_discrete
from .flow import Flow, default_rtol, integrate_flow
from .recording import check_record_steps
from .rosenbrock import RosenbrockTableau
from .rules import GD, SAM, SGD, Flooding, GradientRegularized, Rule
from .state import LossGrad, State
from .stiff import integrate_stiff
from .stopping import StopRule
from .trajectory import Trajectory, environment

__all__ = ["ALGORITHMS", "COORDINATES", "OPTIONS", "Model", "broadcast_runs", "resolve_algorithm",
           "resolve_coordinates", "train"]

#: String shorthands of :func:`train`'s ``algorithm``.
ALGORITHMS = ("flow", "gd", "sgd", "sam", "gr", "flood")
_DISCRETE = ("gd", "sgd", "sam", "gr", "flood")

#: Every option :func:`train` takes, with the algorithms it applies to (``None``: all).
OPTIONS: dict[str, tuple[str, ...] | None] = {
    "lr": _DISCRETE, "steps": _DISCRETE, "t_max": None, "t_eval": None, "batch_size": ("sgd",), "rho": ("sam",),
    "sam_normalized": ("sam",), "lam": ("gr",), "gr_eps": ("gr",), "flood_level": ("flood",), "rtol": ("flow",),
    "atol": ("flow",),
    "max_steps": ("flow",), "loss_tol": None, "grad_tol": None, "sync_every": None,
    "compile": None,
}
#: Options an algorithm *object* already carries (passing them beside it is refused).
_HYPER = ("lr", "batch_size", "rho", "sam_normalized", "lam", "gr_eps", "flood_level", "rtol", "atol", "max_steps")


@dataclass(frozen=True)
class Model:
    """A model family bound to one problem, batch of initial states, backend and dtype.

    Attributes
    ----------
    name : str
        The family (``"diagonal"``, ``"deep_linear"``, ``"ufm"``...), recorded in ``meta["model"]``.
    state0 : tuple of arrays, each (B, ...)
        Initial state on the backend.
    loss_grad : callable
        ``loss_grad(state, weights=None) -> (loss (B,), grads)``, the hand-written gradient.
    observe : callable
        ``observe(state) -> {name: (B, ...)}``, recorded at every output time.
    final : callable
        ``final(host_state) -> {name: (B, ...)}``: the parameters named for the trajectory.
    meta : dict
        JSON-serialisable problem description (merged into the trajectory's ``meta``).
    backend, dtype : str
    n_samples : int or None
        Samples the loss averages over (what SGD draws from); ``None``: no samples.
    t_max : float
        The family's default horizon.
    atol : float
        The family's default absolute tolerance for the flow (its docstring says why).
    loss_tol : float or callable
        Default convergence threshold on the loss; a callable gets the method's
        relative accuracy (``rtol`` for the flow, 0 for discrete rules) and
        returns a number or one per run.
    grad_tol : float
        Default convergence threshold on the gradient norm.
    compact : bool
        Whether runs are independent rows, so finished runs may leave the batch.
    samples_hint : str
        For a model without samples: how to get a problem with them (said when SGD is asked for).
    jacobian : callable, optional
        ``jacobian(state, aux=aux) -> (B, P, P)``: the symmetric Jacobian of the vector field
        ``-grads`` in closed form. Models in reduced coordinates give it; their flow then runs
        by the Rosenbrock-W integrator (:mod:`sims.engine.stiff`), and their callables all take ``aux=``.
    error_map : callable, optional
        ``error_map(delta_state, aux=aux) -> (B, m)``: a step's error in relative units of the
        full parameters, so that ``rtol`` means what it means in full coordinates.
    aux : array (B, ...), optional
        Per-run constants of a reduced model (rows leave the batch with their runs).
    coordinates : str
        ``"full"`` or ``"reduced"`` (recorded in the trajectory's metadata).
    """

    name: str
    state0: State
    loss_grad: LossGrad
    observe: Callable[[State], dict[str, Any]]
    final: Callable[[tuple[np.ndarray, ...]], dict[str, np.ndarray]]
    meta: dict[str, Any] = field(default_factory=dict)
    backend: str = "numpy"
    dtype: str = "float64"
    n_samples: int | None = None
    t_max: float = 1e4
    atol: float = 1e-12
    loss_tol: float | Callable[[float], Any] = 0.0
    grad_tol: float = 0.0
    compact: bool = True
    samples_hint: str = ""
    jacobian: Callable[..., Any] | None = None
    error_map: Callable[..., Any] | None = None
    aux: Any = None
    coordinates: str = "full"

    @property
    def batch(self) -> int:
        return int(self.state0[0].shape[0])


def _refuse(options: dict[str, Any], algorithm: str) -> None:
    for name, value in options.items():
        if name not in OPTIONS:
            raise TypeError(f"unknown option {shown(name)}; the options are {sorted(OPTIONS)}")
        applies = OPTIONS[name]
        if value is not None and applies is not None and algorithm not in applies:
            raise ValueError(f"{name} applies to algorithm {' or '.join(repr(a) for a in applies)}, "
                             f"not {shown(algorithm)}")


def _lr(lr: Any, algorithm: str, batch: int) -> Any:
    if lr is None:
        raise ValueError(f"lr is required for algorithm={shown(algorithm)}: a number > 0 or one per run")
    arr = positive_array("lr", lr, (0, 1))
    if arr.ndim == 1 and arr.shape[0] != batch:
        raise ValueError(f"lr has {arr.shape[0]} values but there are {batch} runs")
    return float(arr) if arr.ndim == 0 else arr


def resolve_algorithm(algorithm: Any, batch: int, dtype: str, atol: float, options: dict[str, Any]) -> Flow | Rule:
    """The algorithm object for ``algorithm`` (an object or a string shorthand) and the options.

    Raises ValueError naming any option that does not apply to the algorithm,
    or that an algorithm object already carries.
    """
    if isinstance(algorithm, (Flow, Rule)):
        kind = "flow" if isinstance(algorithm, Flow) else "discrete"
        for name in _HYPER:
            if options.get(name) is not None:
                raise ValueError(f"{name} is set on the algorithm object ({type(algorithm).__name__}); "
                                 f"do not pass it separately")
        if kind == "flow" and options.get("steps") is not None:
            raise ValueError("steps applies to discrete algorithms, not to a Flow")
        return algorithm
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS} or an algorithm object (flow.Flow, flow.GD, "
                         f"flow.SGD, flow.SAM, any flow.Rule); got {shown(algorithm)}")
    _refuse(options, algorithm)
    get = options.get
    if algorithm == "flow":
        rtol = default_rtol(dtype) if get("rtol") is None else positive_float("rtol", get("rtol"))
        atol = atol if get("atol") is None else nonneg_float("atol", get("atol"))
        max_steps = 200_000 if get("max_steps") is None else positive_int("max_steps", get("max_steps"))
        return Flow(rtol=rtol, atol=atol, max_steps=max_steps)
    lr = _lr(get("lr"), algorithm, batch)
    if algorithm == "gd":
        return GD(lr=lr)
    if algorithm == "sgd":
        return SGD(lr=lr, batch_size=1 if get("batch_size") is None else positive_int("batch_size", get("batch_size")))
    if algorithm == "sam":
        if get("rho") is None:
            raise ValueError("rho is required for algorithm='sam': a number >= 0")
        normalized = True if get("sam_normalized") is None else get("sam_normalized")
        if not isinstance(normalized, (bool, np.bool_)):
            raise TypeError(f"sam_normalized must be a bool; got {type(normalized).__name__}")
        return SAM(lr=lr, rho=nonneg_float("rho", get("rho")), normalized=bool(normalized))
    if algorithm == "flood":
        if get("flood_level") is None:
            raise ValueError("flood_level is required for algorithm='flood': a number >= 0")
        return Flooding(lr=lr, level=nonneg_float("flood_level", get("flood_level")))
    if get("lam") is None:
        raise ValueError("lam is required for algorithm='gr': a number > 0")
    eps = 1e-6 if get("gr_eps") is None else positive_float("gr_eps", get("gr_eps"))
    return GradientRegularized(lr=lr, lam=positive_float("lam", get("lam")), eps=eps)


#: The coordinates a family simulates in (see :func:`resolve_coordinates`).
COORDINATES = ("reduced", "full")


def resolve_coordinates(coordinates: str | None, algorithm: Any, *, stiff: bool = True, refusal: str = "") -> str:
    """``coordinates`` as given, or its default: ``"reduced"`` for gradient flow wherever the family's
    reduction applies (``refusal`` empty), ``"full"`` otherwise.

    Gradient flow is the string ``"flow"`` or a ``Flow``; for a ``stiff`` reduction (integrated by a
    Rosenbrock-W method) a ``Flow`` with an explicit tableau means the full coordinates. Raises
    ValueError for ``"reduced"`` with a discrete algorithm (no reduction of a discrete map is exact)
    or where the family says why its reduction does not apply (``refusal``).
    """
    is_flow = (isinstance(algorithm, str) and algorithm == "flow") or (
        isinstance(algorithm, Flow) and (not stiff or algorithm.tableau is None
                                         or isinstance(algorithm.tableau, RosenbrockTableau)))
    if coordinates is None:
        return "reduced" if is_flow and not refusal else "full"
    if coordinates not in COORDINATES:
        raise ValueError(f"coordinates must be one of {COORDINATES}; got {shown(coordinates)}")
    if coordinates == "reduced" and not is_flow:
        name = algorithm if isinstance(algorithm, str) else type(algorithm).__name__
        raise ValueError(f"coordinates='reduced' is exact for gradient flow only (algorithm='flow' or a Flow"
                         f"{' with a Rosenbrock-W tableau' if stiff else ''}); {shown(name)} runs in "
                         f"coordinates='full'")
    if coordinates == "reduced" and refusal:
        raise ValueError(f"coordinates='reduced' does not apply here: {refusal}; use coordinates='full'")
    return coordinates


def broadcast_runs(alpha_rows: np.ndarray, lr: Any) -> np.ndarray:
    """Initial scales with one row per run: a single scale is repeated for a sweep over step sizes."""
    if lr is None:
        return alpha_rows
    n_lr = np.asarray(lr, dtype=float).size if np.ndim(lr) == 1 else 1
    if alpha_rows.shape[0] == 1 and n_lr > 1:
        return np.repeat(alpha_rows, n_lr, axis=0)
    return alpha_rows


def _run_thresholds(value: Any, batch: int) -> np.ndarray:
    """``loss_tol`` as one threshold per run: a number for every run, or a sequence of ``batch`` of them
    (to stop a run where another run, say a reference at a finer rtol, stopped)."""
    if np.ndim(value) == 0:
        return np.full(batch, nonneg_float("loss_tol", value))
    tol = np.asarray(value)
    if tol.ndim != 1 or tol.shape[0] != batch:
        raise ValueError(f"loss_tol must be a number or a sequence of {batch} numbers (one per run); "
                         f"got shape {tol.shape}")
    return np.array([nonneg_float(f"loss_tol[{i}]", v) for i, v in enumerate(tol.tolist())])


def _stop(model: Model, method: Flow | Rule, options: dict[str, Any]) -> tuple[StopRule, list[float]]:
    if options.get("loss_tol") is not None:
        tol = _run_thresholds(options["loss_tol"], model.batch)
    elif callable(model.loss_tol):
        rel = float(method.rtol) if isinstance(method, Flow) else 0.0
        tol = np.broadcast_to(np.asarray(model.loss_tol(rel), dtype=float), (model.batch,))
    else:
        tol = np.full(model.batch, float(model.loss_tol))
    grad_tol = model.grad_tol if options.get("grad_tol") is None else nonneg_float("grad_tol", options["grad_tol"])
    return StopRule(loss_tol=tuple(tol.tolist()), grad_tol=float(grad_tol)), tol.tolist()


def _describe(method: Flow | Rule) -> dict[str, Any]:
    if isinstance(method, Flow):
        return {"algorithm": "flow", "time_unit": "time", "rtol": method.rtol, "atol": method.atol,
                "max_steps": method.max_steps}
    out: dict[str, Any] = {"algorithm": method.name, "time_unit": "step", "lr": np.asarray(method.lr).tolist()}
    for name in ("batch_size", "rho", "normalized", "lam", "eps", "level", "damping", "decay"):
        if hasattr(method, name):
            out[{"normalized": "sam_normalized", "eps": "gr_eps", "level": "flood_level"}.get(name, name)] = getattr(method, name)
    return out


def train(model: Model, algorithm: Any = "flow", *, seed: int = 0, **options: Any) -> Trajectory:
    """Run ``algorithm`` on ``model`` and return the trajectory (see the module docstring for the options).

    Parameters
    ----------
    model : Model
    algorithm : str or Flow or Rule
    seed : int
        Seed of the host generator behind SGD's schedule.
    **options
        ``lr, steps, t_max, t_eval, batch_size, rho, sam_normalized, lam, gr_eps, flood_level, rtol, atol, max_steps,
        loss_tol, grad_tol, sync_every, compile``; ``None`` means "not given".

    Returns
    -------
    Trajectory
        ``meta`` holds the model's metadata, the algorithm and its
        hyper-parameters, the step budget or horizon, the convergence
        thresholds, seed, backend, dtype and library versions.
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a solvable.sims.engine.driver.Model; got {type(model).__name__}")
    seed = check_seed(seed)
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"unknown option(s) {sorted(unknown)}; the options are {sorted(OPTIONS)}")
    compile = check_compile(options.get("compile") if options.get("compile") is not None else False)
    method = resolve_algorithm(algorithm, model.batch, model.dtype, model.atol, options)
    if model.jacobian is not None and not isinstance(method, Flow):
        raise ValueError(f"{model.name} in reduced coordinates integrates the gradient flow only; "
                         f"algorithm={shown(getattr(method, 'name', algorithm))} runs in full coordinates "
                         f"(coordinates='full')")
    if isinstance(method, SGD) and model.n_samples is None:
        raise ValueError(f"algorithm='sgd' draws mini-batches of samples, and this {model.name} problem has none"
                         + (f": {model.samples_hint}" if model.samples_hint else ""))
    sync = options.get("sync_every")
    if sync is not None:
        sync = positive_int("sync_every", sync)
        if isinstance(method, Flow):
            if method.sync_every is not None:
                raise ValueError("sync_every is set on the algorithm object (Flow); do not pass it separately")
            method = dataclasses.replace(method, sync_every=sync)
    if compile and isinstance(method, Flow):
        if method.compile:
            raise ValueError("compile is set on the algorithm object (Flow); do not pass it separately")
        method = dataclasses.replace(method, compile=True)
    t_max = model.t_max if options.get("t_max") is None else positive_float("t_max", options["t_max"])
    stop, loss_tol = _stop(model, method, options)
    meta = {"model": model.name, "coordinates": model.coordinates, **model.meta, **_describe(method), "loss_tol": loss_tol, "grad_tol": stop.grad_tol,
            "seed": seed, "backend": model.backend, "device": str(_device(model.state0[0])), "dtype": model.dtype,
            "versions": environment()}
    if isinstance(method, Flow) and (isinstance(method.tableau, RosenbrockTableau)
                                     or (method.tableau is None and model.jacobian is not None)):
        if model.jacobian is None:
            raise ValueError(f"the Rosenbrock-W method {method.tableau.name!r} needs the model's Jacobian; "
                             f"{model.name} gives one in reduced coordinates only")
        result = integrate_stiff(model.loss_grad, model.jacobian, model.state0, t_max=t_max,
                                 t_eval=options.get("t_eval"), observe=model.observe, error_map=model.error_map,
                                 aux=model.aux, method=method, stop=stop, compact=model.compact)
        meta["t_max"], meta["method"] = t_max, result.info["method"]
    elif isinstance(method, Flow):
        if model.jacobian is not None:
            raise ValueError(f"{model.name} in reduced coordinates needs a Rosenbrock-W tableau (the default); "
                             f"got {method.tableau.name!r}")
        result = integrate_flow(model.loss_grad, model.state0, t_max=t_max, t_eval=options.get("t_eval"),
                                observe=model.observe, method=method, stop=stop, compact=model.compact)
        meta["t_max"], meta["method"] = t_max, result.info["method"]
    else:
        steps = options.get("steps")
        if steps is None:
            lr_min = float(np.min(np.asarray(method.lr, dtype=float)))
            steps = int(min(math.ceil(t_max / lr_min), 2**62))
        steps = positive_int("steps", steps)
        record_at = None if options.get("t_eval") is None else check_record_steps(options["t_eval"], steps, "t_eval")
        result = run_discrete(method, model.loss_grad, model.state0, steps=steps, record_at=record_at,
                              observe=model.observe, stop=stop, n_samples=model.n_samples, seed=seed,
                              sync_every=sync, compile=compile)
        meta["steps"] = steps
    meta["compiled"] = result.info["compiled"]
    meta["sync_every"] = result.info["sync_every"]
    return Trajectory(times=result.times, observables=result.observables, final=model.final(result.final),
                      status=result.status, stop_step=result.stop_step, stop_time=result.stop_time, meta=meta)
