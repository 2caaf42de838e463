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


def entries(*folders: Path | None) -> list:
    """The model list's lines for these folders (None: the bundled model), as the window makes them."""
    from core.models.model_files import default_model_dir, read_info
    from gui.training_view import model_entry

    return [model_entry(read_info(f or default_model_dir()), f) for f in folders]


def test_a_kept_retrain_is_explained_and_the_bundled_model_is_one_click_away(qtbot, tmp_path):
    from gui.training_view import TrainingView

    view = TrainingView()
    qtbot.addWidget(view)
    worse = retrained(tmp_path / "m1", {"new_score": 0.76, "new_spread": 0.04, "current_score": 0.89,
                                        "current_spread": 0.02, "photos": 25, "how": "on your photos it never trained on"})
    view.set_versions(entries(None, worse), None)
    assert "In use:</b>" in view.in_use.text() and "bundled (id 20261201-3e218ad1)" in view.in_use.text()
    assert view.verdict.text().startswith("Latest retrain: Kept the current model: 0.89 against 0.76")
    assert not view.bundled_button.isEnabled()  # already in use

    view.set_versions(entries(None, worse), worse)  # taken by hand
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
    view.set_versions(entries(None, better), better)
    assert view.verdict.text().startswith("Latest retrain: The new model is now in use: 0.91 against 0.89")


def test_the_model_list_names_models_by_time_kind_and_score_with_id_and_folder_findable(qtbot, tmp_path):
    """Folders are named by time, models by id: the list shows the time, kind, score and the mark
    of the one in use, and the tooltip gives both the id and the folder."""
    from gui.training_view import TrainingView

    view = TrainingView()
    qtbot.addWidget(view)
    made = retrained(tmp_path / "models" / "20261205-085841", {"new_score": 0.91, "new_spread": 0.0,
                                                                "current_score": 0.89, "current_spread": 0.0,
                                                                "photos": 200, "how": "on your photos"})
    view.set_versions(entries(None, made), made)
    bundled, trained = (view.versions.item(i) for i in range(2))
    assert bundled.text().startswith("2026-12-0") and "bundled · held-out samples F1 0.8" in bundled.text()
    assert "● in use" not in bundled.text() and "20261201-3e218ad1" in bundled.toolTip()
    assert trained.text().startswith("2026-12-05 08:58 · ") and trained.text().endswith("● in use")
    assert "samples F1" in trained.text() and "micro" not in trained.text()
    assert "20261205-cafe" in trained.toolTip() and str(made) in trained.toolTip()
    assert trained.toolTip().startswith(trained.text().removesuffix(" · ● in use"))  # the whole line, cut or not
    assert "2026-12-05 08:58" in view.in_use.text() and "20261205-cafe" in view.in_use.text()
    assert view.versions.currentItem() is trained
