"""Claims about deep linear and scalar networks, linear grokking and model collapse, one module per result.

Importing the package registers every claim of the family, in this order:

* :mod:`.saxe` -- the exact mode dynamics (Saxe et al. 2014) and the end-to-end flow (Arora et al. 2018);
* :mod:`.reduced` -- reduced coordinates equal the full flow; balancedness is conserved;
* :mod:`.sharpness` -- GFS sharpness decreases (Kreisler et al. 2023), GD at the edge of stability (Cohen et al.
  2021), SAM's edge (Agarwala & Dauphin 2023);
* :mod:`.grokking` -- grokking in linear estimators (Levi, Beck & Bar-Sinai 2024);
* :mod:`.model_collapse` -- model collapse in regression (Dohmatob, Feng & Kempe 2024);
* :mod:`.symbolic` -- the family's identities proved in sympy;
* :mod:`.bw` -- generative deep linear networks trained with the Bures-Wasserstein loss (Bréchet et al. 2023).

:mod:`.common` holds the sources and the tolerance they share.
"""

# registration order is the order of `solvable list` and of the report
from . import saxe, reduced, sharpness, grokking, model_collapse, symbolic, bw  # noqa: F401, I001
