"""Finding photos by words: the bundled image-text alignment on real photos, the `search` verb,
its cache of aligned vectors, and the refusal of features from other encoder versions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.cli import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, main
from core.errors import ModelError
from core.jobs.search import SearchRequest, search_job
from core.models.alignment import default_alignment_dir, load_alignment
from core.models.registry import image_spec, text_spec
from core.progress import run_to_end
from core.store.database import ProjectStore
from core.tagging.word_search import average_precision, best_first, zero_shot_scores


def test_the_bundled_alignment_is_small_numpy_and_names_its_encoders() -> None:
    alignment = load_alignment()
    assert alignment.image_key == image_spec("efficientnet_lite0").key
    assert alignment.text_key == text_spec("minilm_l6").key
    assert alignment.image_weight.shape == (2560, 384) and alignment.text_weight.shape == (384, 384)
    size = sum(p.stat().st_size for p in default_alignment_dir().iterdir())
    assert size < 8_000_000
    info = alignment.info
    assert info["command"].startswith("python -m core.tagging.alignment_train")
    assert info["scores"]["validation"]["map"] > 2 * info["scores"]["validation"]["chance"]
    vectors = alignment.project_images(np.ones((2, 2560), np.float32))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_features_of_another_encoder_version_are_refused() -> None:
    alignment = load_alignment()
    with pytest.raises(ModelError, match="was trained on image:efficientnet_lite0@256.r1"):
        alignment.require_encoders("image:efficientnet_lite0@256.r2", alignment.text_key)


def test_reduced_precision_features_of_its_encoders_are_read_and_kept_apart() -> None:
    """OpenVINO bf16 (the default on CPUs with bf16) gives the same encoders' features at a lower
    precision: the same space, so searches work there, and their projections are cached apart."""
    alignment = load_alignment()
    bf16 = alignment.require_encoders(alignment.image_key + "+bf16", alignment.text_key + "+bf16")
    assert bf16.key == alignment.key + "+bf16" and bf16.version == alignment.version
    assert alignment.require_encoders(alignment.image_key, alignment.text_key).key == alignment.key
    np.testing.assert_array_equal(bf16.image_weight, alignment.image_weight)


def test_search_refuses_an_alignment_of_other_encoders(sample_folder: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "alignment"
    shutil.copytree(default_alignment_dir(), other)
    meta = json.loads((other / "alignment.json").read_text())
    meta["image_key"] = "image:efficientnet_lite0@256.r9"
    (other / "alignment.json").write_text(json.dumps(meta))
    assert main(["-q", "search", str(sample_folder), "a", "cat", "--alignment", str(other)]) == EXIT_ERROR
    assert "retrain it" in capsys.readouterr().err


def test_a_missing_alignment_is_said(sample_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "search", str(sample_folder), "cat", "--alignment", str(tmp_path)]) == EXIT_ERROR
    assert "no image-text alignment" in capsys.readouterr().err


@pytest.mark.parametrize("words, expected", [("a cat", "chelsea.jpg"), ("a cup of coffee on a table", "coffee.jpg"),
                                             ("an astronaut", "astronaut.jpg")])
def test_words_find_the_sample_photo_they_describe(sample_folder: Path, words: str, expected: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The sample's captions are not imported: the photos are found by what they show."""
    assert main(["-q", "search", str(sample_folder), *words.split(), "-n", "4"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert sorted(lines) == sorted(p.name for p in sample_folder.glob("*.jpg"))
    assert lines[0] == expected


def test_aligned_vectors_are_cached_and_a_changed_photo_is_embedded_again(sample_folder: Path) -> None:
    from core.jobs.project import scan_job

    store = ProjectStore(sample_folder)
    run_to_end(scan_job(store))  # the job's caller scans (as the CLI does)
    first = run_to_end(search_job(store, SearchRequest("a cat", 2)))
    assert first.embedded == 4 and first.relpaths[0] == "chelsea.jpg"
    again = run_to_end(search_job(store, SearchRequest("a cup of coffee", 1)))
    assert again.embedded == 0 and again.relpaths == ["coffee.jpg"]
    shutil.copyfile(sample_folder / "chelsea.jpg", sample_folder / "coffee.jpg")  # the coffee photo now shows the cat
    run_to_end(scan_job(store))
    changed = run_to_end(search_job(store, SearchRequest("a cat", 2)))
    assert changed.embedded == 1 and sorted(changed.relpaths) == ["chelsea.jpg", "coffee.jpg"]
    store.close()


def test_a_photo_that_cannot_be_read_is_skipped_with_exit_1(sample_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (sample_folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    assert main(["search", str(sample_folder), "a", "cat", "-n", "10"]) == EXIT_PARTIAL
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "chelsea.jpg" and "broken.jpg" not in captured.out
    assert "broken.jpg" in captured.err


def test_blank_words_are_a_usage_error(sample_folder: Path) -> None:
    assert main(["-q", "search", str(sample_folder), " "]) == EXIT_ERROR
    with pytest.raises(SystemExit):
        main(["search", str(sample_folder), "cat", "-n", "0"])


def test_best_first_matches_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(size=(5000, 16)).astype(np.float16)
    query = rng.normal(size=16).astype(np.float32)
    rows, scores = best_first(matrix, query, 25)
    full = (matrix.astype(np.float32) @ query)
    assert np.array_equal(np.sort(rows), np.sort(np.argsort(-full)[:25]))
    assert np.all(np.diff(scores) <= 0)
    assert len(best_first(matrix[:3], query, 10)[0]) == 3 and len(best_first(matrix[:0], query, 10)[0]) == 0


def test_scores_agree_with_scikit_learn() -> None:
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(1)
    scores, positive = rng.normal(size=400), rng.random(400) < 0.1
    assert average_precision(scores, positive) == pytest.approx(metrics.average_precision_score(positive, scores))
    photos = np.eye(4, dtype=np.float32)
    result = zero_shot_scores(photos, photos[:2], np.eye(4, 2, dtype=bool), ["a", "b"], top=1)
    assert result["map"] == 1.0 and result["p@1"] == 1.0 and result["chance"] == 0.25


def test_the_trainer_fits_saves_and_loads_an_alignment_that_pairs_captions_with_photos(sample_folder: Path,
                                                                                      tmp_path: Path) -> None:
    """Mechanics on the four sample photos and their captions (too few to generalise, so the
    check is that the trained, saved and reloaded maps pair each caption with its photo)."""
    from bench.common import default_encoders
    from core.jobs.importing import ImportRequest, import_job
    from core.jobs.project import scan_job
    from core.models.alignment import save_alignment
    from core.tagging.alignment_train import AlignConfig, collect, fit

    store = ProjectStore(sample_folder)
    run_to_end(scan_job(store))
    run_to_end(import_job(store, ImportRequest(Path("resources/sample/captions.csv").resolve(), None, True)))
    encoders = default_encoders()
    data = collect(store, encoders)
    data.part[:] = "train"
    data.part = np.concatenate([data.part, np.full(len(data.part), "validation")])
    for name in ("image", "text", "has_caption", "targets"):
        setattr(data, name, np.concatenate([getattr(data, name)] * 2))
    assert data.labels == ["person", "cat"] and data.targets[:4].tolist() == [[1, 0], [0, 1], [0, 0], [0, 0]]
    prompts = np.asarray(encoders.text.encode([f"a photo of a {n}" for n in data.labels]), np.float32)
    tensors, history = fit(data, prompts, AlignConfig(epochs=30, batch_size=4))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    save_alignment(tmp_path / "trained", tensors, {"version": "test", "image_key": encoders.image_key,
                                                    "text_key": encoders.text_key, "image_encoder": "efficientnet_lite0",
                                                    "text_encoder": "minilm_l6"})
    alignment = load_alignment(tmp_path / "trained")
    photos = alignment.project_images(data.image[:4])
    words = alignment.project_texts(data.text[:4])
    assert np.array_equal(np.argmax(words @ photos.T, axis=1), np.arange(4))
    store.close()


def test_a_word_index_answers_many_queries_from_memory(sample_folder: Path) -> None:
    """What a window keeps: the aligned vectors read once, then only each query is encoded."""
    from bench.common import default_encoders
    from core.jobs.project import scan_job
    from core.tagging.word_search import WordIndex, aligned_cache, query_vectors

    store = ProjectStore(sample_folder)
    run_to_end(scan_job(store))
    run_to_end(search_job(store, SearchRequest("anything", 1)))  # embeds and keeps the aligned vectors
    encoders = default_encoders()  # the runtime this CPU gets (bf16 features where it has bf16)
    alignment = load_alignment().require_encoders(encoders.image_key, encoders.text_key)
    index = WordIndex.from_cache(aligned_cache(store, alignment), store.images(), alignment.dim)
    assert len(index) == 4
    names = {r.id: r.relpath for r in store.images()}
    queries = query_vectors(encoders, alignment, ["a cat", "an astronaut"])
    assert [names[index.rank(q, 1)[0][0]] for q in queries] == ["chelsea.jpg", "astronaut.jpg"]
    ids, scores = index.rank(queries[0], 10)
    assert len(ids) == 4 and scores == sorted(scores, reverse=True)
    store.close()
