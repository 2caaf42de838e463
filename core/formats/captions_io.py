"""Caption and label import: `ImageID,Labels,Caption` CSVs (quirks included) and sidecars.

Nothing is dropped silently: every row that is not imported is listed with its line number
and the reason, and an import is a single transaction.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from core.errors import CsvImportError
from core.formats.bounded_read import MiB, read_bounded
from core.formats.wide_text import wide_encoding
from core.store.database import CAPTION_SOURCES, ProjectStore

_ID_COLUMNS = ("imageid", "image_id", "image", "filename", "file", "path")
_LABEL_COLUMNS = ("labels", "label", "tags")
_CAPTION_COLUMNS = ("caption", "captions", "text", "description")
# Tagline's own export says which labels the person decided and where each caption came from,
# so importing it restores exactly those decisions (its Labels column also holds predictions).
CONFIRMED_COLUMN, REJECTED_COLUMN, SOURCE_COLUMN = "Confirmed", "Rejected", "CaptionSource"
COMPLETE_CHOICES = ("file", "all", "none")  # which labels a plain row's Labels cell is complete for
csv.field_size_limit(10 * 1024 * 1024)


@dataclass(frozen=True)
class CaptionRow:
    line: int
    image_id: str
    labels: tuple[str, ...] | None  # the raw Labels cell (split later); None: no such column
    caption: str | None
    decided: tuple[str, str] | None = None  # raw Confirmed and Rejected cells of a Tagline export
    source: str | None = None  # CaptionSource of a Tagline export


@dataclass
class CsvReadResult:
    rows: list[CaptionRow] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class ImportReport:
    captions: int = 0
    labelled: int = 0
    kept_existing: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    added: int = 0  # decisions on a label the person had not decided for that photo
    changed: list[tuple[str, str, bool]] = field(default_factory=list)  # (photo, label, now present): earlier decisions overturned
    unchanged: int = 0  # decisions the person had made already
    complete_for: list[str] = field(default_factory=list)  # labels a row's Labels cell decided, named or not
    restored: bool = False  # the file is a Tagline export: its Confirmed/Rejected columns were read

    def summary(self) -> list[str]:
        """What the import did to the person's decisions, in words."""
        lines = [f"{self.added} new label decisions, {len(self.changed)} earlier decisions changed, "
                 f"{self.unchanged} already so"]
        if self.restored:
            lines.append("read as a Tagline export: only its Confirmed and Rejected labels became decisions, "
                         "and each caption keeps its CaptionSource")
        elif self.labelled:
            named = ", ".join(self.complete_for[:12]) + (" ..." if len(self.complete_for) > 12 else "")
            lines.append(f"a row's Labels decide these labels, present or absent: {named or 'only the ones it names'}; "
                         f"every other label was left as it was")
        for photo, label, present in self.changed[:10]:
            lines.append(f"changed: {photo} {label} is now {'present' if present else 'absent'}")
        if len(self.changed) > 10:
            lines.append(f"... and {len(self.changed) - 10} more changed decisions")
        return lines


def load_label_map(path: Path | str) -> dict[str, str]:
    """A JSON object mapping ids used in CSVs (e.g. "1") to label names (e.g. "person")."""
    data = read_bounded(Path(path), LABEL_MAP_LIMIT, lambda reason: CsvImportError(str(path), reason), "label map")
    try:
        mapping = json.loads(data.decode("utf-8-sig"))
    except (ValueError, RecursionError) as exc:
        raise CsvImportError(str(path), f"cannot read label map: {exc}") from exc
    if not isinstance(mapping, dict):
        raise CsvImportError(str(path), "label map must be a JSON object of id -> name")
    return {str(k): str(v) for k, v in mapping.items()}


def safe_relpath(raw: str) -> str | None:
    """Normalise an ImageID to a relative POSIX path, or None if it would leave the folder."""
    text = raw.strip().replace("\\", "/")
    if not text or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return None
    parts = PurePosixPath(text).parts
    if any(part == ".." for part in parts):
        return None
    return PurePosixPath(*[p for p in parts if p != "."]).as_posix()


