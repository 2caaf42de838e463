"""Application start: a window on screen fast, then the folder, then the slow checks.

Nothing here imports torch, timm or onnxruntime; jobs import them on a worker thread.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path

_STARTED = time.perf_counter()

from PySide6.QtCore import QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def create_app(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if not isinstance(app, QApplication):
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setOrganizationName("Tagline")
    app.setApplicationName("Tagline")
    from core import __version__

    app.setApplicationVersion(__version__)
    return app


def run(folder: Path | None = None) -> int:
    """`tagline gui [FOLDER]`: show the window, open FOLDER if given, run until closed."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from gui.platform_check import install_hint, missing_xcb_packages

    missing = missing_xcb_packages()
    if missing:  # Qt would abort with a message that does not say what to install
        print(install_hint(missing), file=sys.stderr)
        return 2
    app = create_app()
    from gui.errors import install_excepthook
    from gui.main_window import MainWindow

    install_excepthook()
    window = MainWindow()
    window.show()
    if folder is None and window.settings.reopen_last and window.settings.recent_folders:
        last = Path(window.settings.recent_folders[0])
        folder = last if last.is_dir() else None  # a folder gone (an unplugged disk) is not an error at start
    if folder is not None:
        # after the first paint, so the window appears before the database is read
        QTimer.singleShot(0, lambda: window.open_folder(Path(folder)))
    window.jobs.probe_device_later()
    _smoke_test_exit(app)
    return app.exec()


def _smoke_test_exit(app: QApplication) -> None:
    """`TAGLINE_SMOKE_SECONDS=N`: quit after N seconds (CI starts the frozen app this way)."""
    seconds = os.environ.get("TAGLINE_SMOKE_SECONDS")
    if seconds:
        import psutil

        from core.build_kind import describe_build

        # from the process's start too: a frozen bundle's loader and imports come before _STARTED
        process_age = time.time() - psutil.Process().create_time()
        logging.getLogger(__name__).warning("window shown %.2f s after start (%.2f s after the process started); %s; "
                                            "quitting in %s s", time.perf_counter() - _STARTED, process_age,
                                            describe_build(), seconds)
        QTimer.singleShot(int(float(seconds) * 1000), app.quit)
