"""End to end through `tagline`: the bundled model on real photos, bad files, resume, export."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from core.cli import main
from core.errors import Cancelled
from core.progress import CancelToken, run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder
from core.tagging.classifier import Classifier, classify_project
from tests import badfiles
from tests.conftest import ROOT, write_comp_truth

CAPTIONS = ROOT / "resources" / "sample" / "captions.csv"


def read_rows(path: Path) -> dict[str, list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return {row["ImageID"]: row for row in csv.DictReader(handle)}  # type: ignore[misc]


def test_classify_labels_the_sample_photos(sample_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    assert main(["-q", "classify", str(sample_folder), "--captions", str(CAPTIONS), "--out", str(out)]) == 0
    rows = read_rows(out)
    assert set(rows) == {"astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"}
    assert "person" in rows["astronaut.jpg"]["Labels"].split(";")  # type: ignore[union-attr]
    assert "cat" in rows["chelsea.jpg"]["Labels"].split(";")  # type: ignore[union-attr]
    assert rows["chelsea.jpg"]["Caption"].startswith("A tabby cat")  # type: ignore[index]


def test_photo_alone_still_finds_the_cat(sample_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    assert main(["-q", "classify", str(sample_folder), "--out", str(out), "--probabilities"]) == 0
    row = read_rows(out)["chelsea.jpg"]
    assert "cat" in row["Labels"].split(";")  # type: ignore[union-attr]
    assert float(row["p_cat"]) > 0.5  # type: ignore[arg-type]


def test_no_fallback_leaves_photos_of_other_things_unlabelled(sample_folder: Path, tmp_path: Path) -> None:
    """A rocket launch shows none of the 18 labels: by default it gets its most likely label
    anyway; with --no-fallback, exactly the photos where no label passes its threshold are left
    empty, and the others keep their labels. (The coffee cup, without its caption, passes the
    person threshold of the 2026-12-01 model: 0.72 against 0.65.)"""
    out, plain = tmp_path / "fallback.csv", tmp_path / "no-fallback.csv"
    assert main(["-q", "classify", str(sample_folder), "--out", str(out), "--probabilities"]) == 0
    assert main(["-q", "classify", str(sample_folder), "--out", str(plain), "--no-fallback", "--redo"]) == 0
    with_fallback, without = read_rows(out), read_rows(plain)
    info = Classifier().info  # the photos have no caption: their own thresholds apply
    thresholds = dict(zip(info.labels, info.row_thresholds(np.zeros(1, np.float32))[0]))
    for name, row in with_fallback.items():
        passing = [n for n, t in thresholds.items() if float(row[f"p_{n}"]) >= t]  # type: ignore[arg-type]
        assert without[name]["Labels"] == ";".join(passing)
        assert row["Labels"]  # the fallback always gives one
    assert without["rocket.jpg"]["Labels"] == "" and without["chelsea.jpg"]["Labels"] == "cat"


def test_bad_files_are_skipped_reported_and_exit_status_says_so(
    sample_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    badfiles.truncated_jpeg(sample_folder / "astronaut.jpg", sample_folder / "truncated.jpg")
    badfiles.zero_byte(sample_folder / "empty.jpg")
    badfiles.text_named_jpg(sample_folder / "page.jpg")
    badfiles.bomb_png(sample_folder / "bomb.png")
    out = tmp_path / "pred.csv"
    status = main(["classify", str(sample_folder), "--out", str(out)])
    assert status == 1
    err = capsys.readouterr().err
    for name in ("truncated.jpg", "empty.jpg", "page.jpg", "bomb.png"):
        assert f"skipped {name}" in err
    assert set(read_rows(out)) >= {"astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"}


def test_interrupted_classify_resumes_without_redoing(sample_folder: Path) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    classifier = Classifier()
    cancel = CancelToken()
    job = classify_project(store, classifier, batch_size=2, cancel=cancel)
    finished: list[int] = []
    with pytest.raises(Cancelled):
        for event in job:
            finished += event.extra.get("image_ids", [])
            if finished:
                cancel.cancel()
    assert len(finished) == 2
    assert set(store.prediction_inputs(classifier.key)) == set(finished)
    report = run_to_end(classify_project(store, classifier, batch_size=2))
    assert (report.classified, report.already_done) == (2, 2)
    store.set_caption(finished[0], "a new caption", "typed")
    again = run_to_end(classify_project(store, classifier, batch_size=2))
    assert again.classified == 1  # only the image whose caption changed


def test_export_merges_confirmations_and_round_trips(sample_folder: Path, tmp_path: Path) -> None:
    assert main(["-q", "classify", str(sample_folder), "--captions", str(CAPTIONS)]) == 0
    store = ProjectStore(sample_folder)
    ids = store.image_ids_by_relpath()
    store.confirm(ids["coffee.jpg"], "traffic light", True)
    store.set_caption(ids["rocket.jpg"], "=HYPERLINK(\"http://x\")", "typed")
    out = tmp_path / "all.csv"
    assert main(["-q", "export", str(sample_folder), "--out", str(out), "--probabilities"]) == 0
    rows = read_rows(out)
    assert "traffic light" in rows["coffee.jpg"]["Labels"].split(";")  # type: ignore[union-attr]
    assert rows["rocket.jpg"]["Caption"].startswith("'=")  # type: ignore[union-attr]
    truth = tmp_path / "truth.csv"
    truth.write_text(out.read_text(encoding="utf-8"), encoding="utf-8")
    report_json = tmp_path / "r.json"
    assert main(["evaluate", str(out), str(truth), "--json", str(report_json)]) == 0
    assert '"samples_f1": 1.0' in report_json.read_text()


def test_label_ids_output_matches_the_input_convention(sample_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ids.csv"
    assert main(["-q", "classify", str(sample_folder), "--captions", str(CAPTIONS), "--out", str(out),
                 "--label-ids"]) == 0
    assert "17" in read_rows(out)["chelsea.jpg"]["Labels"].split()  # type: ignore[union-attr]


def test_missing_model_is_a_clear_error(sample_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", str(sample_folder), "--model", str(tmp_path / "nope")]) == 2
    assert "model.json is missing" in capsys.readouterr().err


def test_real_photos_score_well_against_their_truth(comp_slice: Path, tmp_path: Path) -> None:
    """160 comp5329 photos with their human captions: a sanity floor, not the benchmark."""
    truth = write_comp_truth(comp_slice, tmp_path / "truth.csv")
    out = tmp_path / "pred.csv"
    assert main(["-q", "classify", str(comp_slice), "--captions", str(truth), "--out", str(out), "--label-ids"]) == 0
    from core.tagging.evaluation import evaluate_csvs

    report, _ = evaluate_csvs(out, truth)
    assert report.samples_f1 > 0.75


def test_generated_captions_are_not_read_unless_asked(sample_folder: Path) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    classifier = Classifier()
    run_to_end(classify_project(store, classifier))
    cat_id = store.image_ids_by_relpath()["chelsea.jpg"]
    photo_only = store.predictions(classifier.key)[cat_id]
    store.set_caption(cat_id, "a red double decker bus on a city street", "generated")
    assert run_to_end(classify_project(store, classifier)).classified == 0  # nothing it reads changed
    assert store.predictions(classifier.key)[cat_id] == photo_only
    run_to_end(classify_project(store, classifier, use_generated_captions=True))
    assert store.predictions(classifier.key)[cat_id]["bus"][0] > photo_only["bus"][0]


def test_a_bare_carriage_return_cannot_split_a_record_or_smuggle_a_formula(sample_folder: Path, tmp_path: Path) -> None:
    """Python's csv writer leaves a cell holding only "\\r" unquoted; a reader then starts a new
    record after it, unguarded. Every export quotes a cell holding one, so it stays one cell with
    its exact text, and the file's lines still end in a line feed."""
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    ids = store.image_ids_by_relpath()
    store.set_caption(ids["coffee.jpg"], "A man on a horse\r=cmd|' /C calc'!A0", "typed")
    store.close()
    for argv in (["export", str(sample_folder), "--out"], ["caption", str(sample_folder), "--out"]):
        out = tmp_path / f"{argv[0]}.csv"
        assert main(["-q", *argv, str(out)]) in (0, 1)
        with open(out, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        assert all(not cell.startswith("=") for row in rows for cell in row)
        assert sum(1 for row in rows if row and row[0] == "coffee.jpg") == 1
        caption = next(row for row in rows if row[0] == "coffee.jpg")[1 if argv[0] == "caption" else 2]
        assert caption == "A man on a horse\r=cmd|' /C calc'!A0"
        assert out.read_bytes().count(b"\r\n") == 0


def test_outputs_never_overwrite_the_database_a_photo_or_the_input(sample_folder: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    truth = tmp_path / "truth.csv"
    truth.write_bytes(CAPTIONS.read_bytes())
    database = sample_folder / ".tagline" / "project.db"
    for argv in (["export", str(sample_folder), "--out", str(database)],
                 ["export", str(sample_folder), "--out", str(sample_folder / "rocket.jpg")],
                 ["classify", str(sample_folder), "--captions", str(truth), "--out", str(truth)]):
        before = {p: p.read_bytes() for p in (sample_folder / "rocket.jpg", truth)}
        assert main(["-q", *argv]) == 2
        assert "write" in capsys.readouterr().err
        assert all(p.read_bytes() == data for p, data in before.items())
        with ProjectStore(sample_folder) as store:  # the database is still the project's
            assert store.integrity_ok() and len(store.images()) == 4
    assert main(["-q", "export", str(sample_folder), "--out", str(tmp_path / "fine.csv")]) == 0
