"""A caption that says a label's name: found the same way in training and prediction, and learnt
once for every label, so a label confirmed on a single photo is still recognised when named."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.learn.caption_words import name_mentions
from core.learn.ladder import fit_linear
from core.learn.training import TrainingData, predict_heads
from core.models.model_files import ClassifierInfo, read_info, save_classifier
from core.tagging.classifier import Classifier
from core.tagging.learning import ensemble_tensors, with_name_mentions


def test_names_are_found_as_whole_words_in_either_number() -> None:
    captions = ["Two DOGS chase a cat near the traffic  lights.", "A cathedral on a busy square.", None,
                "Street-furniture and a fire_hydrant", "a bus and buses"]
    found = name_mentions(captions, ["dog", "cat", "traffic_light", "bus", "street furniture", "fire hydrant", "?"])
    assert found.tolist() == [
        [1, 1, 1, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],  # not inside other words: cathedral, busy
        [0, 0, 0, 0, 0, 0, 0],  # no caption
        [0, 0, 0, 0, 1, 1, 0],
        [0, 0, 0, 1, 0, 0, 0],
    ]


def _named_photos(seed: int = 0) -> tuple[TrainingData, np.ndarray, np.ndarray]:
    """Photos and sentence vectors that carry nothing; captions that say their label most of the
    time. Three labels with 20 photos each train, 'zebra' with one; new photos of each follow."""
    rng = np.random.default_rng(seed)
    labels = ["dog", "cat", "bicycle", "zebra"]
    rows: list[tuple[int, str]] = []
    for j, label in enumerate(labels):
        count = 1 if label == "zebra" else 20
        rows += [(j, f"a {label} in the picture" if rng.random() < 0.8 else "something in the picture")
                 for _ in range(count)]
    train = np.arange(len(rows))
    rows += [(j, f"two {label}s by the road") for j, label in enumerate(labels) for _ in range(5)]
    n = len(rows)
    targets = np.zeros((n, len(labels)), bool)
    targets[np.arange(n), [j for j, _ in rows]] = True
    data = TrainingData(rng.normal(size=(n, 16)).astype(np.float32), rng.normal(size=(n, 8)).astype(np.float32),
                        np.ones(n, np.float32), targets, labels, [c for _, c in rows])
    return with_name_mentions(data), train, np.arange(len(train), n)


def test_a_label_confirmed_once_is_recognised_when_a_caption_names_it(tmp_path: Path) -> None:
    data, train, new = _named_photos()
    head = fit_linear(data, train, l2=1e-2)
    assert float(head.mention_scale.detach()) > 1.0  # learnt on the labels with many photos
    probs = predict_heads([head], data.image[new], data.text[new], data.has_caption[new])
    truth = data.targets[new]
    assert (probs.argmax(axis=1) == truth.argmax(axis=1)).all()  # the zebras too
    zebra = truth[:, 3]
    assert probs[zebra, 3].min() > 0.5 > probs[~zebra, 3].max()

    info = ClassifierInfo(version="test-mentions", labels=data.labels, thresholds=[0.5] * 4, global_threshold=0.5,
                          threshold_mode="global", top1_fallback=True, image_encoder="efficientnet_lite0",
                          text_encoder="minilm_l6", image_key="i", text_key="t", head=head.config.as_dict(),
                          ensemble=1, name_mentions=True)
    save_classifier(tmp_path, info, ensemble_tensors([head])[0])
    assert read_info(tmp_path).name_mentions
    sentence = data.text[new, : data.text.shape[1] - data.mention_dim]  # the classifier finds the names itself
    said = Classifier(tmp_path).predict(data.image[new], sentence, data.has_caption[new], [data.captions[i] for i in new])
    assert np.allclose(said, probs, atol=1e-6)
    unsaid = Classifier(tmp_path).predict(data.image[new], sentence, data.has_caption[new], None)
    assert unsaid[zebra, 3].max() < probs[zebra, 3].min()  # without the captions' words the names are not seen
