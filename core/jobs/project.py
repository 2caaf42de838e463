"""Opening a folder's project and choosing the model it uses: shared by every verb."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.progress import CancelToken, Job
from core.store.database import ProjectStore
from core.store.sync import SyncReport, sync_folder


@dataclass
class Notes:
    """What a job tells the person besides its numbers (shown by the CLI on stderr, by the app
    in its status bar); `warnings` are worth attention, `info` is a summary."""

    info: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def open_project(folder: Path | str, store_path: Path | str | None = None) -> ProjectStore:
    return ProjectStore(folder, Path(store_path) if store_path else None)


def scan_job(store: ProjectStore, cancel: CancelToken | None = None, trust_folders: bool = False) -> Job[SyncReport]:
    """Bring the project in line with the folder (new, changed, missing, moved photos);
    `trust_folders` lists again only folders whose time moved (`core.store.sync`)."""
    return (yield from sync_folder(store, cancel, trust_folders))


def scan_notes(report: SyncReport) -> Notes:
    notes = Notes()
    notes.warnings += [f"cannot read {p.path}: {p.reason}" for p in report.problems]
    if report.odd_names:
        notes.warnings.append(f"{len(report.odd_names)} new file name(s) are not UTF-8; shown and exported with "
                              f"\\x escapes, for example {report.odd_names[0]}")
    if report.added or report.removed or report.changed:
        notes.info.append(f"{len(report.added)} new, {len(report.changed)} changed, {len(report.removed)} missing images")
    return notes


def active_model_folder(store: ProjectStore) -> Path:
    """The folder of the model whose predictions the person sees and exports: the project's own
    when it is still there, else the bundled one."""
    from core.models.model_files import default_model_dir

    active = store.active_model()
    if active is not None and (active / "model.json").is_file():
        return active
    return default_model_dir()


def active_model_key(store: ProjectStore) -> str:
    """The identity of the active model (`core.models.model_identity`): every face (grid, export,
    server, `classify --out` of the active model) shows its predictions and no other model's."""
    from core.models.model_identity import model_key

    return model_key(active_model_folder(store))


def project_model(store: ProjectStore, model: Path | str | None, notes: Notes) -> Path | None:
    """The model folder a verb uses: the one asked for; else the project's own (the last one
    `train` made for it, or the one chosen in the app); else None, the bundled one."""
    if model:
        return Path(model)
    active = store.active_model()
    if active is None:
        return None
    if (active / "model.json").is_file():
        notes.info.append(f"using the project's model {active}")
        return active
    notes.warnings.append(f"the project's model {active} is gone; using the bundled model")
    return None
