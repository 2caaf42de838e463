"""The `tagline` executable: the core command line, with `tagline gui` wired to the app.

Qt is imported only when the GUI verb runs, so headless use never loads it.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _run_gui(folder: Path | None) -> int:
    from gui.app import run

    return run(folder)


def main(argv: list[str] | None = None) -> int:
    from core.cli import main as cli_main

    return cli_main(argv, gui_runner=_run_gui)


if __name__ == "__main__":
    sys.exit(main())
