"""The engine's view of a model: its tuple state packed into one ``(B, P)`` array, and its loss on that array.

Working on one array makes every Runge-Kutta combination and every update
rule a single operation instead of one per component. :class:`StateLayout`
packs and unpacks (views where possible); :class:`Objective` is the model's
``loss_grad`` seen through the layout, which is what the discrete rules call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .backend import xp_of

__all__ = ["LossGrad", "Objective", "State", "StateLayout", "row_norm_sq"]

State = tuple[Any, ...]
#: ``loss_grad(state, weights=None) -> (loss (B,), grads shaped like state)``
LossGrad = Callable[..., tuple[Any, State]]


def row_norm_sq(x: Any) -> Any:
    """Squared Euclidean norm of each row of a ``(B, P)`` array."""
    return xp_of(x).sum(x * x, axis=1)


class StateLayout:
    """How a tuple state with a leading batch axis ``B`` maps to one ``(B, P)`` array.

    Parameters
    ----------
    state : sequence of arrays, each (B, ...)
        An example state: every array shares the batch axis and the dtype.
    """

    def __init__(self, state: Sequence[Any]) -> None:
        state = tuple(state)
        if not state:
            raise ValueError("state0 must hold at least one array")
        for x in state:
            if getattr(x, "ndim", 0) < 1 or x.shape[0] != state[0].shape[0]:
                raise ValueError("every array of state0 must share the leading batch axis B")
            if x.dtype != state[0].dtype:
                raise ValueError("every array of state0 must share one dtype")
        self.xp = xp_of(state[0])
        self.batch = int(state[0].shape[0])
        self.shapes = [tuple(x.shape[1:]) for x in state]
        self.sizes = [math.prod(s) for s in self.shapes]
        self.identity = len(state) == 1 and len(self.shapes[0]) == 1

    @property
    def size(self) -> int:
        """Parameters per run ``P``."""
        return sum(self.sizes)

    def pack(self, parts: Sequence[Any]) -> Any:
        """One ``(B, P)`` array from a tuple shaped like the state."""
        if self.identity:
            return parts[0]
        xp, b = self.xp, parts[0].shape[0]
        flat = [xp.reshape(x, (b, n)) for x, n in zip(parts, self.sizes)]
        return flat[0] if len(flat) == 1 else xp.concat(flat, axis=1)

    def unpack(self, flat: Any, host: bool = False) -> State:
        """The state's arrays from ``flat`` (``host=True``: ``flat`` is a NumPy array)."""
        if self.identity:
            return (flat,)
        out, start, xp = [], 0, (np if host else self.xp)
        for shape, n in zip(self.shapes, self.sizes):
            out.append(xp.reshape(flat[:, start : start + n], (flat.shape[0],) + shape))
            start += n
        return tuple(out)


@dataclass(frozen=True)
class Objective:
    """A model's loss and hand-written gradient on packed ``(B, P)`` arrays.

    Attributes
    ----------
    fn : callable
        The model's ``loss_grad(state, weights=None)``; ``weights`` ``(B, n)``
        are per-sample weights (rows summing to one; ``None``: the full mean).
    layout : StateLayout
    n_samples : int or None
        Samples the loss averages over (what SGD draws from); ``None`` when the
        loss is not a mean over samples.
    """

    fn: LossGrad
    layout: StateLayout
    n_samples: int | None = None

    def loss_grad(self, y: Any, weights: Any = None) -> tuple[Any, Any]:
        """``(loss (B,), grad (B, P))`` at the packed parameters ``y``."""
        state = self.layout.unpack(y)
        loss, g = self.fn(state) if weights is None else self.fn(state, weights)
        return loss, self.layout.pack(g)

    def unpack(self, y: Any) -> State:
        return self.layout.unpack(y)

    def pack(self, parts: Sequence[Any]) -> Any:
        return self.layout.pack(parts)
