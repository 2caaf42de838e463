"""A new label's zero-shot prior in the trainer (core.learn.label_prior): with few confirmed photos
the label keeps what its name says, with many the photos decide; the prior travels inside the
model (saved, loaded, exported to the head graph) and `tagline train` uses the shipped alignment."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.learn.fusion_head import create_head
from core.learn.label_prior import LabelPrior
from core.learn.training import TrainingData, predict_heads
from core.progress import run_to_end
from core.tagging.word_search import average_precision


def toy_prior(rng: np.random.Generator, image_dim: int = 12, joint: int = 6) -> LabelPrior:
    weight = rng.normal(size=(image_dim, joint)).astype(np.float32)
    prompt = rng.normal(size=(1, joint)).astype(np.float32)
    return LabelPrior("align:toy", weight, np.zeros(joint, np.float32), prompt / np.linalg.norm(prompt))


def toy_photos(prior: LabelPrior, n: int, rng: np.random.Generator, noise: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Photos whose label is mostly what the prior says (noisy), so the name is worth knowing."""
    image = rng.normal(size=(n, prior.image_weight.shape[0])).astype(np.float32)
    score = prior.scores(image)[:, 0]
    truth = score + noise * rng.normal(size=n) > np.quantile(score, 0.85)
    return image, truth


def fit(image: np.ndarray, truth: np.ndarray, prior: LabelPrior | None) -> list[object]:
    from core.learn.ladder import train_small

    data = TrainingData(image, np.zeros((len(image), 3), np.float32), np.zeros(len(image), np.float32),
                        truth[:, None], ["new"], label_prior=prior)
    trained, _ = run_to_end(train_small(data))
    return trained.heads


def scores(heads: list[object], image: np.ndarray) -> np.ndarray:
    return predict_heads(heads, image, np.zeros((len(image), 3), np.float32), np.zeros(len(image), np.float32))[:, 0]


def test_a_label_confirmed_on_a_few_photos_keeps_what_its_name_says() -> None:
    rng = np.random.default_rng(0)
    prior = toy_prior(rng)
    image, truth = toy_photos(prior, 800, rng)
    prior = prior.with_statistics(image)  # the project's photos
    test = np.arange(400, 800)
    # the first rounds: the best guesses of the first half, as the app suggests them
    guesses = np.argsort(-prior.scores(image[:400])[:, 0])[:8]
    assert 0 < truth[guesses].sum() < 8
    with_prior = average_precision(scores(fit(image[guesses], truth[guesses], prior), image[test]), truth[test])
    without = average_precision(scores(fit(image[guesses], truth[guesses], None), image[test]), truth[test])
    alone = average_precision(prior.scores(image[test])[:, 0], truth[test])
    assert with_prior > without + 0.1 and with_prior > 0.8 * alone


def test_with_many_photos_the_photos_decide_over_a_wrong_prior() -> None:
    rng = np.random.default_rng(1)
    prior = toy_prior(rng)
    image = rng.normal(size=(900, 12)).astype(np.float32)
    truth = image[:, 0] > 1.0  # nothing to do with the name
    wrong = replace(prior.with_statistics(image), worth=5.0)
    heads = fit(image[:500], truth[:500], wrong)
    assert average_precision(scores(heads, image[500:]), truth[500:]) > 0.9
    assert abs(float(heads[0].prior_scale.detach())) < 0.75  # pulled from its start of 1: the photos disagree


def test_the_prior_travels_inside_the_head_and_its_graph(tmp_path) -> None:
    from core.models.head_graph import HeadGraph, export_head_graph

    rng = np.random.default_rng(2)
    prior = toy_prior(rng)
    image, truth = toy_photos(prior, 60, rng)
    heads = fit(image, truth, prior)
    assert heads[0].config.prior_dim == 6 and all(h.config.kind == "linear" for h in heads)  # the linear rung alone
    again = create_head(heads[0].config)
    again.load_state_dict(heads[0].state_dict())
    np.testing.assert_allclose(scores([again], image), scores(heads, image), atol=1e-6)
    export_head_graph(heads, 12, 3, tmp_path / "head.onnx")
    graph = HeadGraph(tmp_path / "head.onnx").predict(image, np.zeros((60, 3), np.float32), np.zeros(60, np.float32))
    np.testing.assert_allclose(graph[:, 0], scores(heads, image), atol=1e-5)


