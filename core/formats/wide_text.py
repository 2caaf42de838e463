"""Telling UTF-16 and UTF-32 text without a byte order mark from binary junk.

A spreadsheet's "Unicode text" export may be UTF-16 with no BOM; read as UTF-8 its header
came out as `I\\x00m\\x00a\\x00...`, refused with a message nobody could read. Text in those
encodings puts NUL bytes at fixed places (every other byte, or three of every four, for the
Latin letters a CSV header is written in); that pattern names the encoding.
"""

from __future__ import annotations

_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),  # before UTF-16's: FF FE starts both
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def wide_encoding(data: bytes) -> str | None:
    """"utf-32", "utf-16", "utf-32-le"... when `data` looks like one of them (with or without
    a BOM), else None (UTF-8 or something else: the caller decodes and says what failed)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    head = data[:4096]
    if b"\x00" not in head:
        return None
    for width, order in ((4, "le"), (4, "be"), (2, "le"), (2, "be")):
        size = len(head) - len(head) % width
        if size < width:
            continue
        units = [head[i:i + width] for i in range(0, size, width)]
        text_at = 0 if order == "le" else width - 1  # where a Latin letter's byte sits in its unit
        fits = sum(1 for u in units if u[text_at] != 0 and not any(b for j, b in enumerate(u) if j != text_at))
        if fits >= 0.9 * len(units):
            return f"utf-{width * 8}-{order}"
    return None
