"""Safe image decoding: EXIF orientation, decompression-bomb limit, clear per-file errors."""

from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import ImageDecodeError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})

# 100 megapixels: far above any camera photo we expect, far below what exhausts memory.
MAX_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def open_regular(path: Path | str) -> BinaryIO:
    """Open a file for reading only if it is a regular file (a link to one is fine).

    The open does not block, so a FIFO or device put where a photo was after the scan is
    refused at once instead of hanging a decode thread (and with it Ctrl-C's shutdown).
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise IsADirectoryError(errno.EINVAL, "not a regular file", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def load_rgb(path: Path | str, max_side: int | None = None) -> Image.Image:
    """Decode an image to RGB with EXIF rotation applied.

    With `max_side`, JPEGs decode at reduced scale (draft mode), which makes thumbnails and
    model inputs several times cheaper for large photos.
    """
    path = Path(path)
    try:
        with open_regular(path) as handle:
            return _decode(handle, str(path), max_side)
    except ImageDecodeError:
        raise
    except PermissionError as exc:
        raise ImageDecodeError(str(path), "permission denied") from exc
    except FileNotFoundError as exc:
        raise ImageDecodeError(str(path), "file not found") from exc
    except IsADirectoryError as exc:
        raise ImageDecodeError(str(path), "not a regular file (a folder, pipe or device)") from exc
    except OSError as exc:
        raise ImageDecodeError(str(path), f"broken or truncated image ({exc})") from exc


def decode_bytes(data: bytes, name: str = "upload", max_side: int | None = None) -> Image.Image:
    """The same decode for bytes already in memory (an upload to `tagline serve`)."""
    return _decode(io.BytesIO(data), name, max_side)


def _decode(handle: BinaryIO, name: str, max_side: int | None) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(handle) as im:
                width, height = im.size
                if width * height > MAX_PIXELS:
                    raise ImageDecodeError(name, f"too many pixels ({width}x{height}); limit is {MAX_PIXELS:,}")
                if max_side is not None and im.format == "JPEG":
                    im.draft("RGB", (max_side, max_side))
                im.load()
                oriented = ImageOps.exif_transpose(im)
                rgb = _to_rgb(oriented)
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(name, f"decompression bomb refused ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(name, "not an image file (unknown format)") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageDecodeError(name, f"broken or truncated image ({exc})") from exc
    if max_side is not None and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return rgb


def _to_rgb(im: Image.Image) -> Image.Image:
    """Flatten alpha onto white (not black) so transparent PNGs look as people expect."""
    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        return im.point(lambda value: value / 256).convert("L").convert("RGB")
    return im.convert("RGB")
