"""Batched embedding pipeline with a cache in the store.

Decoding runs in a thread pool a few batches ahead of the model, so the encoder never waits
on the disk; each batch's vectors are committed to the store at once, so an interrupted job
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from core.errors import ImageDecodeError
from core.media.images import load_rgb
from core.media.prefetch import prefetched
from core.models.encoders import ImageEncoder, TextEncoder, image_onnx_path
from core.models.registry import ImageEncoderSpec, TextEncoderSpec
from core.models.runtimes import Runtime, choose_runtime
from core.progress import CancelToken
from core.store.database import ImageRecord, ProjectStore


@dataclass
class Encoders:
    """The pair of encoders a classifier was trained with, built on first use."""

    image_spec: ImageEncoderSpec
    text_spec: TextEncoderSpec
    prefer_gpu: bool = True
    runtime_name: str | None = None  # "auto", "onnxruntime", "openvino", "openvino-bf16"; None: $TAGLINE_RUNTIME or auto

    @cached_property
    def runtime(self) -> Runtime:
        from core.models.encoders import gpu_in_use

        return choose_runtime(self.runtime_name, gpu=gpu_in_use(self.prefer_gpu), image_graph=self.image_graph)

    def image_graph(self) -> Path:
        """The image encoder's ONNX graph, exported on first use."""
        return image_onnx_path(self.image_spec)

    @property
    def image_key(self) -> str:
        """The cache key of this run's image features: the spec's, plus the precision when reduced."""
        return self.image_spec.key + self.runtime.feature_key_suffix

    @property
    def text_key(self) -> str:
        return self.text_spec.key + self.runtime.feature_key_suffix

    @cached_property
    def image(self) -> ImageEncoder:
        return ImageEncoder(self.image_spec, self.prefer_gpu, runtime=self.runtime)

    @cached_property
    def text(self) -> TextEncoder:
        return TextEncoder(self.text_spec, self.prefer_gpu, runtime=self.runtime)


@dataclass
class EmbeddedBatch:
    image_ids: list[int]
    image_vectors: np.ndarray  # (n, image dim)
    text_vectors: np.ndarray  # (n, text dim); zeros where there is no caption
    has_caption: np.ndarray  # (n,) float32 0/1
    failures: list[tuple[ImageRecord, str]] = field(default_factory=list)


def caption_key(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def _decode(store: ProjectStore, record: ImageRecord, spec: ImageEncoderSpec, as_bytes: bool = False) -> np.ndarray | str:
    """The photo as the image encoder reads it; `as_bytes` for an OpenVINO graph, which
    normalises inside itself (`ImageEncoder.takes_bytes`)."""
    try:
        image = load_rgb(store.image_path(record), max_side=2 * spec.input_size)
    except ImageDecodeError as exc:
        return exc.reason
    from core.models.encoders import preprocess_bytes, preprocess_image

    return preprocess_bytes(image, spec) if as_bytes else preprocess_image(image, spec)


def iter_embedded_batches(
    store: ProjectStore,
    encoders: Encoders,
    records: Sequence[ImageRecord],
    batch_size: int = 32,
    cancel: CancelToken | None = None,
    captions: dict[int, tuple[str, str]] | None = None,
) -> Iterator[EmbeddedBatch]:
    """Yield embeddings for `records` batch by batch, encoding only what is not cached.

    `captions` (image id -> (text, source)) defaults to every caption in the store.
    """
    image_key, text_key = encoders.image_key, encoders.text_key
    wanted = [r.id for r in records]
    image_cache = store.cached_embeddings(image_key, wanted)
    text_cache = store.cached_embeddings(text_key, wanted)
    captions = store.captions() if captions is None else captions
    batches = [records[i : i + batch_size] for i in range(0, len(records), batch_size)]

    def needs_decode(record: ImageRecord) -> bool:
        cached = image_cache.get(record.id)
        return cached is None or cached[0] != (record.digest or "")

    as_bytes = encoders.runtime.engine == "openvino"  # its image graph takes bytes (normalised in it)

    def decode(record: ImageRecord) -> np.ndarray | str:
        return _decode(store, record, encoders.image_spec, as_bytes)

    for current in prefetched(batches, decode, needs_decode, cancel):
        yield _encode_batch(store, encoders, current, image_cache, text_cache, captions)


def _encode_batch(
    store: ProjectStore,
    encoders: Encoders,
    items: list[tuple[ImageRecord, Future[np.ndarray | str] | None]],
    image_cache: dict[int, tuple[str, np.ndarray]],
    text_cache: dict[int, tuple[str, np.ndarray]],
    captions: dict[int, tuple[str, str]],
) -> EmbeddedBatch:
    failures: list[tuple[ImageRecord, str]] = []
    kept: list[ImageRecord] = []
    image_vectors: dict[int, np.ndarray] = {}
    to_encode: list[tuple[ImageRecord, np.ndarray]] = []
    for record, future in items:
        if future is None:
            image_vectors[record.id] = image_cache[record.id][1]
            kept.append(record)
            continue
        result = future.result()
        if isinstance(result, str):
            failures.append((record, result))
        else:
            to_encode.append((record, result))
            kept.append(record)
    if to_encode:
        encoded = encoders.image.encode(encoders.image.stack([pixels for _, pixels in to_encode]))
        for (record, _), vector in zip(to_encode, encoded):
            image_vectors[record.id] = vector
    text_dim = encoders.text_spec.dim
    text_vectors = np.zeros((len(kept), text_dim), np.float32)
    has_caption = np.zeros(len(kept), np.float32)
    new_text: list[tuple[int, int, str]] = []
    for row, record in enumerate(kept):
        caption = captions.get(record.id)
        if caption is None:
            continue
        has_caption[row] = 1.0
        key = caption_key(caption[0])
        cached = text_cache.get(record.id)
        if cached is not None and cached[0] == key:
            text_vectors[row] = cached[1]
        else:
            new_text.append((row, record.id, caption[0]))
    if new_text:
        encoded_text = encoders.text.encode([text for _, _, text in new_text])
        for (row, _, _), vector in zip(new_text, encoded_text):
            text_vectors[row] = vector
    with store.transaction():
        store.save_embeddings(
            encoders.image_key,
            [(r.id, r.digest or "", image_vectors[r.id]) for r, _ in to_encode],
        )
        store.save_embeddings(
            encoders.text_key,
            [(image_id, caption_key(text), text_vectors[row]) for row, image_id, text in new_text],
        )
        for record, reason in failures:
            store.set_image_error(record.id, reason)
    ids = [r.id for r in kept]
    stacked = np.stack([image_vectors[i] for i in ids]) if ids else np.zeros((0, encoders.image_spec.dim), np.float32)
    return EmbeddedBatch(ids, stacked.astype(np.float32), text_vectors, has_caption, failures)
