"""``python -m proofs_checks`` is the ``solvable`` command."""

import sys

from .cli import main

sys.exit(main())
