"""Exports: CSV (`ImageID,Labels,Caption`), JSON and caption sidecars, written atomically.

A person's confirmed decision overrides the model's prediction label by label. Cells that a
spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import TaglineError, write_failure_message
from core.formats.output_paths import output_target, write_output
from core.store.database import ProjectStore
from core.store.decisions import photo_labels

_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportRow:
    image_id: int
    relpath: str
    labels: list[str]
    caption: str
    caption_source: str
    probabilities: dict[str, float]
    confirmed: dict[str, bool]
    predicted: bool = True  # the model asked for has a prediction for this photo


def labels_cell(names: list[str]) -> str:
    """Names joined by ";" so that `split_labels` reads the same names back: one name holding
    "," or "|" gets a trailing ";" (else it would be split there)."""
    cell = ";".join(names)
    if len(names) == 1 and any(sep in names[0] for sep in (",", "|")):
        cell += ";"
    return cell


def neutralise_formula(cell: str) -> str:
    """Prefix a quote so spreadsheets show the text instead of evaluating it (OWASP advice)."""
    return "'" + cell if cell.startswith(_FORMULA_PREFIXES) else cell


def csv_text(header: list[str], rows: Iterable[list[str]]) -> str:
    """CSV text every Tagline export writes: lines end in "\n", each cell is guarded against
    formulas, and a cell holding a carriage return is quoted. Python's writer quotes only the
    characters of its own line ending, so with "\n" it left "A man\r=cmd|..." bare and a reader
    split the record there, the text after it starting a new, unguarded row. Rows with a "\r"
    go through a writer ending lines in "\r\n" (which quotes it), then end in "\n" like the rest:
    the cell keeps its exact text (a file name must, to name its file)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    quoting_cr = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        cells = [neutralise_formula(c) for c in row]
        if any("\r" in c for c in cells):
            quoting_cr.writerow(cells)
            buffer.seek(buffer.tell() - 2)
            buffer.truncate()
            buffer.write("\n")
        else:
            writer.writerow(cells)
    return buffer.getvalue()


def check_output_path(store: ProjectStore, path: Path, inputs: Iterable[Path] = ()) -> None:
    """Refuse to write an export over the project's own database (or its journal) or a photo of
    the folder, or over a file the same command reads (`inputs`, such as the captions CSV); a
    folder or disk device named as the output is refused here too, before any work."""
    output_target(Path(path))
    target = Path(path).resolve()
    database = store.db_path.resolve()
    if target.parent == database.parent and target.name.startswith(database.name):
        raise TaglineError(f"{path} is the project's own database; write the export somewhere else")
    if any(target == Path(i).resolve() for i in inputs):
        raise TaglineError(f"{path} is also this command's input; write the output to another file")
    try:
        relative = target.relative_to(store.folder.resolve()).as_posix()
    except ValueError:
        return
    if relative in store.image_ids_by_relpath():
        raise TaglineError(f"{path} is one of the folder's photos; write the export somewhere else")


def collect_rows(
    store: ProjectStore, model_key: str, image_ids: Iterable[int] | None = None, predicted_only: bool = False,
    threshold: float | None = None,
) -> list[ExportRow]:
    """Final labels per image (`core.store.decisions.photo_labels`: the person's decision, else the
    prediction of the model `model_key` (the active one for an export), at `threshold` when the
    person chose one instead of the model's); with `predicted_only`, the model's alone (to score it).
    No other model's prediction is ever read."""
    captions = store.captions()
    predictions = store.predictions(model_key)
    confirmations = store.confirmations()
    order = [lab.name for lab in store.labels()]
    wanted = set(image_ids) if image_ids is not None else None
    rows = []
    for record in store.images():
        if wanted is not None and record.id not in wanted:
            continue
        predicted = predictions.get(record.id, {})
        confirmed = {} if predicted_only else confirmations.get(record.id, {})
        final = photo_labels(order, predicted, confirmed, threshold)
        text, source = captions.get(record.id, ("", ""))
        rows.append(ExportRow(record.id, record.relpath, final, text, source,
                              {n: p for n, (p, _) in predicted.items()}, confirmed, bool(predicted)))
    return rows


def atomic_write_text(path: Path, text: str) -> None:
    """Write to what `path` names (core.formats.output_paths): a file, or the file a link
    points to, gets the text beside it and renamed over, so readers never see half a file even
    after a crash; a device or a read pipe is written directly; a folder is refused."""
    write_output(Path(path), text.encode("utf-8"))


