"""What a GPU would wait for and launch, counted on ``array_api_strict`` without a GPU.

Every way a strict array reaches the host goes through one of a few methods of its ``Array`` class
(DLPack, which ``sims.backend.to_numpy`` uses; the NumPy protocol; Python scalars, as a hidden
``if bool(x)`` or ``float(x)`` in a loop would make), host data enters through ``asarray``, and every
array an operation creates goes through ``Array._new``. :func:`traffic` counts the three while a block
runs. ``tests/test_sync.py`` holds the loops to budgets with it; ``benchmarks/claim_traffic.py`` counts
a whole claim.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
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

    def new(cls, *args, **kwargs):
        if sys._getframe(1).f_code.co_name != "_promote_scalar":
            count["ops"] += 1
        return original_new(cls, *args, **kwargs)

    with contextlib.ExitStack() as stack:
        for name in EXITS:
            stack.enter_context(mock.patch.object(Array, name, counted(name)))
        stack.enter_context(mock.patch.object(array_api_strict, "asarray", asarray))
        stack.enter_context(mock.patch.object(Array, "_new", classmethod(new)))
        yield count
