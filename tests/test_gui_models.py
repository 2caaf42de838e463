"""Item models: Qt's model tester, roles, filtering and sorting."""

from __future__ import annotations

from tests.gui_helpers import *  # noqa: F403  (the GUI fixtures)
from tests.gui_helpers import fake_predictions


def test_gallery_model_passes_qt_model_tester(qtmodeltester, synced_store):
    from gui.gallery import GalleryModel
    from gui.project import Project
    from gui.thumbnails import ThumbnailLoader

    fake_predictions(synced_store)
    synced_store.set_caption(synced_store.images()[0].id, "a woman astronaut")
    model = GalleryModel(Project(synced_store), ThumbnailLoader())
    assert model.rowCount() == 4
    qtmodeltester.check(model, force_py=True)


def test_label_list_model_passes_qt_model_tester(qtmodeltester, synced_store):
    from gui.label_list import LabelListModel
    from gui.project import Project

    fake_predictions(synced_store)
    project = Project(synced_store)
    toggled = []
    model = LabelListModel(project, lambda name, value: toggled.append((name, value)))
    model.set_image(project.order[0])
    assert model.rowCount() == 3
    qtmodeltester.check(model, force_py=True)


def test_roles_filters_and_uncertainty_sort(synced_store):
    from gui.gallery import CaptionRole, GalleryModel, HasCaptionRole, PredictedLabelsRole, ReviewedRole, ViewFilter
    from gui.project import Project
    from gui.thumbnails import ThumbnailLoader

    fake_predictions(synced_store)
    first = synced_store.images()[0].id
    synced_store.set_caption(first, "A cat on the floor")
    synced_store.set_reviewed([first])
    project = Project(synced_store)
    model = GalleryModel(project, ThumbnailLoader())
    index = model.index(model.row_of(first))
    assert model.data(index, CaptionRole) == "A cat on the floor"
    assert model.data(index, HasCaptionRole) is True
    assert model.data(index, ReviewedRole) is True
    assert model.data(index, PredictedLabelsRole) == project.effective_labels(first)
    model.set_filter(ViewFilter(text="CAT ON"))
    assert model.ids() == [first]
    model.set_filter(ViewFilter(reviewed=False))
    assert first not in model.ids() and model.rowCount() == 3
    model.set_filter(ViewFilter(label="cup"))
    assert all("cup" in project.effective_labels(i) for i in model.ids()) and model.rowCount() > 0
    model.set_filter(ViewFilter(sort="uncertainty"))
    scores = [project.uncertainty(i) for i in model.ids()]
    assert scores == sorted(scores, reverse=True)


def test_threshold_overrides_model_decisions(synced_store):
    from gui.project import Project

    fake_predictions(synced_store)
    project = Project(synced_store)
    image = project.order[0]
    project.threshold = 0.0
    assert project.effective_labels(image) == ["person", "cat", "cup"]
    project.threshold = 0.99
    assert project.effective_labels(image) == []
    project.store.confirm(image, "cup", True)
    project.store.confirm(image, "person", False)
    project.reload()
    for threshold in (None, 0.0, 0.5, 0.99):  # the filter's one-label question, the grid's list: one rule
        project.threshold = threshold
        for i in project.order:
            assert [n for n in project.label_names() if project.has_label(i, n)] == project.effective_labels(i)
    assert project.has_label(image, "cup") and not project.has_label(image, "person")


def test_names_sort_naturally(sample_folder):
    import shutil

    from core.progress import run_to_end
    from core.store.database import ProjectStore
    from core.store.sync import sync_folder
    from gui.project import Project

    for name in ("1005.jpg", "1010.jpg", "102.jpg", "9.jpg"):
        shutil.copyfile(sample_folder / "rocket.jpg", sample_folder / name)
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    project = Project(store)
    names = [project.records[i].relpath for i in project.order]
    assert names[:4] == ["9.jpg", "102.jpg", "1005.jpg", "1010.jpg"] and names[4] == "astronaut.jpg"
    store.close()


def test_a_refused_training_does_not_leave_training_on_screen(qtbot, window, sample_folder):
    window.open_folder(sample_folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    handle = window.jobs.train()  # nothing confirmed yet: refused
    with qtbot.waitSignal(handle.finished, timeout=20_000):
        pass
    assert window.training.chart.title.startswith("Not trained: no image has a confirmed label")
    qtbot.waitUntil(lambda: not window.jobs.queue.busy)


def test_a_fallback_label_is_shown_as_a_guess_until_confirmed(synced_store):
    import numpy as np
    from PySide6.QtCore import Qt

    from core.store.decisions import FALLBACK
    from core.tagging.classifier import Classifier
    from gui.gallery import GalleryModel, PredictedLabelsRole
    from gui.label_list import LabelListModel
    from gui.project import Project
    from gui.thumbnails import ThumbnailLoader

    classifier = Classifier()
    ids = [r.id for r in synced_store.images()]
    probs = np.full((len(ids), len(classifier.labels)), 0.01, np.float32)
    probs[0, 0] = 0.99  # person, past its threshold
    probs[1, 15] = 0.2  # cat, the most likely but under every threshold: the fallback
    codes = classifier.decision_codes(probs, np.ones(len(ids), np.float32))
    assert codes[0, 0] == 1 and codes[1, 15] == FALLBACK and codes[1].sum() == FALLBACK
    synced_store.save_predictions(ids, probs, codes, classifier.labels, classifier.key)
    assert synced_store.guessed_labels(classifier.key) == {ids[1]: {"cat"}, ids[2]: {"person"}, ids[3]: {"person"}}
    project = Project(synced_store)
    model = GalleryModel(project, ThumbnailLoader())
    row = {model.data(model.index(r), PredictedLabelsRole)[0]: r for r in range(model.rowCount())}
    assert "person" in row and "cat?" in row  # a confident call and a guess, told apart
    labels = LabelListModel(project, lambda name, present: None)
    labels.set_image(ids[1])
    cat = next(r for r in range(labels.rowCount()) if labels.data(labels.index(r)).startswith("cat"))
    assert labels.data(labels.index(cat)) == "cat?"
    assert "best guess" in labels.data(labels.index(cat), Qt.ItemDataRole.ToolTipRole)
    project.store.confirm(ids[1], "cat", True)
    project.reload()
    assert not project.is_guess(ids[1], "cat") and project.effective_labels(ids[1]) == ["cat"]