def export_csv(
    store: ProjectStore, path: Path, rows: list[ExportRow],
    label_ids: bool = False, probabilities: bool = False,
) -> int:
    labels = store.labels()
    ids = {lab.name: lab.external_id or lab.name for lab in labels}
    if label_ids and any(lab.external_id is None for lab in labels):
        missing = [lab.name for lab in labels if lab.external_id is None]
        raise TaglineError(f"labels without an id cannot be written as ids: {', '.join(missing)}")
    check_output_path(store, path)
    names = [lab.name for lab in labels]
    # The first three columns are the seed format; the next three make the file read back exactly
    # (`import` restores the decisions from Confirmed/Rejected, the caption sources from CaptionSource).
    header = ["ImageID", "Labels", "Caption", "Confirmed", "Rejected", "CaptionSource",
              *([f"p_{n}" for n in names] if probabilities else [])]

    def cell(chosen: list[str]) -> str:
        return " ".join(ids[n] for n in chosen) if label_ids else labels_cell(chosen)

    lines = []
    for row in rows:
        decided = [n for n in names if n in row.confirmed]
        cells = [row.relpath, cell(row.labels), row.caption,
                 cell([n for n in decided if row.confirmed[n]]), cell([n for n in decided if not row.confirmed[n]]),
                 row.caption_source]
        if probabilities:
            cells += [f"{row.probabilities[n]:.4f}" if n in row.probabilities else "" for n in names]
        lines.append(cells)
    atomic_write_text(path, csv_text(header, lines))
    return len(rows)


def export_json(store: ProjectStore, path: Path, rows: list[ExportRow]) -> int:
    check_output_path(store, path)
    payload = [
        {"image": r.relpath, "labels": r.labels, "caption": r.caption, "caption_source": r.caption_source,
         "probabilities": r.probabilities, "confirmed": r.confirmed}
        for r in rows
    ]
    atomic_write_text(path, json.dumps(payload, indent=1, ensure_ascii=False))
    return len(rows)


@dataclass
class SidecarReport:
    written: int = 0
    kept: int = 0  # sidecars already there, left as they were (no overwrite asked)
    full_names: list[str] = field(default_factory=list)  # photos sharing a stem: written to NAME.EXT.txt
    not_files: list[str] = field(default_factory=list)  # sidecar names taken by a link, folder or pipe: left alone

    def summary(self) -> str:
        parts = [f"wrote {self.written} caption files"]
        if self.kept:
            parts.append(f"kept {self.kept} existing ones (overwrite to replace them)")
        if self.full_names:
            parts.append(f"{len(self.full_names)} photos share a name with another photo, so their captions "
                         f"went to NAME.EXT.txt (for example {self.full_names[0]}.txt)")
        if self.not_files:
            parts.append(f"left {len(self.not_files)} that are links, folders or pipes as they were (for example "
                         f"{self.not_files[0]}): Tagline writes captions only to regular files")
        return "; ".join(parts)


def export_sidecars(store: ProjectStore, rows: list[ExportRow], overwrite: bool = False) -> SidecarReport:
    """`photo.txt` beside each photo with its caption (kohya / TagGUI convention); a photo
    sharing its stem with another gets `photo.jpg.txt`, so no caption overwrites another."""
    from core.formats.captions_io import sidecar_paths

    paths = sidecar_paths(store)
    report = SidecarReport()
    for row in rows:
        if not row.caption:
            continue
        target, shared = paths[row.image_id]
        if shared:
            report.full_names.append(row.relpath)
        if target.is_symlink() or (target.exists() and not target.is_file()):
            report.not_files.append(target.name)  # never written through: the folder may be someone else's
            continue
        if target.exists() and not overwrite:
            report.kept += 1
            continue
        try:
            write_output(target, (row.caption + "\n").encode("utf-8"))
        except TaglineError as exc:  # said as it is: the sidecars before this one were written
            cause = exc.__cause__
            saved = (f"{report.written} caption files before it were written whole, the rest were not; run the export "
                     f"again once this is fixed" if report.written else "no caption file was written")
            raise TaglineError(write_failure_message(target, cause, saved) if isinstance(cause, OSError)
                               else f"{exc} ({saved})") from exc
        report.written += 1
    return report