DELIMITERS = (",", ";", "\t", "|")  # CSV, spreadsheet exports in many locales, TSV, pipes


# Reading a CSV takes about ten times its size in memory (a 127 MB file of 1.2 million rows peaked
# at 1.3 GB, a 48 MB one at 520 MB): 48 MB keeps a hostile file under 600 MB and holds about
# 450,000 rows with 100-character captions. TAGLINE_MAX_CSV_MB raises it on a machine with room.
CSV_LIMIT = 48 * MiB
CSV_LIMIT_ENV = "TAGLINE_MAX_CSV_MB"
LABEL_MAP_LIMIT = 4 * MiB


def read_csv_file(path: Path) -> bytes:
    """A CSV's bytes: a regular file of at most CSV_LIMIT (/dev/zero used to be read until memory
    ran out, and a FIFO hung the import)."""
    import os

    try:
        limit = int(float(os.environ[CSV_LIMIT_ENV]) * MiB) if os.environ.get(CSV_LIMIT_ENV) else CSV_LIMIT
    except ValueError:
        raise CsvImportError(str(path), f"{CSV_LIMIT_ENV} must be a number of MB, not "
                                        f"{os.environ[CSV_LIMIT_ENV]!r}") from None

    def error(reason: str) -> CsvImportError:
        return CsvImportError(str(path), f"{reason}; split it into smaller files and import each, or raise the "
                                         f"limit with {CSV_LIMIT_ENV}=MB" if "at most" in reason or "larger" in reason
                              else reason)

    return read_bounded(path, limit, error, "captions CSV")


