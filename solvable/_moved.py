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
    **{f"proofs_checks.{m}": f"proofs_checks.framework.{m}" for m in (
        "cli", "info", "parallel", "power", "registry", "report", "runner", "search", "seeds", "space", "stats")},
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
    "proofs_checks.diagonal_edge": "proofs_checks.diagonal.edge",
    "proofs_checks.diagonal_noise": "proofs_checks.diagonal.noise",
    "proofs_checks.diagonal_regularisers": "proofs_checks.diagonal.regularisers",
    "proofs_checks.diagonal_stability": "proofs_checks.diagonal.stability",
    "proofs_checks.deep_linear_bw": "proofs_checks.deep_linear.bw",
    "proofs_checks.ufm_deep": "proofs_checks.ufm.deep",
    "proofs_checks.ufm_perturbation": "proofs_checks.ufm.perturbation",
    "proofs_checks.ufm_scl": "proofs_checks.ufm.scl",
    "theory.diagonal_symbolic": "theory.diagonal.symbolic",
    "theory.deep_linear_symbolic": "theory.deep_linear.symbolic",
    "theory.deep_linear_bw": "theory.deep_linear.bw",
    "theory.ufm_perturbation": "theory.ufm.perturbation",
    "theory.ufm_scl": "theory.ufm.scl",
    "theory.ufm_symbolic": "theory.ufm.symbolic",
    "theory.lsa_symbolic": "theory.lsa.symbolic",
    "theory.matrix_sensing_symbolic": "theory.matrix_sensing.symbolic",
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
