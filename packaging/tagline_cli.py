"""Frozen console executable: the `tagline` command line (and `tagline gui`)."""

import sys

from gui.entry import main

if __name__ == "__main__":
    sys.exit(main())
