"""Claims about diagonal linear networks (Woodworth et al. 2020 and successors), one module per result.

Importing the package registers every claim of the family, in this order:

* :mod:`.implicit_bias` -- the flow's limit minimises Q_alpha; the rich and kernel limits, the kernel rate, the
  potential in sympy (Woodworth et al. 2020);
* :mod:`.saddle` -- saddle-to-saddle dynamics as alpha -> 0 (Pesme & Flammarion 2023);
* :mod:`.shape` -- the initialisation's shape and its population error (Azulay et al. 2021);
* :mod:`.effective_alpha` -- SGD and large-step GD at an effective initial scale (Even et al. 2023, Pesme et al.
  2021);
* :mod:`.stability_trace`, :mod:`.gradient_regularisation` -- the trace bound of stable SGD (Wu & Su 2023) and
  gradient regularisation (Karakida et al. 2023);
* :mod:`.reduced` -- the reduced mirror-descent coordinates against the full flow;
* :mod:`.stability`, :mod:`.regularisers`, :mod:`.noise`, :mod:`.edge` -- the linear-stability boundary of SGD,
  explicit regularisers, label noise, and GD at the edge of stability.

:mod:`.common` holds what several of them share (never a sibling imported back).
"""

# registration order is the order of `solvable list` and of the report
from . import implicit_bias, saddle, shape, effective_alpha  # noqa: F401, I001
from . import stability_trace, gradient_regularisation, reduced  # noqa: F401, I001
from . import stability, regularisers, noise, edge  # noqa: F401, I001
