"""What a GPU would wait for and launch, counted on ``array_api_strict`` without a GPU.

Every way a strict array reaches the host goes through one of a few methods of its ``Array`` class
(DLPack, which ``sims.engine.backend.to_numpy`` uses; the NumPy protocol; Python scalars, as a hidden
``if bool(x)`` or ``float(x)`` in a loop would make), host data enters through ``asarray``, and every
array an operation creates goes through ``Array._new``. :func:`traffic` counts the three while a block
runs, and a fourth, ``launches``: the calls our code makes into the library that a GPU library would
run as a kernel. ``tests/test_sync.py`` holds the loops to budgets with it; ``benchmarks/claim_traffic.py``
counts a whole claim.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import ModuleType
from unittest import mock

import array_api_strict

EXITS = ("__dlpack__", "__array__", "__bool__", "__float__", "__int__", "__index__", "__complex__")


@contextlib.contextmanager
def traffic() -> Iterator[dict[str, int]]:
    """Counts while the block runs: ``reads`` (host reads of device values: on a GPU each waits for the
    queue), ``up`` (host data moved onto the device: a copy from pageable host memory waits too) and
    ``ops`` (arrays created by operations: on a GPU, kernel launches; Python scalars promoted to arrays
    are left out, since a GPU backend passes them as kernel arguments)."""
    Array = type(array_api_strict.ones(1))
    count = {"reads": 0, "up": 0, "ops": 0}

    def counted(name):
        original = getattr(Array, name)

        def method(self, *args, **kwargs):
            count["reads"] += 1
            return original(self, *args, **kwargs)

        return method

    original_asarray, original_new = array_api_strict.asarray, Array._new.__func__

    def asarray(obj, *args, **kwargs):
        if not isinstance(obj, Array):
            count["up"] += 1
        return original_asarray(obj, *args, **kwargs)

    inside = [False, False]  # whether one of our calls into the library is running; whether it created an array

    def new(cls, *args, **kwargs):
        inside[1] = True
        if sys._getframe(1).f_code.co_name != "_promote_scalar":
            count["ops"] += 1
        return original_new(cls, *args, **kwargs)

    with contextlib.ExitStack() as stack:
        for name in EXITS:
            stack.enter_context(mock.patch.object(Array, name, counted(name)))
        stack.enter_context(mock.patch.object(array_api_strict, "asarray", asarray))
        stack.enter_context(mock.patch.object(Array, "_new", classmethod(new)))
        _count_launches(stack, Array, count, inside)
        yield count


# Calls that make a new view of the same memory, allocate without writing, move data between host and device
# or only describe dtypes, rather than compute: no kernel on CuPy or torch. (A reshape of a non-contiguous array copies there; our loops reshape
# contiguous buffers.)
VIEWS = {"reshape", "expand_dims", "squeeze", "permute_dims", "matrix_transpose", "broadcast_to", "broadcast_arrays",
         "asarray", "to_device", "from_dlpack", "empty", "empty_like", "finfo", "iinfo", "result_type", "can_cast",
         "isdtype", "__array_namespace_info__"}

# The Array methods our loops call that compute: the operators (in place or not) and item assignment.
_OPERATORS = ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "matmul", "and", "or", "xor", "lshift",
              "rshift")
ARRAY_OPS = (
    [f"__{p}{op}__" for op in _OPERATORS for p in ("", "r", "i")]
    + ["__neg__", "__pos__", "__abs__", "__invert__", "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__",
       "__getitem__", "__setitem__"]
)

# The operators that write into an existing array instead of creating one.
WRITES = {"__setitem__"} | {f"__i{op}__" for op in _OPERATORS}


def _is_view(name: str, args: tuple, kwargs: dict) -> bool:
    """Whether the call ``name(*args, **kwargs)`` launches no kernel on a GPU library."""
    if name in VIEWS:
        return True
    if name == "astype":  # a cast to the same dtype without a copy returns the array itself
        x, dtype = args[0], args[1] if len(args) > 1 else kwargs["dtype"]
        return x.dtype == dtype and not kwargs.get("copy", True)
    if name == "__getitem__":  # basic indexing (ints, slices, ..., None) is a view; an index array gathers
        key = args[1] if isinstance(args[1], tuple) else (args[1],)
        return not any(hasattr(k, "shape") for k in key)
    return False


def _count_launches(stack: contextlib.ExitStack, Array: type, count: dict[str, int], inside: list) -> None:
    """Count ``launches``: each call from outside the library into one of its functions or array
    operators that computes (not a view, see :func:`_is_view`) and creates an array or writes one (item
    assignment), once however many arrays it makes inside (scalar operands are kernel arguments on a GPU).
    A linear-algebra routine counts once though a GPU library runs several kernels for it: a lower bound.
    ``inside``: whether one of our calls into the library is running (calls it makes in turn are not ours)
    and whether it created an array (``Array._new`` sets that)."""
    count["launches"] = 0

    def wrap(name, fn):
        def call(*args, **kwargs):
            if inside[0]:
                return fn(*args, **kwargs)
            inside[0], inside[1] = True, False
            try:
                out = fn(*args, **kwargs)
            finally:
                inside[0] = False
            if (inside[1] or name in WRITES) and not _is_view(name, args, kwargs):
                count["launches"] += 1
            return out

        return call

    for name in ARRAY_OPS:
        if hasattr(Array, name):
            stack.enter_context(mock.patch.object(Array, name, wrap(name, getattr(Array, name))))
    for module in (array_api_strict, array_api_strict.linalg):
        for name in module.__all__:
            fn = getattr(module, name)
            if callable(fn) and not isinstance(fn, (type, ModuleType)) and not name[0].isupper():
                stack.enter_context(mock.patch.object(module, name, wrap(name, fn)))