def decode_csv_bytes(path: Path, data: bytes) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with its BOM; anything else is refused with the
    line and byte that are not UTF-8 (guessing Latin-1 would garble every accent silently)."""
    wide = wide_encoding(data)  # UTF-16 or UTF-32, with a BOM or without one
    if wide is not None:
        try:
            return data.decode(wide).lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            raise CsvImportError(str(path), f"the file looks like {wide.upper()} but is damaged ({exc.reason} at "
                                            f"byte {exc.start:,}): save it again as UTF-8") from exc
    if b"\x00" in data[:4096]:
        raise CsvImportError(str(path), "the file holds NUL bytes and is neither UTF-8, UTF-16 nor UTF-32 text; "
                                        "is it a spreadsheet (.xlsx) rather than a CSV? Save it as CSV UTF-8")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        bad = data[exc.start : exc.start + 1].hex()
        hint = "Latin-1 or Windows-1252" if not data.startswith(b"\xef\xbb\xbf") else "damaged UTF-8"
        raise CsvImportError(str(path), f"the file is not UTF-8 (byte 0x{bad}; it looks like {hint}): save it as "
                                        f"UTF-8 or UTF-16 and import it again", line=line) from exc


def sniff_delimiter(header_line: str) -> str:
    """The delimiter that makes the header name an image column (`,` when none does)."""
    for delimiter in DELIMITERS:
        try:
            names = [c.strip().lower() for c in next(csv.reader([header_line], delimiter=delimiter), [])]
        except csv.Error:
            continue
        if any(n in _ID_COLUMNS for n in names) and any(n in _LABEL_COLUMNS + _CAPTION_COLUMNS for n in names):
            return delimiter
    return ","


def read_caption_csv(path: Path | str) -> CsvReadResult:
    """Parse a caption CSV with Python's csv module (captions across lines, stray quotes),
    its delimiter sniffed from the header, in UTF-8 or UTF-16."""
    path = Path(path)
    text = decode_csv_bytes(path, read_csv_file(path))
    result = CsvReadResult()
    seen: dict[str, int] = {}
    handle = io.StringIO(text, newline="")
    reader = csv.reader(handle, delimiter=sniff_delimiter(re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvImportError(str(path), "the file is empty", line=1) from None
    except csv.Error as exc:
        raise CsvImportError(str(path), f"unreadable header ({exc})", line=1) from exc
    columns = _locate_columns(path, header)
    extra = _export_columns(header)
    line = reader.line_num + 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.rejected.append((line, f"unparsable row ({exc})"))
            line = reader.line_num + 1
            continue
        row_line, line = line, reader.line_num + 1
        if not record or all(not cell.strip() for cell in record):
            continue
        parsed = _parse_row(record, columns, row_line, extra)
        if isinstance(parsed, str):
            result.rejected.append((row_line, parsed))
        elif parsed.image_id in seen:
            result.rejected.append(
                (row_line, f"duplicate ImageID {parsed.image_id!r} (first on line {seen[parsed.image_id]})")
            )
        else:
            seen[parsed.image_id] = row_line
            result.rows.append(parsed)
    return result


def _locate_columns(path: Path, header: list[str]) -> tuple[int, int | None, int | None]:
    names = [cell.strip().lower() for cell in header]

    def find(options: tuple[str, ...]) -> int | None:
        return next((names.index(o) for o in options if o in names), None)

    id_col = find(_ID_COLUMNS)
    if id_col is None:
        raise CsvImportError(
            str(path), f"no image column in header {header!r}; expected ImageID,Labels,Caption", line=1
        )
    label_col, caption_col = find(_LABEL_COLUMNS), find(_CAPTION_COLUMNS)
    if label_col is None and caption_col is None:
        raise CsvImportError(str(path), f"header {header!r} has neither Labels nor Caption", line=1)
    return id_col, label_col, caption_col


def _export_columns(header: list[str]) -> tuple[int, int, int | None] | None:
    """Where a Tagline export keeps Confirmed, Rejected (and CaptionSource); None for other files."""
    names = [cell.strip().lower() for cell in header]
    found = [names.index(c.lower()) if c.lower() in names else None
             for c in (CONFIRMED_COLUMN, REJECTED_COLUMN, SOURCE_COLUMN)]
    confirmed, rejected, source = found
    if confirmed is None or rejected is None:
        return None
    return confirmed, rejected, source


def _parse_row(record: list[str], columns: tuple[int, int | None, int | None], line: int,
               extra: tuple[int, int, int | None] | None = None) -> CaptionRow | str:
    id_col, label_col, caption_col = columns
    width = max(c for c in columns if c is not None) + 1
    if len(record) < width:
        # A caption column may be legitimately empty at the end of the row.
        if caption_col is not None and len(record) == caption_col and caption_col == width - 1:
            record = [*record, ""]
        else:
            return f"expected {width} columns, found {len(record)}"
    relpath = safe_relpath(record[id_col])
    if relpath is None:
        return f"ImageID {record[id_col]!r} is empty or points outside the folder"
    labels = None
    if label_col is not None:
        labels = (record[label_col].strip(),) if record[label_col].strip() else ()
    caption = record[caption_col].strip() if caption_col is not None else None
    decided, source = None, None
    if extra is not None:
        confirmed, rejected, source_col = (record[i].strip() if i is not None and i < len(record) else ""
                                           for i in extra)
        decided = (confirmed, rejected)
        source = source_col or None
    return CaptionRow(line, relpath, labels, caption or None, decided, source)


def import_rows(
    store: ProjectStore,
    read: CsvReadResult,
    label_map: dict[str, str] | None = None,
    overwrite_captions: bool = True,
    import_labels: bool = True,
    complete: str = "file",
) -> ImportReport:
    """Write captions and the person's label decisions in one transaction.

    A row decides the labels it names (present); for labels it does not name it decides only what
    `complete` says: "file", the labels the file names anywhere (a seed CSV lists every label of its
    set); "all", every label of the project; "none", nothing. A Tagline export is read back exactly:
    its Confirmed and Rejected columns are the decisions, its CaptionSource each caption's source.
    """
    if complete not in COMPLETE_CHOICES:
        raise ValueError(f"complete must be one of {COMPLETE_CHOICES}")
    # an explicit label map names the file's label set (and its order)
    vocabulary: list[str] = list(dict.fromkeys(label_map.values())) if label_map and import_labels else []
    if import_labels:
        label_map = resolve_label_map(store, read, label_map)
    report = ImportReport(rejected=list(read.rejected))
    ids = store.image_ids_by_relpath()
    existing = store.captions()
    captions: dict[str, list[tuple[int, str]]] = {}
    decisions: dict[tuple[int, str], bool] = {}
    labelled: list[tuple[int, str]] = []  # (image id, photo) of plain rows with a Labels cell
    for row in read.rows:
        image_id = ids.get(row.image_id)
        if image_id is None:
            report.rejected.append((row.line, f"no image {row.image_id!r} in the folder"))
            continue
        parsed = _row_decisions(row, label_map) if import_labels else None
        if isinstance(parsed, str):  # a rejected row imports nothing, its caption neither
            report.rejected.append((row.line, parsed))
            continue
        if row.caption is not None:
            if image_id in existing and existing[image_id][1] == "typed" and not overwrite_captions:
                report.kept_existing += 1
            else:
                source = row.source if row.source in CAPTION_SOURCES else "imported"
                captions.setdefault(source, []).append((image_id, row.caption))
        if parsed is not None:
            vocabulary.extend(n for n in parsed if n not in vocabulary)
            decisions.update(((image_id, name), present) for name, present in parsed.items())
            report.labelled += 1
            if row.decided is None:
                labelled.append((image_id, row.image_id))
    report.restored = any(row.decided is not None for row in read.rows)
    store.ensure_labels(vocabulary, _external_ids(vocabulary, label_map))
    if import_labels and labelled and complete != "none":
        names = [lab.name for lab in store.labels()] if complete == "all" else vocabulary
        report.complete_for = list(names)
        for image_id, _ in labelled:
            for name in names:
                decisions.setdefault((image_id, name), False)
    photos = {image_id: photo for photo, image_id in ids.items()}
    before = store.confirmations(sorted({i for i, _ in decisions}))
    writes: list[tuple[int, str, bool | None]] = []
    for (image_id, name), present in decisions.items():
        earlier = before.get(image_id, {}).get(name)
        if earlier is None:
            report.added += 1
        elif earlier == present:
            report.unchanged += 1
            continue
        else:
            report.changed.append((photos.get(image_id, str(image_id)), name, present))
        writes.append((image_id, name, present))
    with store.transaction():
        for source, items in captions.items():
            store.set_captions(items, source)
        store.confirm_many(writes)
    report.captions = sum(len(items) for items in captions.values())
    return report


def _row_decisions(row: CaptionRow, label_map: dict[str, str] | None) -> dict[str, bool] | str | None:
    """label -> present for one row; None when the row decides nothing; a string says why it is rejected."""
    if row.decided is not None:
        confirmed, rejected = (_map_labels((cell,), label_map) for cell in row.decided)
        if isinstance(confirmed, str):
            return confirmed
        if isinstance(rejected, str):
            return rejected
        both = set(confirmed) & set(rejected)
        if both:
            return f"label(s) {', '.join(sorted(both))} both confirmed and rejected"
        return {**{n: False for n in rejected}, **{n: True for n in confirmed}}
    if row.labels is None:
        return None
    names = _map_labels(row.labels, label_map)
    return names if isinstance(names, str) else {n: True for n in names}


def split_labels(cell: str, vocabulary: Iterable[str] = ()) -> list[str]:
    """Split a Labels cell: names separated by `;`, `,` or `|`; space-separated whole numbers
    are ids (the seed format, `1 17`); anything else is one name, spaces and all
    (`street furniture`). `vocabulary` is kept for callers that pass it; the rule needs none."""
    cell = cell.strip()
    if not cell:
        return []
    for separator in (";", ",", "|"):
        if separator in cell:
            return [t.strip() for t in cell.split(separator) if t.strip()]
    tokens = cell.split()
    if len(tokens) > 1 and all(t.isdigit() for t in tokens):
        return tokens
    return [" ".join(tokens)]


def are_ids(names: Iterable[str]) -> bool:
    return all(n.isdigit() for n in names)


def project_id_map(store: ProjectStore) -> dict[str, str]:
    """id -> name of the project's labels that carry an id (from an earlier import or model)."""
    return {lab.external_id: lab.name for lab in store.labels() if lab.external_id}


