"""The decode-ahead pool: batches come back in order, decoded, and a cancel stops it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from core.media import prefetch
from core.media.prefetch import decode_workers, prefetched
from core.progress import Cancelled, CancelToken

SAMPLE = Path(__file__).resolve().parent.parent / "resources" / "sample"


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.load()
        return image.size


def test_batches_come_back_in_order_with_each_photo_decoded() -> None:
    photos = sorted(SAMPLE.glob("*.jpg"))
    assert len(photos) >= 4
    batches = [photos[i : i + 2] for i in range(0, len(photos), 2)]
    seen: list[tuple[Path, tuple[int, int] | None]] = []
    for batch in prefetched(batches, _size, lambda p: p.name != photos[0].name, workers=2):
        seen.extend((path, None if future is None else future.result()) for path, future in batch)
    assert [path for path, _ in seen] == photos
    assert seen[0][1] is None  # no decode asked for the first photo
    assert all(size == _size(path) for path, size in seen[1:])


def test_a_cancel_stops_before_the_next_batch() -> None:
    photos = sorted(SAMPLE.glob("*.jpg"))
    batches = [[path] for path in photos]
    cancel = CancelToken()
    taken = 0
    with pytest.raises(Cancelled):
        for _ in prefetched(batches, _size, lambda p: True, cancel):
            taken += 1
            cancel.cancel()
    assert taken == 1


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 1), (3, 2), (16, 4)])
def test_decode_leaves_a_core_to_the_encoder(monkeypatch: pytest.MonkeyPatch, cores: int, expected: int) -> None:
    monkeypatch.setattr(prefetch.os, "sched_getaffinity", lambda _pid: set(range(cores)), raising=False)
    assert decode_workers() == expected
