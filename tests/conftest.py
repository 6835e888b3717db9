"""Shared fixtures: the hypothesis profile and the array backends every engine test runs on."""

from __future__ import annotations

import importlib.util
import os


def _share_cores() -> None:
    """Under pytest-xdist (``-n N``), give each worker its share of the cores before any BLAS or torch pool
    starts (or, for a pool already loaded, through threadpoolctl): N workers each running the machine's full
    thread count oversubscribe it (OpenBLAS's spinning threads then slow a mid-size matmul several-fold).
    The variables reach the subprocesses the tests start (notebooks, the CLI, benchmarks); a value already
    set is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        share = str(max(1, len(os.sched_getaffinity(0)) // workers))
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, share)
        from threadpoolctl import threadpool_limits

        # a plugin has imported NumPy by now, so its BLAS pool already has its threads
        threadpool_limits(int(os.environ["OPENBLAS_NUM_THREADS"]))


_share_cores()

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# One deterministic profile everywhere: bounded examples, no deadline (first
# calls import cvxpy/sympy), derandomized so CI and laptops see the same cases.
settings.register_profile(
    "ci", max_examples=25, deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Backends tested without a GPU; cupy/torch join when installed.
BACKENDS = ["numpy", "array_api_strict"] + [
    b for b in ("torch", "cupy") if importlib.util.find_spec(b) is not None
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "cupy":
        cupy = pytest.importorskip("cupy")
        if cupy.cuda.runtime.getDeviceCount() == 0:  # pragma: no cover
            pytest.skip("cupy installed but no GPU")
    return request.param

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # tests/contract.py is shared by the suites


@pytest.fixture
def mutate(monkeypatch):
    """``mutate(owner, name, new)``: replace a library function wherever a module of solvable binds that very object
    (a family's face, the module that defines it, the modules that import it by name), so that a mutation reaches
    every caller however it looks the function up; undone after the test like any monkeypatch."""
    import sys

    def replace(owner, name, new):
        old = getattr(owner, name)
        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("solvable") and getattr(module, name, None) is old:
                monkeypatch.setattr(module, name, new)

    return replace
