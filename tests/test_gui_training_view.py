"""The Training tab says which model is in use, why the latest retrain was or was not taken, and
gives the bundled model back in one step."""

from __future__ import annotations

import json
from pathlib import Path

from tests.gui_helpers import *  # noqa: F403  (the GUI fixtures)


def retrained(folder: Path, comparison: dict[str, object]) -> Path:
    """A model folder whose model.json records how it compared with the model in use."""
    from core.models.model_files import default_model_dir

    meta = json.loads((default_model_dir() / "model.json").read_text())
    meta["metrics"]["comparison"] = comparison
    meta["version"] = "20261205-cafe"
    folder.mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


def test_a_kept_retrain_is_explained_and_the_bundled_model_is_one_click_away(qtbot, tmp_path):
    from gui.training_view import TrainingView

    view = TrainingView()
    qtbot.addWidget(view)
    worse = retrained(tmp_path / "m1", {"new_score": 0.76, "new_spread": 0.04, "current_score": 0.89,
                                        "current_spread": 0.02, "photos": 25, "how": "on your photos it never trained on"})
    view.set_versions([("20261201-3e218ad1", None, None), ("20261205-cafe", worse, ("cross-validated", 0.7))], None)
    assert "In use:</b> 20261201-3e218ad1 (bundled)" in view.in_use.text()
    assert view.verdict.text().startswith("Latest retrain: Kept the current model: 0.89 against 0.76")
    assert not view.bundled_button.isEnabled()  # already in use

    view.set_versions([("20261201-3e218ad1", None, None), ("20261205-cafe", worse, None)], worse)  # taken by hand
    assert "chosen by hand" in view.verdict.text() and view.bundled_button.isEnabled()
    with qtbot.waitSignal(view.activate_requested) as signal:
        view.bundled_button.click()
    assert signal.args == [None]


def test_a_taken_retrain_says_so(qtbot, tmp_path):
    from gui.training_view import TrainingView

    view = TrainingView()
    qtbot.addWidget(view)
    better = retrained(tmp_path / "m2", {"new_score": 0.91, "new_spread": 0.0, "current_score": 0.89,
                                         "current_spread": 0.0, "photos": 200, "how": "on your photos it never trained on"})
    view.set_versions([("20261201-3e218ad1", None, None), ("20261205-cafe", better, None)], better)
    assert view.verdict.text().startswith("Latest retrain: The new model is now in use: 0.91 against 0.89")
