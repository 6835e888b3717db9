"""When the host reads the device: the number of steps a loop takes between two reads of its batch's status.

On a GPU every read of a device value waits for the work queued before it, so
a loop that asks "is any run still going?" after every step runs at the speed
of the round trip, not of the card. The loops in :mod:`sims.engine.flow`,
:mod:`sims.engine.stiff` and :mod:`sims.engine.discrete` therefore decide every run's status
on the device, at the step it happens, and read the statuses back every
:func:`sync_steps` steps, in one transfer.
"""

from __future__ import annotations

import math
from typing import Any

from .backend import backend_name, xp_of

__all__ = ["SYNC_BYTES", "SYNC_MAX", "sync_steps"]

#: Most steps between two host reads when :attr:`Flow.sync_every` is None, and the device memory
#: the steps held for dense output in between may take.
SYNC_MAX, SYNC_BYTES = 32, 2**28


def sync_steps(sync_every: int | None, y: Any, held: int) -> int:
    """Steps between two host reads for a batch like ``y`` ((B, P)) when each step held for dense output
    keeps ``held`` arrays of that shape alive (see :attr:`sims.engine.flow.Flow.sync_every`): ``sync_every``
    when given; 1 on NumPy, whose arrays are on the host already; else :data:`SYNC_MAX`, fewer where
    the held steps would take more than :data:`SYNC_BYTES`."""
    if sync_every is not None:
        return sync_every
    if backend_name(xp_of(y)) == "numpy":
        return 1
    size = 8 * held * math.prod(y.shape)
    return max(1, min(SYNC_MAX, SYNC_BYTES // max(size, 1)))
