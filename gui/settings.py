"""Application settings in one typed place, stored with `QSettings` (versioned)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

SETTINGS_VERSION = 1
MAX_RECENT = 10


AUTO_RETRAIN = 20  # photos confirmed between automatic retrainings (CV training on <= 500 photos: seconds)


@dataclass
class Settings:
    version: int = SETTINGS_VERSION
    thumbnail_size: int = 160
    thumbnail_cache_mb: int = 160
    batch_size: int = 32
    train_epochs: int = 15
    prefer_gpu: bool = True
    top1_fallback: bool = True  # a photo where no label passes its threshold gets its most likely one
    train_image_encoder: str = ""  # image encoder new models are trained on; "": the bundled model's
    retrain_every: int = AUTO_RETRAIN  # retrain in the background after this many newly confirmed photos; 0: never
    recent_folders: list[str] = field(default_factory=list)
    reopen_last: bool = True  # start with the folder open when the app was last closed

    def add_recent(self, folder: Path) -> None:
        path = str(Path(folder).resolve())
        self.recent_folders = [path, *[p for p in self.recent_folders if p != path]][:MAX_RECENT]


def qsettings() -> QSettings:
    """The user's settings. The (organisation, application) constructor would ignore
    `QSettings.setDefaultFormat`, so tests that point the default format at a temporary
    folder would write into the person's real settings; this one honours it."""
    return QSettings(QSettings.defaultFormat(), QSettings.Scope.UserScope, "Tagline", "Tagline")


def load_settings(store: QSettings | None = None) -> Settings:
    """Unknown or mistyped values fall back to defaults rather than breaking startup."""
    store = store or qsettings()
    defaults = Settings()
    values: dict[str, Any] = {}
    for item in fields(Settings):
        default = getattr(defaults, item.name)
        raw: Any = store.value(f"settings/{item.name}", default)
        try:
            if isinstance(default, bool):
                values[item.name] = raw if isinstance(raw, bool) else str(raw).lower() == "true"
            elif isinstance(default, int):
                values[item.name] = int(raw)
            elif isinstance(default, list):
                values[item.name] = [str(x) for x in (raw if isinstance(raw, list) else [raw] if raw else [])]
            else:
                values[item.name] = raw
        except (TypeError, ValueError):
            values[item.name] = default
    values["version"] = SETTINGS_VERSION
    return Settings(**values)


def save_settings(settings: Settings, store: QSettings | None = None) -> None:
    store = store or qsettings()
    for name, value in asdict(settings).items():
        store.setValue(f"settings/{name}", value)
    store.sync()
