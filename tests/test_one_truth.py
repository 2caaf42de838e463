"""One truth for the labels: every output is the person's decision, else the active model's
prediction, never another model's; imports add decisions without inventing them; an export reads
back into the same decisions; a model is known by its files, not its version string."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np

from core.cli import main
from core.jobs.project import active_model_key
from core.models.model_files import default_model_dir
from core.models.model_identity import model_key
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder
from core.tagging.classifier import Classifier, classify_project
from tests.conftest import COMP

GROUPS = {"animal": {"16", "17", "18", "19"}, "vehicle": {"2", "3", "4", "5", "6", "7", "8", "9"}}


def read_rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["ImageID"]: row for row in csv.DictReader(handle)}


def names(cell: str) -> set[str]:
    return {n for n in cell.split(";") if n}


def own_labels_csv(folder: Path, path: Path, count: int) -> dict[str, set[str]]:
    """The first `count` photos of `folder` with two labels of the person's own, read off their
    comp5329 labels (animal: bird, cat, dog, horse; vehicle: the eight vehicles)."""
    with open(COMP / "train.csv", newline="", encoding="utf-8") as handle:
        truth = {r["ImageID"]: set(r["Labels"].split()) for r in csv.DictReader(handle)}
    photos = sorted((p.name for p in folder.glob("*.jpg")), key=lambda n: int(n.split(".")[0]))[:count]
    chosen = {p: {g for g, ids in GROUPS.items() if truth[p] & ids} for p in photos}
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageID", "Labels"])
        writer.writerows([p, ";".join(sorted(labels))] for p, labels in chosen.items())
    return chosen


def test_outputs_name_only_the_active_model_and_the_persons_decisions(comp_slice: Path, tmp_path: Path) -> None:
    folder = comp_slice
    chosen = own_labels_csv(folder, tmp_path / "own.csv", 80)
    assert main(["-q", "import", str(folder), "--captions", str(tmp_path / "own.csv")]) == 0
    assert main(["-q", "train", str(folder), "--out", str(tmp_path / "own-model")]) == 0
    assert main(["-q", "classify", str(folder)]) == 0
    # a look with the bundled model, then back to the project's own model
    look = tmp_path / "look.csv"
    assert main(["-q", "classify", str(folder), "--model", str(default_model_dir()), "--out", str(look)]) == 0
    assert any("person" in names(r["Labels"]) for r in read_rows(look).values())  # that run's own labels
    with ProjectStore(folder) as store:
        store.confirm(store.image_ids_by_relpath()[next(iter(chosen))], "animal", False)  # a decision the model may not share
    own, exported = tmp_path / "classify.csv", tmp_path / "export.csv"
    assert main(["-q", "classify", str(folder), "--out", str(own)]) == 0
    assert main(["-q", "export", str(folder), "--out", str(exported)]) == 0
    by_classify, by_export = read_rows(own), read_rows(exported)
    assert len(by_export) == 160
    for photo, row in by_export.items():
        assert names(row["Labels"]) <= {"animal", "vehicle"}, (photo, row["Labels"])  # no bundled label leaks
        assert row["Labels"] == by_classify[photo]["Labels"]  # the same labels through both verbs
    first = next(iter(chosen))
    assert "animal" not in names(by_export[first]["Labels"]) and "animal" in names(by_export[first]["Rejected"])
    for photo, labels in chosen.items():  # every confirmed label wins in both
        if photo != first:
            assert names(by_export[photo]["Confirmed"]) == labels
            assert labels <= names(by_export[photo]["Labels"])

    # a second CSV naming another label keeps every earlier decision
    second = tmp_path / "second.csv"
    second.write_text(f"ImageID,Labels\n{first},snow\n", encoding="utf-8")
    with ProjectStore(folder) as store:
        before = store.confirmations()
    assert main(["-q", "import", str(folder), "--captions", str(second)]) == 0
    with ProjectStore(folder) as store:
        after = store.confirmations()
        first_id = store.image_ids_by_relpath()[first]
    assert after[first_id] == {**before[first_id], "snow": True}
    assert {i: d for i, d in after.items() if i != first_id} == {i: d for i, d in before.items() if i != first_id}

    # the export read back into a fresh copy of the photos gives the same decisions and caption sources
    with ProjectStore(folder) as store:
        store.set_caption(first_id, "a person typed this", "typed")
        store.set_caption(store.image_ids_by_relpath()[sorted(chosen)[1]], "a captioner wrote this", "generated")
    assert main(["-q", "export", str(folder), "--out", str(exported)]) == 0
    copy = tmp_path / "copy"
    copy.mkdir()
    for photo in folder.glob("*.jpg"):
        (copy / photo.name).symlink_to(photo.resolve())
    assert main(["-q", "import", str(copy), "--captions", str(exported)]) == 0
    with ProjectStore(folder) as original, ProjectStore(copy) as restored:
        paths = {i: p for p, i in original.image_ids_by_relpath().items()}
        back = {p: i for p, i in restored.image_ids_by_relpath().items()}
        assert {paths[i]: d for i, d in original.confirmations().items()} == \
            {p: d for p, d in ((p, restored.confirmations().get(i)) for p, i in back.items()) if d}
        assert {paths[i]: c for i, c in original.captions().items()} == \
            {p: restored.captions()[i] for p, i in back.items() if i in restored.captions()}


def test_new_weights_under_the_same_version_are_classified_again(sample_folder: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(default_model_dir(), model)
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    store.set_active_model(model)
    first = Classifier(model)
    assert run_to_end(classify_project(store, first)).classified == 4
    assert run_to_end(classify_project(store, Classifier(model))).classified == 0  # same files: nothing to do
    from safetensors.numpy import load_file, save_file

    weights = model / first.info.weights
    tensors = load_file(str(weights))
    save_file({k: (v * np.float32(0.5)).astype(v.dtype) for k, v in tensors.items()}, str(weights))
    changed = Classifier(model)
    assert changed.version == first.version and changed.key != first.key
    assert run_to_end(classify_project(store, changed)).classified == 4
    assert active_model_key(store) == model_key(model) == changed.key
    store.close()


def test_a_deleted_or_renamed_label_stays_so_when_a_model_classifies(sample_folder: Path) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    classifier = Classifier()
    run_to_end(classify_project(store, classifier))
    store.rename_label("motorcycle", "motorbike")
    store.delete_label("bench")
    positions = [(label.name, label.position) for label in store.labels()]
    run_to_end(classify_project(store, classifier, redo=True))
    labels = [label.name for label in store.labels()]
    assert "motorcycle" not in labels and "bench" not in labels and "motorbike" in labels
    assert [(label.name, label.position) for label in store.labels()] == positions  # keys 1-9 stay put
    predicted = store.predictions(classifier.key)
    assert all("motorbike" in p and "bench" not in p for p in predicted.values())
    assert store.deleted_labels() == ["bench"]
    store.ensure_labels(["bench"])  # the person adds it again by name: models may fill it again
    assert store.deleted_labels() == []
    store.close()


def test_import_decides_only_what_it_says(sample_folder: Path, tmp_path: Path) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    ids = store.image_ids_by_relpath()
    store.close()
    first = tmp_path / "first.csv"
    first.write_text("ImageID,Labels\nchelsea.jpg,cat\nastronaut.jpg,person\n", encoding="utf-8")
    second = tmp_path / "second.csv"
    second.write_text("ImageID,Labels\nchelsea.jpg,animal\ncoffee.jpg,\n", encoding="utf-8")
    assert main(["-q", "import", str(sample_folder), "--captions", str(first)]) == 0
    assert main(["-q", "import", str(sample_folder), "--captions", str(second)]) == 0
    with ProjectStore(sample_folder) as store:
        decided = store.confirmations()
    # the first file's rows are complete for its labels (cat, person); the second's for animal only
    assert decided[ids["chelsea.jpg"]] == {"cat": True, "person": False, "animal": True}
    assert decided[ids["astronaut.jpg"]] == {"person": True, "cat": False}
    assert decided[ids["coffee.jpg"]] == {"animal": False}
    none = tmp_path / "none.csv"
    none.write_text("ImageID,Labels\nrocket.jpg,animal\n", encoding="utf-8")
    assert main(["-q", "import", str(sample_folder), "--captions", str(none), "--complete", "none"]) == 0
    assert main(["-q", "import", str(sample_folder), "--captions", str(first), "--complete", "all"]) == 0
    with ProjectStore(sample_folder) as store:
        decided = store.confirmations()
    assert decided[ids["rocket.jpg"]] == {"animal": True}
    assert decided[ids["chelsea.jpg"]] == {"cat": True, "person": False, "animal": False}  # 'all': said so


def test_label_names_read_back_from_an_export_as_themselves(sample_folder: Path, tmp_path: Path) -> None:
    import pytest

    from core.errors import StoreError

    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    ids = store.image_ids_by_relpath()
    for bad in ("   ", "", "cat;dog", " padded "):
        with pytest.raises(StoreError):
            store.ensure_labels([bad])
        with pytest.raises(StoreError):
            store.confirm(ids["chelsea.jpg"], bad, True)
    store.ensure_labels(["fire, hydrant", "a|b", "plain"])
    with pytest.raises(StoreError):
        store.rename_label("plain", "  ")
    store.confirm_many([(ids["chelsea.jpg"], "fire, hydrant", True), (ids["coffee.jpg"], "a|b", True),
                        (ids["coffee.jpg"], "plain", True), (ids["rocket.jpg"], "plain", False)])
    before = store.confirmations()
    store.close()
    out = tmp_path / "out.csv"
    assert main(["-q", "export", str(sample_folder), "--out", str(out)]) == 0
    copy = tmp_path / "copy"
    shutil.copytree(sample_folder, copy, ignore=shutil.ignore_patterns(".tagline"))
    assert main(["-q", "import", str(copy), "--captions", str(out)]) == 0
    with ProjectStore(copy) as restored:
        back = restored.confirmations()
        by_name = restored.image_ids_by_relpath()
    assert {p: back.get(by_name[p]) for p in ids} == {p: before.get(i) for p, i in ids.items()}


def test_rows_naming_photos_the_folder_lacks_are_told_in_one_line(sample_folder: Path, tmp_path: Path, capsys) -> None:
    many = tmp_path / "many.csv"
    many.write_text("ImageID,Caption\nchelsea.jpg,a cat\n" + "".join(f"{i}.jpg,a photo\n" for i in range(40)),
                    encoding="utf-8")
    assert main(["import", str(sample_folder), "--captions", str(many)]) == 1  # some rows not imported
    err = capsys.readouterr().err
    assert err.count("not in the folder") == 1 and "40 rows name photos" in err
