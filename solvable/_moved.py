"""Import paths that moved when the layers were grouped into folders: importing an old path raises an error that
names the new one (once, rather than an alias kept forever: two paths to one module split its monkeypatches,
pickles and sweep-task identities).

The finder sits on :data:`sys.meta_path` ahead of the path finder, and only ever answers for the names in
:data:`MOVED`; everything else falls through to Python's own finders.
"""

from __future__ import annotations

import importlib.abc
import sys

__all__ = ["MOVED", "install"]

# old dotted path -> new dotted path (both under ``solvable.``)
MOVED: dict[str, str] = {
    **{f"sims.{m}": f"sims.engine.{m}" for m in (
        "backend", "compiled", "controller", "discrete", "driver", "flow", "matmul", "recording", "rk", "rosenbrock",
        "rules", "state", "status", "stiff", "stopping", "sync", "tableau", "trajectory", "_validate")},
    "sims.sweep_config": "sims.sweep.config",
    "sims.sweep_store": "sims.sweep.store",
    "sims._json": "sims.sweep._json",
    "sims.diagonal_reduced": "sims.diagonal.reduced",
    "sims.diagonal_shaped": "sims.diagonal.shaped",
    "sims.deep_linear_bw": "sims.deep_linear.bw",
    "sims.deep_linear_hessian": "sims.deep_linear.hessian",
    "sims.deep_linear_reduced": "sims.deep_linear.reduced",
    "sims.matrix_sensing_measure": "sims.matrix_sensing.measure",
    "sims.matrix_sensing_operator": "sims.matrix_sensing.operator",
    "sims.matrix_sensing_reduced": "sims.matrix_sensing.reduced",
    "sims.ufm_reduced": "sims.ufm.reduced",
    "sims.ufm_scl": "sims.ufm.scl",
    "sims.lsa_softmax": "sims.lsa.softmax",
}


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):  # noqa: D102 - the MetaPathFinder protocol
        if fullname.startswith("solvable.") and fullname[len("solvable."):] in MOVED:
            new = "solvable." + MOVED[fullname[len("solvable."):]]
            # no ``name=``: the import system would swallow the error of a ``from package import old`` and say only
            # "cannot import name"
            raise ModuleNotFoundError(f"{fullname} has moved to {new}; import it from there")
        return None


def install() -> None:
    """Put the finder first on :data:`sys.meta_path` (once)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())