def test_train_learns_a_new_label_from_its_name_and_two_photos(sample_folder, tmp_path, capsys) -> None:
    """Real photos, `tagline train` on labels no model knows: each new label's linear rung reads
    its prompts through the shipped alignment (the person's own words too), model.json says so,
    and the photos nobody confirmed for it are ranked by what they show."""
    import csv

    from core.cli import main
    from core.models.model_files import read_info
    from core.store.database import ProjectStore

    assert main(["-q", "scan", str(sample_folder)]) == 0
    assert main(["-q", "describe", str(sample_folder), "astronaut", "a man in a white space suit"]) == 2  # no such label
    with ProjectStore(sample_folder) as store:
        store.ensure_labels(["rocket", "astronaut"])
        ids = store.image_ids_by_relpath()
        # two photos decided, neither the astronaut's: the rest is the prior's to rank
        store.confirm_many([(ids["rocket.jpg"], "rocket", True), (ids["rocket.jpg"], "astronaut", False),
                            (ids["coffee.jpg"], "rocket", False), (ids["coffee.jpg"], "astronaut", False)])
    assert main(["-q", "describe", str(sample_folder), "astronaut", "a man in a white space suit"]) == 0
    out = tmp_path / "model"
    capsys.readouterr()
    assert main(["-q", "train", str(sample_folder), "--out", str(out), "--activate", "never"]) == 0
    assert "rocket, astronaut: learnt from your photos and from what each name says" in capsys.readouterr().out
    info = read_info(out)
    assert info.training["label_prior"]["labels"] == ["rocket", "astronaut"]
    assert info.training["label_prior"]["alignment"].startswith("align:")
    assert info.head["kind"] == "linear" and info.head["prior_dim"] == 384
    table = tmp_path / "out.csv"
    assert main(["-q", "classify", str(sample_folder), "--model", str(out), "--probabilities", "--redo",
                 "--out", str(table)]) == 0
    with open(table, newline="", encoding="utf-8") as f:
        rows = {r["ImageID"]: r for r in csv.DictReader(f)}
    undecided = ["astronaut.jpg", "chelsea.jpg"]
    assert max(undecided, key=lambda name: float(rows[name]["p_astronaut"])) == "astronaut.jpg"
    assert float(rows["astronaut.jpg"]["p_rocket"]) < float(rows["rocket.jpg"]["p_rocket"])


def test_the_prior_is_standardised_over_the_projects_photos(sample_folder, monkeypatch) -> None:
    """Over the project's photos, not only the few trained on (which the first rounds pick from the
    best guesses): from their kept aligned vectors, else their cached features, else none."""
    from bench.common import default_encoders
    from core.cli import main
    from core.store.database import ProjectStore
    from core.tagging import learning

    monkeypatch.setattr(learning, "MIN_PROJECT_PHOTOS", 3)  # the sample has four photos
    encoders = default_encoders()
    assert main(["-q", "scan", str(sample_folder)]) == 0
    with ProjectStore(sample_folder) as store:
        alone = learning.project_label_prior(store, encoders, ["rocket", "cat"])
        assert alone is not None and alone.mean is None  # nothing kept yet: the photos trained on
    assert main(["-q", "classify", str(sample_folder)]) == 0  # keeps every photo's features
    with ProjectStore(sample_folder) as store:
        from_features = learning.project_label_prior(store, encoders, ["rocket", "cat"])
        features = np.stack([v for _, v in store.cached_embeddings(encoders.image_key).values()])
    assert from_features is not None and from_features.mean is not None and from_features.std is not None
    np.testing.assert_allclose(from_features.mean, from_features.scores(features).mean(0), atol=1e-6)
    assert main(["-q", "search", str(sample_folder), "a", "rocket"]) == 0  # keeps the aligned vectors
    with ProjectStore(sample_folder) as store:
        from_aligned = learning.project_label_prior(store, encoders, ["rocket", "cat"])
        assert from_aligned is not None and len(store.cached_embeddings(from_aligned.alignment_key)) == 4
    assert from_aligned.mean is not None
    np.testing.assert_allclose(from_aligned.mean, from_features.mean, atol=5e-3)  # float16 kept vectors
