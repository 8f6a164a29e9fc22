#!/usr/bin/env python
"""FLOP-budgeted Mobile-Former search: `python search.py --budget 150M` (see --help); the same as
`mfsearch search`."""
import sys
import warnings

# libraries' import-time deprecation notes (torchvision's jit.script) would break the
# one-line error contract of the command line; they are not the user's to act on
warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

from mfsearch.cli.search import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
