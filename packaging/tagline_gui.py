"""Frozen GUI executable: `Tagline [FOLDER]`."""

import sys
from pathlib import Path

from gui.app import run

if __name__ == "__main__":
    sys.exit(run(Path(sys.argv[1]) if len(sys.argv) > 1 else None))
