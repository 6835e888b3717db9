"""Claims about the unconstrained feature model (neural collapse), one module per result.

Importing the package registers every claim of the family, in this order:

* :mod:`.geometry` -- the MSE UFM's optimal value and its balanced and imbalanced geometry (Zhu et al. 2021,
  Dang et al. 2023);
* :mod:`.deep_geometry` -- deep linear heads on unconstrained features (Dang et al. 2023);
* :mod:`.cross_entropy` -- the simplex ETF and minority collapse (Zhu et al. 2021, Fang et al. 2021);
* :mod:`.symbolic` -- the family's identities in sympy;
* :mod:`.variability` -- within-class variability near collapse (Tirer, Huang & Niles-Weed 2023);
* :mod:`.scl_relu` -- supervised contrastive features with ReLU (Kini et al. 2024);
* :mod:`.reduced` -- the reduced coordinates against the full simulation;
* :mod:`.deep`, :mod:`.perturbation`, :mod:`.scl` -- collapse in every layer of a deep linear head, features pulled
  toward given ones, and the mini-batches that make the orthogonal frame the only SCL minimiser.

:mod:`.common` holds the sources and the helpers they share.
"""

# registration order is the order of `solvable list` and of the report
from . import geometry, deep_geometry, cross_entropy, symbolic, variability, scl_relu, reduced  # noqa: F401, I001
from . import deep, perturbation, scl  # noqa: F401, I001
