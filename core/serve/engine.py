"""The models a server holds, loaded once: classify and caption photos already decoded."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from core.models.encoders import preprocess_image
from core.serve.batching import Batcher
from core.tagging.classifier import Classifier


@dataclass(frozen=True)
class ClassifyItem:
    image: Image.Image
    caption: str | None


@dataclass(frozen=True)
class Prediction:
    labels: list[str]
    probabilities: dict[str, float]
    guessed: list[str]  # labels given only because none passed its threshold


class Engine:
    """Classifier (and captioner) with their encoders; batched across requests."""

    def __init__(self, model: Path | None = None, captioner: Path | None = None, prefer_gpu: bool = True,
                 max_batch: int = 16, with_captioner: bool = True) -> None:
        self.classifier = Classifier(model)
        self.encoders = self.classifier.encoders(prefer_gpu=prefer_gpu)
        self.encoders.image.encode(np.zeros((1, 3, self.encoders.image_spec.input_size, self.encoders.image_spec.input_size),
                                            np.float32))  # load and warm the sessions before the first request
        self.encoders.text.encode(["warm up"])
        self.captioner: Any = None
        if with_captioner:
            from core.captions.captioning import load_captioner

            self.captioner = load_captioner(captioner, prefer_gpu=prefer_gpu)
        self.classify_batches: Batcher[ClassifyItem, Prediction] = Batcher(self.classify_many, max_batch)
        self.caption_batches: Batcher[Image.Image, str] = Batcher(self.caption_many, max_batch)

    @property
    def version(self) -> str:
        return self.classifier.version

    @property
    def provider(self) -> str:
        return str(self.encoders.image.provider)

    def classify_many(self, items: Sequence[ClassifyItem]) -> list[Prediction]:
        spec = self.encoders.image_spec
        pixels = np.stack([preprocess_image(item.image, spec) for item in items])
        image = self.encoders.image.encode(pixels)
        text = np.zeros((len(items), self.encoders.text_spec.dim), np.float32)
        rows = [i for i, item in enumerate(items) if item.caption]
        if rows:
            text[rows] = self.encoders.text.encode([items[i].caption or "" for i in rows])
        has_caption = np.array([1.0 if item.caption else 0.0 for item in items], np.float32)
        probabilities = self.classifier.predict(image, text, has_caption, [item.caption for item in items])
        codes = self.classifier.decision_codes(probabilities, has_caption)
        labels = self.classifier.labels
        return [Prediction([n for n, c in zip(labels, code) if c], {n: round(float(p), 4) for n, p in zip(labels, row)},
                           [n for n, c in zip(labels, code) if c == 2])
                for row, code in zip(probabilities, codes)]

    def caption_many(self, images: Sequence[Image.Image]) -> list[str]:
        if self.captioner is None:
            raise RuntimeError("this server was started without a captioner")
        return list(self.captioner.caption_images(images))

    def close(self) -> None:
        self.classify_batches.close()
        self.caption_batches.close()
