"""The search box ranks photos by meaning: words typed that name no file rank the four sample
photos (no captions) by what they show, the index is built on the worker once, and a file name
typed still filters as before."""

from __future__ import annotations

from tests.gui_helpers import *  # noqa: F403  (the GUI fixtures)


def shown_names(window):
    model = window.model
    return [window.project.records.relpath(model.image_id(row)) for row in range(model.rowCount())]


def type_words(qtbot, window, words):
    box = window.filter_bar.text
    box.clear()
    qtbot.keyClicks(box, words)


def test_words_rank_the_photos_by_what_they_show(qtbot, window, sample_folder):
    window.settings.prefer_gpu = False
    window.open_folder(sample_folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    type_words(qtbot, window, "a cat")
    qtbot.waitUntil(lambda: window.model.by_meaning, timeout=240_000)
    assert shown_names(window)[0] == "chelsea.jpg"
    assert sorted(shown_names(window)) == ["astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"]
    assert window.selected_ids() == [window.model.image_id(0)]  # the best match is the one shown
    qtbot.waitUntil(lambda: not window.jobs.queue.busy, timeout=10_000)
    built = window.word_search.words.index
    type_words(qtbot, window, "a rocket launching into the sky")
    qtbot.waitUntil(lambda: window.model.by_meaning and shown_names(window)[0] == "rocket.jpg", timeout=30_000)
    type_words(qtbot, window, "a cup of coffee")
    qtbot.waitUntil(lambda: window.model.by_meaning and shown_names(window)[0] == "coffee.jpg", timeout=30_000)
    assert window.word_search.words.index is built  # built once: later queries only encode the words
    assert not window.jobs.queue.busy


def test_a_caption_that_says_the_words_comes_first_and_a_file_name_filters(qtbot, window, sample_folder):
    window.settings.prefer_gpu = False
    window.open_folder(sample_folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    project = window.project
    coffee = project.store.image_ids_by_relpath()["coffee.jpg"]
    project.store.set_caption(coffee, "a cat would like this cup", "typed")
    project.reload()
    type_words(qtbot, window, "a cat")
    qtbot.waitUntil(lambda: window.model.by_meaning, timeout=240_000)
    assert shown_names(window)[:2] == ["coffee.jpg", "chelsea.jpg"]
    type_words(qtbot, window, "chel")  # a file name: filtered as typed, no ranking
    qtbot.waitUntil(lambda: shown_names(window) == ["chelsea.jpg"], timeout=10_000)
    assert not window.model.by_meaning
    qtbot.waitUntil(lambda: not window.jobs.queue.busy, timeout=10_000)


def test_a_new_label_shows_guesses_from_its_name_before_any_confirmation(qtbot, window, sample_folder):
    window.settings.prefer_gpu = False
    window.open_folder(sample_folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    project = window.project
    assert "rocket" not in project.model_thresholds  # the bundled model does not know it
    project.store.ensure_labels(["rocket"])
    project.reload_labels()
    qtbot.waitUntil(lambda: "rocket" in window.model.guesses, timeout=240_000)
    assert "person" not in window.model.guesses  # a label the model knows gets no guesses
    window.filter_bar.label.setCurrentText("rocket")
    qtbot.waitUntil(lambda: window.model.by_guess, timeout=10_000)
    assert shown_names(window)[0] == "rocket.jpg" and window.model.rowCount() == 4
    window.select_row(3)
    window.next_to_label()
    assert [project.records.relpath(i) for i in window.selected_ids()] == ["rocket.jpg"]
    qtbot.waitUntil(lambda: not window.jobs.queue.busy, timeout=10_000)


def test_a_search_that_cannot_rank_says_why(qtbot, window, sample_folder, tmp_path, monkeypatch):
    """No alignment installed (or one of other encoders): the status bar says so instead of the
    box waiting for a ranking that never comes."""
    monkeypatch.setenv("TAGLINE_ALIGNMENT", str(tmp_path / "no-alignment"))
    window.settings.prefer_gpu = False
    window.open_folder(sample_folder)
    qtbot.waitUntil(lambda: window.model.rowCount() == 4 and not window.jobs.queue.busy, timeout=10_000)
    type_words(qtbot, window, "a cat")
    qtbot.waitUntil(lambda: "Search by meaning is unavailable" in window.statusBar().currentMessage(), timeout=60_000)
    assert "no image-text alignment" in window.statusBar().currentMessage()
    assert not window.model.by_meaning
