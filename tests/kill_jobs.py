"""A process that trains or captions a project over and over, to be killed at random moments.

Run by tests/test_crash_safety.py, which kills it with SIGKILL and then checks the project.
Usage: python -m tests.kill_jobs train FOLDER MODEL_DIR SEED
       python -m tests.kill_jobs caption FOLDER SEED
       python -m tests.kill_jobs classify FOLDER SEED
"""

from __future__ import annotations

import random
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any, TypeVar

from core.progress import Progress
from core.store.database import ProjectStore

T = TypeVar("T")


def run_announcing(job: Generator[Progress, None, T]) -> T:
    """Run a job, printing each stage it enters, so the test knows where its kill landed."""
    stage = ""
    try:
        while True:
            event = next(job)
            if event.stage != stage:
                stage = event.stage
                announce(f"STAGE\t{stage}")
    except StopIteration as stop:
        result: Any = stop.value
        return result  # type: ignore[no-any-return]


def train_forever(folder: str, model_dir: str, seed: int) -> None:
    """Embed (resuming from the cache), train a small head and save it, again and again."""
    from core.learn.training import TrainConfig
    from core.tagging.classifier import Classifier
    from core.tagging.learning import SplitRule, learn

    store = ProjectStore(folder)
    encoders = Classifier().encoders(prefer_gpu=False)
    rng = random.Random(seed)
    while True:
        config = TrainConfig(max_epochs=rng.randint(1, 4), ensemble=1, seed=rng.randint(0, 999))
        result = run_announcing(learn(store, Path(model_dir), encoders, SplitRule(holdout=0.2, validation=0.2, seed=1), config))
        announce(f"SAVED\t{result.info.version}")


def caption_forever(folder: str, seed: int) -> None:
    """Fill missing captions batch by batch; when all are done, forget the generated ones."""
    from core.captions.caption_job import caption_project
    from core.captions.captioning import Captioner

    store = ProjectStore(folder)
    captioner = Captioner(prefer_gpu=False)
    batch = random.Random(seed).choice([4, 8, 16])
    while True:
        report = run_announcing(caption_project(store, captioner, batch_size=batch))
        announce(f"DONE\t{report.captioned}")
        generated = [i for i, (_, source) in store.captions().items() if source == "generated"]
        with store.transaction():
            for image_id in generated:
                store.delete_caption(image_id)


def classify_forever(folder: str, seed: int) -> None:
    """Classify every photo batch by batch; when all are done, forget the predictions."""
    from core.tagging.classifier import Classifier, classify_project

    store = ProjectStore(folder)
    classifier = Classifier()
    batch = random.Random(seed).choice([4, 8, 16])
    while True:
        report = run_announcing(classify_project(store, classifier, classifier.encoders(prefer_gpu=False), batch_size=batch))
        announce(f"DONE\t{report.classified}")
        with store.transaction() as cursor:
            cursor.execute("DELETE FROM predictions")


def announce(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train_forever(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif sys.argv[1] == "caption":
        caption_forever(sys.argv[2], int(sys.argv[3]))
    else:
        classify_forever(sys.argv[2], int(sys.argv[3]))
