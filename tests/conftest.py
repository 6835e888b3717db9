"""Shared fixtures: the hypothesis profile and the array backends every engine test runs on."""

from __future__ import annotations

import importlib.util
import os

import pytest
from hypothesis import HealthCheck, settings

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
