"""Classify through the window's worker on the four sample photos: results stream into the
gallery batch by batch, the status bar shows the device, and no thread is left running."""

from __future__ import annotations

from tests.gui_helpers import *  # noqa: F403  (the GUI fixtures)


def test_classify_all_streams_results_into_the_gallery(qtbot, window, sample_folder):
    window.settings.batch_size = 2  # two batches: the second arrives after the first is shown
    window.settings.prefer_gpu = False
    window.open_folder(sample_folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    streamed = []
    window.project.images_changed.connect(lambda ids: streamed.append(list(ids)))
    handle = window.jobs.classify()
    with qtbot.waitSignal(handle.finished, timeout=240_000):
        pass
    assert handle.outcome == "succeeded", window_errors()
    assert [len(batch) for batch in streamed[:2]] == [2, 2]
    project = window.project
    assert set(project.predictions) == set(project.order)
    cat = project.store.image_ids_by_relpath()["chelsea.jpg"]
    assert "cat" in project.effective_labels(cat)
    assert window.status.device.text().startswith("Device: CPU")  # "CPU (OpenVINO bf16)" where it runs
    qtbot.waitUntil(lambda: not window.jobs.queue.busy)


def open_and_classify(qtbot, window, folder):
    """Open the four sample photos, classify them with the active model; (project, ids by name)."""
    window.open_folder(folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    with qtbot.waitSignal(window.jobs.classify().finished, timeout=240_000):
        pass
    return window.project, window.project.store.image_ids_by_relpath()


def window_errors():
    from gui import errors

    return errors.shown


def test_caption_missing_fills_only_empty_captions(qtbot, window, sample_folder):
    window.settings.prefer_gpu = False
    window.open_folder(sample_folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    store = window.project.store
    cat = store.image_ids_by_relpath()["chelsea.jpg"]
    store.set_caption(cat, "my own words", "typed")
    handle = window.jobs.caption_missing()
    with qtbot.waitSignal(handle.finished, timeout=240_000):
        pass
    assert handle.outcome == "succeeded", window_errors()
    captions = store.captions()
    assert captions[cat] == ("my own words", "typed")
    assert sorted(source for _, source in captions.values()) == ["generated"] * 3 + ["typed"]
    qtbot.waitUntil(lambda: not window.jobs.queue.busy)


def test_turning_the_fallback_off_decides_again_and_leaves_other_things_unlabelled(qtbot, window, sample_folder):
    """Model > Always give the most likely label: unticked, the photos of things outside the
    vocabulary (a rocket) lose their forced label; the cat keeps hers."""
    window.settings.prefer_gpu = False
    project, ids = open_and_classify(qtbot, window, sample_folder)
    assert project.effective_labels(ids["rocket.jpg"])  # the fallback gave it one
    window.a_fallback.trigger()  # untick
    assert project.top1_fallback is False and not window.a_fallback.isChecked()  # the folder's setting
    qtbot.waitUntil(lambda: not window.jobs.queue.busy and not project.effective_labels(ids["rocket.jpg"]),
                    timeout=240_000)
    assert project.effective_labels(ids["chelsea.jpg"]) == ["cat"]
    assert not project.store.predictions(project.model_key)[ids["rocket.jpg"]]["person"][1]  # decided again in the store too


def test_confirmations_retrain_in_the_background_and_n_goes_to_the_least_sure_photo(qtbot, window, sample_folder):
    """After `retrain_every` newly decided photos a model is trained from them by itself, made
    active, and the photos are decided again; N then selects an undecided photo."""
    from gui import review

    window.settings.prefer_gpu = False
    window.settings.retrain_every = 2
    errors_before = len(window_errors())
    project, ids = open_and_classify(qtbot, window, sample_folder)
    review.set_label(project, [ids["chelsea.jpg"]], "cat", True)
    assert project.get_active_model() is None and not window.jobs.training_running  # one photo: not yet
    review.set_label(project, [ids["astronaut.jpg"]], "person", True)
    assert window.jobs.training_running
    qtbot.waitUntil(lambda: project.get_active_model() is not None and not window.jobs.queue.busy, timeout=240_000)
    assert len(window_errors()) == errors_before, window_errors()
    active = project.get_active_model()
    assert active.parent == project.models_dir() and (active / "model.json").is_file()
    from core.models.model_identity import model_key

    assert set(project.store.prediction_inputs(model_key(active))) == set(ids.values())  # decided again
    window.next_to_label()
    chosen = window.selected_ids()
    assert len(chosen) == 1 and chosen[0] in {ids["coffee.jpg"], ids["rocket.jpg"]}


def test_a_label_view_shows_the_photos_a_finished_classification_calls_so(qtbot, window, sample_folder):
    """Calls stream into the cells without moving rows while the job runs; when it is done, a
    filter on a label shows the photos the model now calls so (after a retrain, the new label's
    photos appear without the person touching the filter), the selection kept."""
    window.settings.prefer_gpu = False
    window.open_folder(sample_folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    window.filter_bar.label.setCurrentText("cat")
    qtbot.waitUntil(lambda: window.model.rowCount() == 0, timeout=10_000)  # nothing classified yet
    with qtbot.waitSignal(window.jobs.classify().finished, timeout=240_000):
        pass
    qtbot.waitUntil(lambda: window.model.rowCount() > 0, timeout=10_000)
    names = [window.project.records.relpath(window.model.image_id(row)) for row in range(window.model.rowCount())]
    assert "chelsea.jpg" in names and "rocket.jpg" not in names
    qtbot.waitUntil(lambda: f"({len(names)} shown)" in window.status.counts.text(), timeout=5_000)
