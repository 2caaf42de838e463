"""Fixtures for the GUI tests: fresh settings, no modal error dialogs, no thread left behind.

Imported by each tests/test_gui_*.py (tests/conftest.py sets QT_QPA_PLATFORM=offscreen).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")


@pytest.fixture(autouse=True)
def gui_env(tmp_path: Path, qapp: object) -> Iterator[None]:
    from PySide6.QtCore import QSettings

    from gui import errors
    from gui.worker import io_pool, live_thread_count

    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings"))
    errors.SILENT = True
    errors.shown.clear()
    yield
    io_pool().waitForDone(10_000)
    assert live_thread_count() == 0, "a test left a worker thread running"


@pytest.fixture
def synced_store(sample_folder: Path) -> Iterator[object]:
    from core.progress import run_to_end
    from core.store.database import ProjectStore
    from core.store.sync import sync_folder

    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    yield store
    store.close()


def fake_predictions(store: object, labels: tuple[str, ...] = ("person", "cat", "cup")) -> None:
    """Deterministic predictions so tests need no model."""
    import numpy as np

    ids = [r.id for r in store.images()]  # type: ignore[attr-defined]
    probs = np.linspace(0.05, 0.95, len(ids) * len(labels)).reshape(len(ids), len(labels)).astype(np.float32)
    from core.jobs.project import active_model_key

    # under the active model's identity: the app shows that model's predictions and no other's
    store.save_predictions(ids, probs, probs >= 0.5, list(labels), active_model_key(store))  # type: ignore[arg-type, attr-defined]


@pytest.fixture
def window(qtbot: object) -> Iterator[object]:
    from gui.main_window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)  # type: ignore[attr-defined]
    win.show()
    yield win
    win.close()
