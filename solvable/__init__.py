"""solvable: the solvable models of deep-learning theory as executable, checked science.

The repository keeps its layers in top-level folders (``theory/``, ``sims/``,
``proofs_checks/``, ``figures/``); installed, they live under this one
namespace, so a user's own ``sims/`` or ``figures/`` folder never clashes:

* :mod:`solvable.theory` -- what the papers predict (closed forms, sympy, cvxpy);
* :mod:`solvable.sims` -- the simulators, the engine and sweeps;
* :mod:`solvable.proofs_checks` -- the claims, the command line and the report;
* :mod:`solvable.figures` -- the reproduced paper figures.
"""

from importlib.metadata import PackageNotFoundError, version

from ._moved import install as _install_moved

_install_moved()

try:
    __version__ = version("solvable")
except PackageNotFoundError:  # pragma: no cover - running from an uninstalled checkout
    __version__ = "0+unknown"

__all__ = ["__version__"]
