"""Fused steps: a loop's per-step function handed to the backend's own compiler.

An eager array library runs every operation of a step as its own pass over
memory (on a GPU, its own kernel launch): the diagonal network's GD step is two
matrix products and some twenty elementwise passes over the ``(B, 2d)``
parameters (``tests/test_sync.py`` counts the operations). A tracing compiler
fuses those passes into a few loops. The loops (:mod:`sims.engine.discrete`) write
each step as one function of array arguments only (``k`` a device counter,
the rule's host-side draws made before it, :meth:`sims.engine.rules.Rule.draw`), so
that a compiler traces it once and replays it every step.

``compile=False`` (the default) runs that function eagerly: it is the
reference every compiled path is tested against (``tests/test_compiled.py``).
``compile=True`` is available on ``backend="torch"`` (``torch.compile``,
TorchInductor: C++ loops on the CPU, Triton kernels on a GPU). Other backends
refuse it: CuPy's equivalents (an ``ElementwiseKernel`` per model, a captured
CUDA graph of a step) could not be tested against the reference without a GPU.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, TypeVar

from ._validate import shown
from .backend import backend_name

__all__ = ["COMPILERS", "check_compile", "compiler", "fixed"]

F = TypeVar("F", bound=Callable[..., Any])

#: Backends with a compiled path, and the compiler each one uses.
COMPILERS = {"torch": "torch.compile (TorchInductor)"}


def check_compile(compile: Any) -> bool:
    """Validate the ``compile`` option: ``True`` or ``False``."""
    if not isinstance(compile, bool):
        raise TypeError(f"compile must be True or False; got {shown(compile)}")
    return compile


def compiler(xp: ModuleType, compile: bool, dynamic: bool = False) -> Callable[[F], F]:
    """What turns a step function into the one the loop calls on backend ``xp``: the function itself when
    ``compile`` is False, the backend's compiler otherwise. ``dynamic``: the batch shrinks as runs finish
    (the flows drop them), so the trace takes the batch size as a symbol; otherwise the shapes are fixed for
    the run and the trace is static.

    Raises
    ------
    ValueError
        If ``compile`` is True on a backend without a compiled path (see :data:`COMPILERS`).
    """
    if not check_compile(compile):
        return lambda fn: fn
    name = backend_name(xp)
    if name not in COMPILERS:
        raise ValueError(f"compile=True needs a backend with a compiler: {sorted(COMPILERS)}; got backend "
                         f"{shown(name)} (compile=False runs the same step eagerly)")
    import torch

    # One trace per run: the step counter is a device array and a shrinking batch a symbol (torch still traces
    # a batch of one apart, so the flows never shrink a batch below two).
    return lambda fn: torch.compile(fn, dynamic=bool(dynamic))


def fixed(compile: bool, *arrays: Any, axis: int | None = None) -> None:
    """Tell the compiler that ``arrays`` (a method's coefficients, its stage count) keep their shapes, or their
    ``axis``, in a loop whose batch is a symbol: otherwise a length that happens to equal the batch size is
    tied to it (torch's "duck sizing") and the trace redone when the batch shrinks. Nothing when not
    compiling."""
    if compile:
        import torch._dynamo

        for a in arrays:
            torch._dynamo.mark_static(a, axis)
