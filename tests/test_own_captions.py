"""A person's own labels learnt beside the folder's generated captions (issue 34): the model reads
them, weighs them against the photo alone when it classifies, and a caption typed later counts."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import COMP, needs_shared

OWN = {"grass": r"\b(grass|grassy|field|lawn)\b", "water": r"\b(water|lake|river|ocean|pool|beach|sea)\b"}


def own_label_folder(folder: Path) -> None:
    """80 real photos whose captions a captioner is said to have written (comp5329's own, stored as
    `generated`), and two labels of the person's own, decided by reading those captions."""
    from core.progress import run_to_end
    from core.store.database import ProjectStore

    keep = sorted(folder.iterdir(), key=lambda p: int(p.stem))[:80]
    for extra in set(folder.iterdir()) - set(keep):
        extra.unlink()
    with open(COMP / "train.csv", newline="", encoding="utf-8") as handle:
        captions = {r["ImageID"]: r["Caption"] for r in csv.DictReader(handle) if (folder / r["ImageID"]).exists()}
    from core.jobs.project import scan_job

    with ProjectStore(folder) as store:
        run_to_end(scan_job(store))
        ids = store.image_ids_by_relpath()
        store.set_captions([(ids[name], text) for name, text in captions.items()], "generated")
        store.ensure_labels(list(OWN))
        store.confirm_many([(ids[name], label, bool(re.search(pattern, text.lower())))
                            for name, text in captions.items() for label, pattern in OWN.items()])


@needs_shared
@pytest.mark.slow
def test_own_model_learns_from_generated_captions_and_reads_a_typed_one(comp_slice: Path, tmp_path: Path) -> None:
    from core.cli import main
    from core.models.model_files import read_info
    from core.progress import run_to_end
    from core.store.database import ProjectStore
    from core.tagging.classifier import OWN_GENERATED_WEIGHT, Classifier, classify_project

    own_label_folder(comp_slice)
    with_captions, photo_alone = tmp_path / "with", tmp_path / "alone"
    assert main(["-q", "train", str(comp_slice), "--out", str(with_captions), "--activate", "never"]) == 0
    assert main(["-q", "train", str(comp_slice), "--out", str(photo_alone), "--activate", "never",
                 "--no-generated-captions"]) == 0
    learnt, ignored = read_info(with_captions), read_info(photo_alone)
    assert learnt.labels == ignored.labels == list(OWN)
    assert learnt.training["with_caption"] == 80 and ignored.training["with_caption"] == 0
    trust = learnt.generated_captions
    assert trust["learnt"] and trust["weight"] == OWN_GENERATED_WEIGHT and len(trust["thresholds"]) == 2 and trust["photos"] == 80
    assert not ignored.generated_captions

    # the kayak: a caption the person types later is read by the model that learnt captions
    reader, blind = Classifier(with_captions), Classifier(photo_alone)
    with ProjectStore(comp_slice) as store:
        names = store.image_ids_by_relpath()
        plain = next(n for n, (c, _) in ((n, store.captions()[i]) for n, i in names.items())
                     if not any(re.search(p, c.lower()) for p in OWN.values()))
    from core.models.embedding import iter_embedded_batches

    encoders = reader.encoders(prefer_gpu=False)
    with ProjectStore(comp_slice) as store:  # the photo's cached embedding, as classify reads it
        record = next(r for r in store.images() if r.relpath == plain)
        image = next(iter_embedded_batches(store, encoders, [record], 1, None, {})).image_vectors
    typed = "A woman paddles a kayak on the water of a lake"
    text = encoders.text.encode([typed])
    water = list(OWN).index("water")
    alone = reader.predict(image, np.zeros_like(text), np.zeros(1, np.float32), [None])[0, water]
    read = reader.predict(image, text, np.ones(1, np.float32), [typed])[0, water]
    assert read > 0.5 > alone, (read, alone)
    blind_read = blind.predict(image, text, np.ones(1, np.float32), [typed])[0, water]
    assert blind_read < read

    # classify: the model that learnt from generated captions reads them (weighed), the other does not
    with ProjectStore(comp_slice) as store:
        run_to_end(classify_project(store, reader))
        run_to_end(classify_project(store, blind))
        keys_read = store.prediction_inputs(reader.key)
        keys_blind = store.prediction_inputs(blind.key)
    assert all(not k.endswith("/") for k in keys_read.values())  # the caption is part of what was read
    assert all(k.endswith("/") for k in keys_blind.values())
