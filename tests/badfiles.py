"""Makers of hostile and odd image files, shared by the tests."""

from __future__ import annotations

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
