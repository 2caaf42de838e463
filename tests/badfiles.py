"""Makers of hostile and odd image files, shared by the tests."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from PIL import Image


def truncated_jpeg(source: Path, target: Path) -> Path:
    target.write_bytes(source.read_bytes()[: source.stat().st_size // 3])
    return target


def zero_byte(target: Path) -> Path:
    target.write_bytes(b"")
    return target


def text_named_jpg(target: Path) -> Path:
    target.write_text("<html><body>not a photo</body></html>", encoding="utf-8")
    return target


def bomb_png(target: Path, side: int = 60_000) -> Path:
    """A tiny PNG whose header claims side x side pixels (3.6 gigapixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1024)
    target.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return target


def rotated_jpeg(source: Path, target: Path) -> Path:
    """The photo stored sideways with EXIF orientation 6 (display rotated 90 degrees)."""
    image = Image.open(source).convert("RGB").transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(target, exif=exif.tobytes())
    return target


def bad_crc_png(source: Path, target: Path) -> Path:
    """A PNG whose first IDAT chunk checksum is wrong."""
    Image.open(source).convert("RGB").resize((64, 64)).save(target)
    data = bytearray(target.read_bytes())
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4 : idat])[0]
    crc_at = idat + 4 + length
    data[crc_at : crc_at + 4] = b"\x00\x00\x00\x00"
    target.write_bytes(bytes(data))
    return target


def hostile_corpus(source: Path, folder: Path) -> tuple[set[str], set[str]]:
    """At least 20 kinds of odd files in `folder`; returns (names that must decode, names that must fail)."""
    photo = Image.open(source).convert("RGB")
    small = photo.resize((96, 72))
    good: set[str] = set()
    bad: set[str] = set()

    def keep(name: str, image: Image.Image, **options: object) -> None:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path, **options)
        good.add(name)

    keep("cmyk.jpg", small.convert("CMYK"))
    keep("sixteen-bit.png", small.convert("L").point(lambda v: v * 256).convert("I;16"))
    keep("palette.png", small.convert("P", palette=Image.Palette.ADAPTIVE))
    keep("alpha.png", small.convert("RGBA"))
    frames = [small, small.rotate(90)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    good.add("animated.gif")
    keep("one-pixel.png", Image.new("RGB", (1, 1), (200, 10, 10)))
    keep("very-wide.png", Image.new("RGB", (20000, 10), (10, 200, 10)))
    keep("photo.webp", small)
    keep("photo.tiff", small)
    keep("photo.bmp", small)
    keep("name with spaces.jpg", small)
    keep("ünïcødé 写真.jpg", small)
    keep("new\nline.jpg", small)
    keep("nested/deeper/still/photo.jpg", small)
    rotated_jpeg(source, folder / "exif-rotated.jpg")
    good.add("exif-rotated.jpg")
    hidden = folder / ".hidden" / "inner"
    hidden.mkdir(parents=True)
    small.save(hidden / "never-seen.jpg")  # hidden folders are skipped, not failed
    bad.add(truncated_jpeg(source, folder / "truncated.jpg").name)
    bad.add(zero_byte(folder / "zero.jpg").name)
    bad.add(text_named_jpg(folder / "page.jpg").name)
    (folder / "notes.jpeg").write_text("just text, no image", encoding="utf-8")
    bad.add("notes.jpeg")
    bad.add(bomb_png(folder / "bomb.png").name)
    good.add(bad_crc_png(source, folder / "bad-crc.png").name)  # pixels intact: Pillow decodes it
    (folder / "dangling.jpg").symlink_to(folder / "does-not-exist.jpg")  # reported by the scan
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # not followed
    if hasattr(os, "mkfifo"):
        os.mkfifo(folder / "pipe.jpg")  # reported by the scan: not a regular file (a pipe)
    return good, bad
