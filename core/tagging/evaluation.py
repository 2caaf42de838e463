"""`tagline evaluate`: score a predictions CSV against a truth CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.errors import TaglineError
from core.formats.captions_io import are_ids, load_label_map, read_caption_csv, split_labels
from core.learn.metrics import Report, evaluate


def _label_sets(path: Path, label_map: dict[str, str] | None, vocabulary: set[str]) -> dict[str, set[str]]:
    read = read_caption_csv(path)
    if read.rows and read.rows[0].labels is None:
        raise TaglineError(f"{path} has no Labels column")
    mapping = label_map or {}
    return {
        row.image_id: {mapping.get(t, t) for t in split_labels(row.labels[0] if row.labels else "", vocabulary)}
        for row in read.rows
    }


def evaluate_csvs(predictions: Path, truth: Path, label_map_path: Path | None = None) -> tuple[Report, list[str]]:
    """Images are matched by ImageID; an image missing from the predictions counts as empty."""
    label_map = load_label_map(label_map_path) if label_map_path else None
    vocabulary = set((label_map or {}).values())
    truth_sets = _label_sets(truth, label_map, vocabulary)
    vocabulary |= set().union(*truth_sets.values()) if truth_sets else set()
    predicted_sets = _label_sets(predictions, label_map, vocabulary)
    notes = []
    missing = [i for i in truth_sets if i not in predicted_sets]
    if missing:
        notes.append(f"{len(missing)} images of the truth file have no prediction (e.g. {missing[0]}); counted as empty")
    extra = [i for i in predicted_sets if i not in truth_sets]
    if extra:
        notes.append(f"{len(extra)} predicted images are not in the truth file and were ignored")
    truth_names = set().union(*truth_sets.values())
    predicted_names = set().union(*predicted_sets.values())
    if truth_names and predicted_names and not truth_names & predicted_names:
        ids_side = "the truth" if are_ids(truth_names) else "the predictions" if are_ids(predicted_names) else ""
        hint = f"{ids_side} uses label ids: give --label-map FILE" if ids_side else "they label different things"
        raise TaglineError(f"the two files share no label ({', '.join(sorted(predicted_names)[:4])} against "
                           f"{', '.join(sorted(truth_names)[:4])}): {hint}")
    names = sorted(set().union(*truth_sets.values(), *[predicted_sets.get(i, set()) for i in truth_sets]))
    index = {n: j for j, n in enumerate(names)}
    ids = list(truth_sets)
    y_true = np.zeros((len(ids), len(names)), bool)
    y_pred = np.zeros_like(y_true)
    for r, image_id in enumerate(ids):
        for n in truth_sets[image_id]:
            y_true[r, index[n]] = True
        for n in predicted_sets.get(image_id, set()):
            y_pred[r, index[n]] = True
    return evaluate(y_true, y_pred, names), notes


def format_report(report: Report) -> str:
    lines = [
        f"samples F1 {report.samples_f1:.4f}   micro F1 {report.micro_f1:.4f}   macro F1 {report.macro_f1:.4f}",
        f"exact match {report.exact_match:.4f}   Hamming loss {report.hamming_loss:.4f}",
        f"{'label':<16}{'precision':>10}{'recall':>10}{'F1':>10}{'support':>10}",
    ]
    for name, s in report.per_label.items():
        lines.append(f"{name:<16}{s['precision']:>10.3f}{s['recall']:>10.3f}{s['f1']:>10.3f}{s['support']:>10d}")
    return "\n".join(lines)
