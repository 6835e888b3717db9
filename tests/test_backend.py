import importlib

import numpy as np
import pytest

from solvable.sims.engine import backend as B


def test_namespace_numpy_roundtrip():
    xp = B.namespace("numpy")
    x = B.asarray(np.arange(6.0).reshape(2, 3), xp, "float32")
    assert x.dtype == xp.float32
    np.testing.assert_array_equal(B.to_numpy(x), np.arange(6.0).reshape(2, 3))


def test_namespace_strict_roundtrip():
    xp = B.namespace("array_api_strict")
    x = B.asarray([[1.0, 2.0]], xp, "float64")
    assert type(x).__module__.startswith("array_api_strict")
    np.testing.assert_array_equal(B.to_numpy(x), [[1.0, 2.0]])
    assert B.backend_name(xp) == "array_api_strict"
    assert B.backend_name(B.namespace("numpy")) == "numpy"


@pytest.mark.parametrize("bad", ["jax", "NumPy", ""])
def test_unknown_backend_names_the_choices(bad):
    with pytest.raises(ValueError, match="backend must be one of"):
        B.namespace(bad)


def test_backend_must_be_a_string():
    with pytest.raises(TypeError, match="backend must be a string"):
        B.namespace(3)


def test_missing_backend_names_the_extra(monkeypatch):
    real_import = importlib.import_module

    def fake(name, *a, **k):
        if name == "cupy":
            raise ImportError("No module named 'cupy'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ImportError, match=r"solvable\[gpu\]"):
        B.namespace("cupy")


@pytest.mark.parametrize("dtype", ["float16", "int32", None])
def test_bad_dtype(dtype):
    with pytest.raises(ValueError, match="dtype must be one of"):
        B.get_dtype(np, dtype)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_bad_seed(seed):
    with pytest.raises((TypeError, ValueError), match="seed must be a non-negative integer"):
        B.check_seed(seed)


def test_same_seed_same_draws_on_every_backend(backend):
    xp = B.namespace(backend)
    a = B.to_numpy(B.asarray(B.host_rng(7).standard_normal((3, 4)), xp))
    b = B.host_rng(7).standard_normal((3, 4))
    np.testing.assert_array_equal(a, b)
