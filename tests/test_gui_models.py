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
