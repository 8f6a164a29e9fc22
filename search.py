#!/usr/bin/env python
"""FLOP-budgeted Mobile-Former search: `python search.py --budget 150M` (see --help)."""
import sys

from mfsearch.cli import main

if __name__ == "__main__":
    sys.exit(main())