def _map_labels(tokens: tuple[str, ...], label_map: dict[str, str] | None) -> list[str] | str:
    names = split_labels(tokens[0]) if tokens else []
    if label_map is None:
        return list(dict.fromkeys(names))
    unknown = [t for t in names if t not in label_map and t not in label_map.values()]
    if unknown:
        return f"unknown label(s) {', '.join(unknown)} (not in the label map)"
    return list(dict.fromkeys(label_map.get(t, t) for t in names))


def resolve_label_map(store: ProjectStore, read: CsvReadResult, label_map: dict[str, str] | None,
                      path: str = "the CSV") -> dict[str, str] | None:
    """The label map an import uses: the one given; else, when the Labels cells hold only ids,
    the project's own ids (`1` -> `person` after a seed import) or, lacking those, an error: a
    file of ids imported as names made labels called "1", "6" and "8"."""
    if label_map is not None:
        return label_map
    tokens = {t for row in read.rows if row.labels for t in split_labels(row.labels[0])}
    if not tokens or not are_ids(tokens):
        return None
    known = project_id_map(store) | {lab.name: lab.name for lab in store.labels() if lab.name.isdigit()}
    missing = sorted(tokens - set(known), key=int)
    if missing:
        raise CsvImportError(path, f"the Labels column holds ids ({', '.join(missing[:8])}) that no label of the project "
                                   f"carries: give --label-map FILE (a JSON object of id -> name), or write names")
    return known


