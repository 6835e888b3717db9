"""The contract every model family signs: one spec per family, one suite over all specs.

Every family hands the one driver a :class:`solvable.sims.engine.driver.Model`; the
suite reaches each family through that protocol (the spec's ``model`` builds
it) and through its ``simulate``, which shares one signature. Adding a family
means adding one :class:`ModelSpec` to :data:`SPECS`; the suite in
``test_contract.py`` then checks the protocol, the hand-written gradient
against finite differences, seed determinism, numpy vs array_api_strict
agreement, divergence reporting, the refusal of options that do not apply,
and the validation of every Problem field.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from solvable.sims import deep_linear, diagonal, lsa, matrix_sensing, quadratic, ufm
from solvable.sims.deep_linear import bw as deep_linear_bw
from solvable.sims.lsa import softmax as lsa_softmax
from solvable.sims.ufm import dynamics as ufm_dynamics


@dataclass(frozen=True)
class ModelSpec:
    name: str
    #: seed -> a small Problem
    make_problem: Callable[[int], Any]
    #: (problem, rng) -> a random state, tuple of host arrays with batch axis 2
    random_state: Callable[[Any, np.random.Generator], tuple[np.ndarray, ...]]
    #: problem -> the family's driver Model (NumPy backend)
    model: Callable[[Any], Any]
    #: number of samples (for SGD weights), or None
    n_samples: Callable[[Any], int | None]
    #: (problem, **kw) -> Trajectory
    simulate: Callable[..., Any]
    #: small, quick runs for every algorithm the family supports
    runs: dict[str, dict[str, Any]]
    #: a run whose step size is far too large
    divergent: dict[str, Any]
    #: the Problem class and valid keyword arguments, and bad values per field
    problem_cls: type
    problem_kwargs: Callable[[int], dict[str, Any]]
    bad_fields: list[tuple[str, Any]] = field(default_factory=list)
    #: whether loss_grad takes per-sample weights (models trained by SGD)
    weighted: bool = True

    def loss_grad(self, problem: Any, state: tuple[Any, ...], weights: Any = None) -> tuple[Any, tuple[Any, ...]]:
        """The model's loss and hand-written gradient, reached through the driver's protocol."""
        return self.model(problem).loss_grad(state, weights)


def _diag_kwargs(seed: int) -> dict[str, Any]:
    p = diagonal.Problem.random(6, 10, 2, seed=seed)
    return {"X": p.X, "y": p.y, "w_star": p.w_star}


DIAGONAL = ModelSpec(
    name="diagonal",
    make_problem=lambda seed: diagonal.Problem.random(6, 10, 2, seed=seed),
    random_state=lambda p, rng: (rng.uniform(0.2, 1.5, (2, 2 * p.d)),),
    model=lambda p: diagonal.model(p, 0.5),
    n_samples=lambda p: p.n,
    simulate=diagonal.simulate,
    runs={
        "flow": dict(alpha=[0.1, 1.0], t_max=50.0, rtol=1e-8),  # 1e-8: array_api_strict takes 4 ms a step
        "gd": dict(alpha=[0.1, 1.0], algorithm="gd", lr=0.02, steps=200),
        "sgd": dict(alpha=[0.1, 1.0], algorithm="sgd", lr=0.02, steps=200, batch_size=2),
        "sam": dict(alpha=[0.1, 1.0], algorithm="sam", lr=0.02, rho=0.05, steps=200),
        "gr": dict(alpha=[0.1, 1.0], algorithm="gr", lr=0.02, lam=0.05, steps=200),
        "flood": dict(alpha=[0.1, 1.0], algorithm="flood", lr=0.02, flood_level=0.05, steps=200),
    },
    divergent=dict(alpha=[0.5, 0.5], algorithm="gd", lr=[0.01, 50.0], steps=300),
    problem_cls=diagonal.Problem,
    problem_kwargs=_diag_kwargs,
    bad_fields=[
        ("X", np.ones(5)),
        ("X", np.full((6, 10), np.nan)),
        ("X", "matrix"),
        ("y", np.ones(5)),
        ("y", np.array([np.inf] * 6)),
        ("w_star", np.ones(3)),
        ("noise", -1.0),
        ("noise", float("nan")),
    ],
)

DIAGONAL_SHAPED = ModelSpec(
    name="diagonal_shaped",
    make_problem=DIAGONAL.make_problem,
    random_state=lambda p, rng: (rng.uniform(0.2, 1.5, (2, 4 * p.d)),),
    model=lambda p: diagonal.model(p, 0.5, shape=0.5),
    n_samples=DIAGONAL.n_samples,
    simulate=functools.partial(diagonal.simulate, shape=0.5),
    runs={k: v for k, v in DIAGONAL.runs.items()},
    divergent=DIAGONAL.divergent,
    problem_cls=diagonal.Problem,
    problem_kwargs=_diag_kwargs,
    bad_fields=DIAGONAL.bad_fields,
)

def _deep_kwargs(seed: int) -> dict[str, Any]:
    p = deep_linear.Problem.random(3, 2, (3, 2), seed=seed)
    return {"target": p.target, "hidden": p.hidden}


DEEP_LINEAR = ModelSpec(
    name="deep_linear",
    make_problem=lambda seed: deep_linear.Problem.random(3, 2, (3, 2), seed=seed),
    random_state=lambda p, rng: tuple(rng.standard_normal((2, p.widths[j + 1], p.widths[j])) * 0.7
                                      for j in range(p.depth)),
    model=lambda p: deep_linear.model(p, 0.5, init="random"),
    n_samples=lambda p: None,
    simulate=deep_linear.simulate,
    runs={
        "flow": dict(alpha=[0.1, 0.5], t_max=5.0),
        "gd": dict(alpha=[0.1, 0.5], algorithm="gd", lr=0.05, steps=100, init="random"),
        "sam": dict(alpha=[0.1, 0.5], algorithm="sam", lr=0.05, rho=0.05, steps=100, init="random"),
    },
    divergent=dict(alpha=[0.5, 0.5], algorithm="gd", lr=[0.01, 20.0], steps=300, init="random"),
    problem_cls=deep_linear.Problem,
    problem_kwargs=_deep_kwargs,
    bad_fields=[("target", np.ones(3)), ("target", np.full((2, 3), np.nan)), ("target", "t"),
                ("hidden", ("a",)), ("hidden", (0,)), ("hidden", 3)],
    weighted=False,
)

DEEP_LINEAR_BW = ModelSpec(
    name="deep_linear_bw",
    make_problem=lambda seed: deep_linear_bw.Problem.random(4, (3, 2), latent=3, seed=seed),
    random_state=lambda p, rng: tuple(rng.standard_normal((2, p.widths[j + 1], p.widths[j])) * 0.7
                                      for j in range(p.depth)),
    # tau > 0: the loss is smooth everywhere (at tau = 0 it is not where W loses rank)
    model=lambda p: deep_linear_bw.model(p, 0.5, tau=0.1),
    n_samples=lambda p: None,
    simulate=deep_linear_bw.simulate,
    runs={
        "flow": dict(alpha=[0.1, 0.5], t_max=5.0, tau=0.1),
        "gd": dict(alpha=[0.1, 0.5], algorithm="gd", lr=0.05, steps=100),
        "sam": dict(alpha=[0.1, 0.5], algorithm="sam", lr=0.05, rho=0.05, steps=100, tau=0.1),
    },
    divergent=dict(alpha=[0.5, 0.5], algorithm="gd", lr=[0.01, 20.0], steps=300),
    problem_cls=deep_linear_bw.Problem,
    problem_kwargs=lambda seed: {"covariance": np.diag([2.0, 1.0, 0.5]), "hidden": (2,), "latent": 3},
    bad_fields=[("covariance", np.ones(3)), ("covariance", np.full((3, 3), np.nan)), ("covariance", "c"),
                ("covariance", np.array([[1.0, 2.0], [0.0, 1.0]])), ("covariance", -np.eye(3)),
                ("hidden", ("a",)), ("hidden", (0,)), ("hidden", 3), ("latent", 0), ("latent", 2.5)],
    weighted=False,
)

def _quadratic_problem(seed: int) -> quadratic.Problem:
    g = np.random.default_rng(seed).standard_normal((5, 3))
    return quadratic.Problem.from_gradients(g)


QUADRATIC = ModelSpec(
    name="quadratic",
    make_problem=_quadratic_problem,
    random_state=lambda p, rng: (rng.standard_normal((2, p.d)),),
    model=lambda p: quadratic.model(p, [0.5, 1.0]),
    n_samples=lambda p: p.n,
    simulate=quadratic.simulate,
    runs={
        "flow": dict(alpha=[0.1, 0.5], t_max=5.0),
        "gd": dict(alpha=[0.1, 0.5], algorithm="gd", lr=0.05, steps=100),
        "sgd": dict(alpha=[0.1, 0.5], algorithm="sgd", lr=0.05, steps=100, batch_size=2),
        "sam": dict(alpha=[0.1, 0.5], algorithm="sam", lr=0.05, rho=0.05, steps=100),
    },
    divergent=dict(alpha=[0.5, 0.5], algorithm="gd", lr=[0.01, 50.0], steps=300),
    problem_cls=quadratic.Problem,
    problem_kwargs=lambda seed: {"hessians": _quadratic_problem(seed).hessians},
    bad_fields=[("hessians", np.ones((2, 2))), ("hessians", np.full((1, 2, 2), np.nan)), ("hessians", "h"),
                ("hessians", np.array([[[1.0, 2.0], [0.0, 1.0]]])), ("hessians", -np.eye(2)[None])],
)

SCALAR_NETWORK = ModelSpec(
    name="scalar_network",
    make_problem=lambda seed: deep_linear.Problem.scalar(4, y=1.0 + 0.5 * (seed % 3)),
    random_state=lambda p, rng: tuple(rng.uniform(0.5, 1.5, (2, 1, 1)) for _ in range(p.depth)),
    model=lambda p: deep_linear.model(p, 0.5),
    n_samples=lambda p: None,
    simulate=deep_linear.simulate,
    runs={
        "flow": dict(alpha=[0.1, 0.5], t_max=5.0),
        "gd": dict(alpha=[0.1, 0.5], algorithm="gd", lr=0.05, steps=100),
        "sam": dict(alpha=[0.1, 0.5], algorithm="sam", lr=0.05, rho=0.05, steps=100),
    },
    divergent=dict(alpha=[0.5, 0.5], algorithm="gd", lr=[0.01, 20.0], steps=300, init="random"),
    problem_cls=deep_linear.Problem,
    problem_kwargs=lambda seed: {"target": np.array([[1.5]]), "hidden": (1, 1, 1)},
    bad_fields=[("target", np.array([1.5])), ("target", np.array([[np.nan]])), ("hidden", (1, -1))],
    weighted=False,
)


def _deep_data(seed: int) -> Any:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((7, 3)) * np.array([1.0, 0.6, 1.4])  # correlated-scale, not whitened, inputs
    Y = X @ rng.standard_normal((3, 2)) + 0.1 * rng.standard_normal((7, 2))
    return deep_linear.Problem.from_data(X, Y, (3, 2))


def _deep_data_kwargs(seed: int) -> dict[str, Any]:
    p = _deep_data(seed)
    return {"X": p.X, "Y": p.Y, "hidden": p.hidden}


DEEP_LINEAR_DATA = ModelSpec(
    name="deep_linear_data",
    make_problem=_deep_data,
    random_state=DEEP_LINEAR.random_state,
    model=lambda p: deep_linear.model(p, 0.5, init="random"),
    n_samples=lambda p: p.n,
    simulate=deep_linear.simulate,
    runs={
        "flow": dict(alpha=[0.1, 0.5], t_max=5.0, init="random"),
        "gd": dict(alpha=[0.1, 0.5], algorithm="gd", lr=0.05, steps=100, init="random"),
        "sgd": dict(alpha=[0.1, 0.5], algorithm="sgd", lr=0.05, steps=100, batch_size=2, init="random"),
        "sam": dict(alpha=[0.1, 0.5], algorithm="sam", lr=0.05, rho=0.05, steps=100, init="random"),
    },
    divergent=dict(alpha=[0.5, 0.5], algorithm="gd", lr=[0.01, 20.0], steps=300, init="random"),
    problem_cls=deep_linear.Problem,
    problem_kwargs=_deep_data_kwargs,
    bad_fields=[("X", np.ones(3)), ("X", np.full((7, 3), np.inf)), ("Y", np.ones((6, 2))), ("Y", None),
                ("X", "x"), ("hidden", (0,))],
)


def _ufm_problem(loss: str, **kw: Any) -> Callable[[int], Any]:
    return lambda seed: ufm.Problem(n=(4, 3, 2), d=4, loss=loss, lambda_W=1e-2, lambda_H=1e-2, **kw)


def _ufm_spec(name: str, loss: str, **kw: Any) -> ModelSpec:
    make = _ufm_problem(loss, **kw)

    def random_state(p: Any, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        parts = [rng.standard_normal((2,) + shape) * 0.5 for shape in ufm_dynamics._widths(p)]
        parts.append(rng.standard_normal((2, p.d, p.N)) * 0.5)
        if p.lambda_b is not None:
            parts.append(rng.standard_normal((2, p.K)) * 0.5)
        return tuple(parts)

    return ModelSpec(
        name=name,
        make_problem=make,
        random_state=random_state,
        model=lambda p: ufm.model(p, 0.5),
        n_samples=lambda p: p.N,
        simulate=ufm.simulate,
        runs={"flow": dict(alpha=[0.1, 0.3], t_max=50.0), "gd": dict(alpha=[0.1, 0.3], algorithm="gd", lr=0.5, steps=100),
              "sgd": dict(alpha=[0.1, 0.3], algorithm="sgd", lr=0.5, steps=100, batch_size=3)},
        divergent=dict(alpha=[0.3, 0.3], algorithm="gd", lr=[0.5, 500.0], steps=300),
        problem_cls=ufm.Problem,
        problem_kwargs=lambda seed: {"n": (4, 3, 2), "d": 4, "loss": loss, **kw},
        bad_fields=[("n", (3,)), ("n", (2, 0)), ("n", "ab"), ("d", 0), ("loss", "hinge"), ("lambda_W", -1.0),
                    ("lambda_H", 0.0), ("lambda_b", -0.5), ("depth", 0), ("relu", "yes")],
    )


UFM_MSE = _ufm_spec("ufm_mse", "mse")
UFM_CE_DEEP = _ufm_spec("ufm_ce_deep_bias_relu", "ce", depth=2, lambda_b=0.01, relu=True)


def _ms_problem(operator: str, symmetric: bool) -> Callable[[int], Any]:
    m = None if operator == "population" else 30
    return lambda seed: matrix_sensing.Problem.random(6, 6 if symmetric else 5, 2, m=m, symmetric=symmetric,
                                                      operator=operator, noise=0.0, seed=seed)


def _ms_spec(name: str, operator: str, symmetric: bool, factorisation: str, **kw: Any) -> ModelSpec:
    make = _ms_problem(operator, symmetric)
    k = 3

    def random_state(p: Any, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        return tuple(rng.standard_normal((2,) + x.shape[1:]) * 0.6 for x in
                     matrix_sensing.initial_state(p, 1.0, factorisation=factorisation, k=k, **kw))

    def kwargs(seed: int) -> dict[str, Any]:
        p = make(seed)
        return {"M_star": p.M_star, "operator": p.operator, "A": p.A, "mask": p.mask, "y": p.y,
                "symmetric": p.symmetric}

    dense = operator in ("gaussian", "symmetric")
    common = dict(k=k, factorisation=factorisation, **kw)
    runs = {
        "flow": dict(alpha=[0.1, 0.5], t_max=5.0, **common),
        "gd": dict(alpha=[0.1, 0.5], algorithm="gd", lr=0.05, steps=100, **common),
        "sam": dict(alpha=[0.1, 0.5], algorithm="sam", lr=0.05, rho=0.05, steps=100, **common),
        "gr": dict(alpha=[0.1, 0.5], algorithm="gr", lr=0.05, lam=0.05, steps=100, **common),
    }
    if dense:
        runs["sgd"] = dict(alpha=[0.1, 0.5], algorithm="sgd", lr=0.05, steps=100, batch_size=5, **common)
    bad = [("M_star", np.ones(3)), ("M_star", np.full((6, 6), np.nan)), ("operator", "fourier"), ("y", None),
           ("noise", -1.0), ("outliers", 1.5), ("symmetric", "yes")]
    if dense:
        bad += [("A", np.ones((30, 4, 4))), ("y", np.ones(7))]
    elif operator == "completion":
        bad += [("mask", np.ones((2, 2), dtype=bool)), ("mask", np.zeros((6, 5), dtype=bool))]
    if operator == "population":
        bad = [("M_star", np.ones(3)), ("M_star", np.full((6, 6), np.nan)), ("operator", "fourier"),
               ("y", np.ones(3)), ("noise", 0.5), ("symmetric", "yes")]
    return ModelSpec(
        name=name,
        make_problem=make,
        random_state=random_state,
        model=lambda p: matrix_sensing.model(p, 0.5, **common),
        n_samples=lambda p: p.m if dense else None,
        simulate=matrix_sensing.simulate,
        runs=runs,
        divergent=dict(alpha=[0.5, 0.5], algorithm="gd", lr=[0.01, 50.0], steps=300, **common),
        problem_cls=matrix_sensing.Problem,
        problem_kwargs=kwargs,
        bad_fields=bad,
        weighted=dense,
    )


MATRIX_SENSING = _ms_spec("matrix_sensing", "symmetric", True, "symmetric")
MATRIX_SENSING_COMPLETION = _ms_spec("matrix_sensing_completion_asymmetric", "completion", False, "asymmetric")
MATRIX_SENSING_DEEP = _ms_spec("matrix_sensing_population_deep", "population", False, "deep", depth=3)


def _lsa_spec(name: str, architecture: str, sampled: bool, **kw: Any) -> ModelSpec:
    lam = np.diag([2.0, 1.0, 0.5])

    def make(seed: int) -> Any:
        if sampled:
            return lsa.Problem.random(3, 4, n_prompts=12, Lambda=lam, noise=0.1, seed=seed)
        return lsa.Problem.random(3, 4, Lambda=lam, noise=0.1, task="inverse")

    def random_state(p: Any, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        return tuple(rng.standard_normal((2,) + x.shape[1:]) * 0.6 for x in
                     lsa.initial_state(p, 1.0, architecture=architecture, **kw))

    def kwargs(seed: int) -> dict[str, Any]:
        p = make(seed)
        return {"Lambda": p.Lambda, "N": p.N, "noise": p.noise, "task": p.task, "link": p.link, "X": p.X, "y": p.y}

    common = dict(architecture=architecture, **kw)
    lr = 0.01  # the full model's curvature on 12 prompts reaches ~100 at alpha = 0.5
    runs = {
        # sampled prompts make the flow stiff (and array_api_strict is slow): a short horizon
        "flow": dict(alpha=[0.1, 0.5], t_max=1.0 if sampled else 5.0, **common),
        "gd": dict(alpha=[0.1, 0.5], algorithm="gd", lr=lr, steps=100, **common),
        "sam": dict(alpha=[0.1, 0.5], algorithm="sam", lr=lr, rho=0.05, steps=100, **common),
        "gr": dict(alpha=[0.1, 0.5], algorithm="gr", lr=lr / 2, lam=0.01, steps=100, **common),
    }
    bad = [("Lambda", np.ones(3)), ("Lambda", np.array([[1.0, 2.0], [0.0, 1.0]])), ("Lambda", -np.eye(3)),
           ("Lambda", np.full((3, 3), np.nan)), ("N", 0), ("N", 2.5), ("noise", -1.0), ("task", "uniform"),
           ("link", "relu")]
    if sampled:
        runs["sgd"] = dict(alpha=[0.1, 0.5], algorithm="sgd", lr=lr, steps=100, batch_size=4, **common)
        bad += [("X", np.ones((12, 4, 3))), ("X", np.full((12, 5, 3), np.inf)), ("y", np.ones((12, 4)))]
    return ModelSpec(
        name=name,
        make_problem=make,
        random_state=random_state,
        model=lambda p: lsa.model(p, 0.5, **common),
        n_samples=lambda p: p.n_prompts,
        simulate=lsa.simulate,
        runs=runs,
        divergent=dict(alpha=[0.5, 0.5], algorithm="gd", lr=[0.01, 50.0], steps=300, **common),
        problem_cls=lsa.Problem,
        problem_kwargs=kwargs,
        bad_fields=bad,
        weighted=sampled,
    )


LSA_POPULATION = _lsa_spec("lsa_reduced_population", "reduced", False)
LSA_FULL = _lsa_spec("lsa_full_sampled", "full", True)
LSA_AHN = _lsa_spec("lsa_ahn_3_layers", "ahn", True, layers=3)


def _softmax_spec(name: str, parameterisation: str) -> ModelSpec:
    make = functools.partial(lambda seed: lsa_softmax.Problem.random(3, 4, 3, seed=seed))

    def random_state(p: Any, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        return tuple(rng.standard_normal((2,) + x.shape[1:]) for x in
                     lsa_softmax.initial_state(p, 1.0, parameterisation=parameterisation))

    def kwargs(seed: int) -> dict[str, Any]:
        p = make(seed)
        return {"X": p.X, "z": p.z, "Y": p.Y, "v": p.v}

    common = dict(parameterisation=parameterisation)
    return ModelSpec(
        name=name,
        make_problem=make,
        random_state=random_state,
        model=lambda p: lsa_softmax.model(p, 0.5, **common),
        n_samples=lambda p: p.n,
        simulate=lsa_softmax.simulate,
        runs={"flow": dict(alpha=[0.1, 0.5], t_max=5.0, **common),
              "gd": dict(alpha=[0.1, 0.5], algorithm="gd", lr=0.5, steps=100, **common),
              "sgd": dict(alpha=[0.1, 0.5], algorithm="sgd", lr=0.5, steps=100, batch_size=2, **common),
              "sam": dict(alpha=[0.1, 0.5], algorithm="sam", lr=0.5, rho=0.05, steps=100, **common),
              "gr": dict(alpha=[0.1, 0.5], algorithm="gr", lr=0.5, lam=0.05, steps=100, **common)},
        # the logistic loss is bounded and its gradient too: only an absurd step overflows the logits
        divergent=dict(alpha=[0.5, 0.5], algorithm="gd", lr=[0.01, 1e100], steps=300, **common),
        problem_cls=lsa_softmax.Problem,
        problem_kwargs=kwargs,
        bad_fields=[("X", np.ones((3, 4))), ("X", np.ones((3, 1, 3))), ("z", np.ones((2, 3))),
                    ("Y", np.array([1.0, 0.0, -1.0])), ("v", np.ones(4)), ("v", np.array([np.nan, 1.0, 1.0]))],
    )


SOFTMAX_W = _softmax_spec("lsa_softmax_W", "W")
SOFTMAX_KQ = _softmax_spec("lsa_softmax_KQ", "KQ")

SPECS = [DIAGONAL, DIAGONAL_SHAPED, DEEP_LINEAR, DEEP_LINEAR_BW, QUADRATIC, SCALAR_NETWORK, DEEP_LINEAR_DATA, UFM_MSE, UFM_CE_DEEP,
         MATRIX_SENSING, MATRIX_SENSING_COMPLETION, MATRIX_SENSING_DEEP, LSA_POPULATION, LSA_FULL, LSA_AHN, SOFTMAX_W,
         SOFTMAX_KQ]
