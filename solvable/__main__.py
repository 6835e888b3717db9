"""``python -m solvable``: the same command as the ``solvable`` console script."""

import sys

from solvable.proofs_checks.framework.cli import main

sys.exit(main())