def _external_ids(names: list[str], label_map: dict[str, str] | None) -> list[str | None]:
    reverse = {v: k for k, v in (label_map or {}).items() if k != v}
    return [reverse.get(n) for n in names]


SIDECAR_MAX_BYTES = 64 * 1024  # a caption, not a file someone linked there


def sidecar_paths(store: ProjectStore) -> dict[int, tuple[Path, bool]]:
    """image id -> (its caption sidecar, whether the stem is shared): `photo.txt`, or
    `photo.jpg.txt` when another photo in the same folder shares the stem (`a.jpg` and `a.png`
    would otherwise share `a.txt`)."""
    records = store.images()
    stems = Counter(store.image_path(r).with_suffix("") for r in records)
    paths = {}
    for record in records:
        photo = store.image_path(record)
        shared = stems[photo.with_suffix("")] > 1
        paths[record.id] = (photo.with_name(photo.name + ".txt") if shared else photo.with_suffix(".txt"), shared)
    return paths


def read_sidecar_captions(store: ProjectStore) -> dict[int, str]:
    """Captions from `photo.txt` beside `photo.jpg` (the kohya / TagGUI convention; see
    `sidecar_paths` for shared stems). Only a regular file, not a link, inside the folder and
    under `SIDECAR_MAX_BYTES` is read: a link could leak a file from elsewhere into exports,
    point at /dev/zero, or a FIFO hang the run."""
    import os
    import stat

    found: dict[int, str] = {}
    root = store.folder.resolve()
    for image_id, (sidecar, _) in sidecar_paths(store).items():
        try:
            info = os.lstat(sidecar)
            if not stat.S_ISREG(info.st_mode) or info.st_size > SIDECAR_MAX_BYTES:
                continue
            if not sidecar.resolve().is_relative_to(root):  # a linked folder on the way
                continue
            fd = os.open(sidecar, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
            with os.fdopen(fd, "rb") as handle:
                text = handle.read(SIDECAR_MAX_BYTES + 1).decode("utf-8").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text:
            found[image_id] = text
    return found


def read_reference_captions(path: Path | str) -> dict[str, list[str]]:
    """Every caption of every photo in a CSV (several rows per ImageID allowed: Flickr8k has
    five references a photo), for comparing generated captions with them."""
    path = Path(path)
    text = decode_csv_bytes(path, read_csv_file(path))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvImportError(str(path), "the file is empty", line=1) from None
    id_col, _, caption_col = _locate_columns(path, header)
    if caption_col is None:
        raise CsvImportError(str(path), f"header {header!r} has no Caption column", line=1)
    found: dict[str, list[str]] = {}
    for record in reader:
        if len(record) > max(id_col, caption_col) and record[caption_col].strip():
            relpath = safe_relpath(record[id_col])
            if relpath is not None:
                found.setdefault(relpath, []).append(record[caption_col].strip())
    return found
