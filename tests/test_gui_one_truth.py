"""The open app and the store agree: what another process writes is shown and never undone, a
label renamed or deleted in the app stays so when a model classifies, Space never confirms a guess."""

from __future__ import annotations

from core.cli import main
from tests.gui_helpers import *  # noqa: F403  (the GUI fixtures)
from tests.gui_helpers import fake_predictions


def open_window(qtbot, window, folder):
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    return window.project, window.project.store.image_ids_by_relpath()


def test_the_command_line_writes_while_the_app_is_open_and_space_and_undo_keep_it(qtbot, window, sample_folder, tmp_path):
    from gui import errors, review

    project, ids = open_window(qtbot, window, sample_folder)
    fake_predictions(project.store)
    project.reload()
    cat = ids["chelsea.jpg"]
    review.save_caption(project, cat, "typed in the app")
    truth = tmp_path / "truth.csv"
    truth.write_text("ImageID,Labels,Caption\nchelsea.jpg,horse,Imported from the command line\n", encoding="utf-8")
    assert main(["-q", "import", str(sample_folder), "--captions", str(truth)]) == 0  # another connection
    qtbot.waitUntil(lambda: project.captions.get(cat, ("", ""))[0] == "Imported from the command line", timeout=5_000)
    assert project.confirmations[cat]["horse"] is True  # the app shows it without a reload
    window.select_image(cat)
    window.accept_and_next()  # Space
    assert project.store.confirmations()[cat]["horse"] is True  # not written back from a stale copy
    shown_before = len(errors.shown)
    project.undo_stack.undo()  # undoes the accept: the imported decision was there before it
    assert project.store.confirmations()[cat]["horse"] is True
    project.undo_stack.undo()  # the app's caption edit: the command line changed it since
    assert project.store.caption(cat) == ("Imported from the command line", "imported")
    assert len(errors.shown) == shown_before + 1 and "changed this since" in errors.shown[-1][1]


def test_a_renamed_label_is_not_resurrected_when_the_bundled_model_classifies(qtbot, window, sample_folder):
    from gui.commands import DeleteLabelCommand, RenameLabelCommand

    window.settings.prefer_gpu = False
    project, _ids = open_window(qtbot, window, sample_folder)
    project.undo_stack.push(RenameLabelCommand(project, "motorcycle", "motorbike"))
    project.undo_stack.push(DeleteLabelCommand(project, "bench"))
    hotkeys = [(label.name, label.hotkey, label.position) for label in project.labels]
    with qtbot.waitSignal(window.jobs.classify().finished, timeout=240_000):
        pass
    names = project.label_names()
    assert "motorbike" in names and "motorcycle" not in names and "bench" not in names
    assert [(label.name, label.hotkey, label.position) for label in project.labels] == hotkeys
    assert all("motorcycle" not in p and "bench" not in p for p in project.predictions.values())
    assert project.predictions  # the bundled model did decide the photos


def test_space_on_a_guess_confirms_only_what_the_person_ticked(qtbot, window, sample_folder):
    import numpy as np

    from core.jobs.project import active_model_key
    from core.store.decisions import FALLBACK
    from gui import review

    project, ids = open_window(qtbot, window, sample_folder)
    store = project.store
    rocket = ids["rocket.jpg"]
    probs = np.array([[0.1, 0.19, 0.05]], np.float32)
    store.save_predictions([rocket], probs, np.array([[0, FALLBACK, 0]]), ["person", "water", "cup"],
                           active_model_key(store))
    project.reload()
    assert project.is_guess(rocket, "water") and "water" in project.effective_labels(rocket)
    review.set_label(project, [rocket], "cup", True)  # the person ticks another label
    window.select_image(rocket)
    window.accept_and_next()  # Space
    decided = store.confirmations()[rocket]
    assert decided["cup"] is True and decided["person"] is False
    assert "water" not in decided and project.is_guess(rocket, "water")  # still a guess, not a decision


def test_a_confidence_range_with_a_label_reads_that_labels_confidence(qtbot, window, sample_folder):
    from gui.gallery import ViewFilter

    project, _ids = open_window(qtbot, window, sample_folder)
    fake_predictions(project.store)  # person, cat, cup on a ramp from 0.05 to 0.95
    project.reload()
    cat = {i: p["cat"][0] for i, p in project.predictions.items()}
    doubtful = sorted(i for i, value in cat.items() if 0.2 <= value <= 0.6)
    assert doubtful and len(doubtful) < len(cat)
    window.model.set_filter(ViewFilter(label="cat", min_confidence=0.2, max_confidence=0.6))
    assert sorted(window.model.ids()) == doubtful  # had or not, by cat's own confidence
    window._on_filter(ViewFilter(label="cat", min_confidence=0.99, max_confidence=1.0))
    assert window.model.rowCount() == 0 and "No photo matches" in window.statusBar().currentMessage()
