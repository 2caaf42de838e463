"""Decoding: EXIF orientation, alpha, and each kind of bad file gives a typed, clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from core.errors import ImageDecodeError
from core.media.images import load_rgb
from tests import badfiles


def test_exif_orientation_is_applied(sample_folder: Path, tmp_path: Path) -> None:
    original = Image.open(sample_folder / "chelsea.jpg")
    rotated = badfiles.rotated_jpeg(sample_folder / "chelsea.jpg", tmp_path / "r.jpg")
    assert load_rgb(rotated).size == original.size


def test_alpha_is_flattened_on_white(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(path)
    assert load_rgb(path).getpixel((0, 0)) == (255, 255, 255)


def test_sixteen_bit_png_decodes(tmp_path: Path) -> None:
    path = tmp_path / "g16.png"
    Image.new("I;16", (8, 8), 40000).save(path)
    assert load_rgb(path).mode == "RGB"


@pytest.mark.parametrize(
    ("maker", "reason"),
    [
        (lambda d, s: badfiles.truncated_jpeg(s, d / "t.jpg"), "truncated"),
        (lambda d, s: badfiles.zero_byte(d / "z.jpg"), "not an image"),
        (lambda d, s: badfiles.text_named_jpg(d / "h.jpg"), "not an image"),
        (lambda d, s: badfiles.bomb_png(d / "b.png"), "pixels"),
        (lambda d, s: d / "missing.jpg", "not found"),
    ],
)
def test_bad_files_raise_a_typed_error(maker, reason: str, tmp_path: Path, sample_folder: Path) -> None:  # type: ignore[no-untyped-def]
    path = maker(tmp_path, sample_folder / "astronaut.jpg")
    with pytest.raises(ImageDecodeError, match=reason):
        load_rgb(path)


def test_max_side_decodes_reduced(sample_folder: Path) -> None:
    assert max(load_rgb(sample_folder / "astronaut.jpg", max_side=100).size) <= 100
