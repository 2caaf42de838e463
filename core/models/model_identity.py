"""A model's identity: a digest of its files, not the version string in its model.json.

A folder can keep its version while its weights change (converted to fp16, retrained in place,
damaged): keyed by the version, the store kept the old model's predictions as the new one's and
classified nothing ("0 classified, 10 already done"). The digest covers model.json (labels,
thresholds) and the weights file it names, so any change is a new model.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

_MEMO: dict[str, str] = {}  # "folder|sizes|times" -> key
_LOCK = threading.Lock()
KNOWN_KEYS_FILE = "model-keys.json"  # in the cache folder: a window opening reads a key, not 29 MB
KNOWN_KEYS_KEPT = 64


def _weights_file(folder: Path, meta: bytes) -> Path | None:
    try:
        document = json.loads(meta)
    except (ValueError, RecursionError):
        return None
    name = document.get("weights") if isinstance(document, dict) else None
    return folder / Path(name).name if isinstance(name, str) and name else None


def model_key(folder: Path | str) -> str:
    """Digest of `folder`'s model.json and the weights it names (blake2b, 32 hex characters);
    remembered per process while neither file's size or time moves (a 29 MB head: 30 ms once)."""
    folder = Path(folder).resolve()
    meta_path = folder / "model.json"
    meta_stat = meta_path.stat()
    meta = meta_path.read_bytes()
    weights = _weights_file(folder, meta)
    weights_stat = weights.stat() if weights is not None and weights.is_file() else None
    memo = "|".join(map(str, (folder, meta_stat.st_size, meta_stat.st_mtime_ns,
                                weights_stat.st_size if weights_stat else -1,
                                weights_stat.st_mtime_ns if weights_stat else -1)))
    with _LOCK:
        if memo not in _MEMO:
            _MEMO.update(_read_known())
        if memo in _MEMO:
            return _MEMO[memo]
    hasher = hashlib.blake2b(meta, digest_size=16)
    if weights is not None and weights_stat is not None:
        with open(weights, "rb") as handle:
            hasher.update(hashlib.file_digest(handle, "blake2b").digest())
    key = hasher.hexdigest()
    with _LOCK:
        _MEMO[memo] = key
        _write_known(_MEMO)
    return key


def _known_path() -> Path:
    from core.models.registry import cache_dir

    return cache_dir() / KNOWN_KEYS_FILE


def _read_known() -> dict[str, str]:
    """Keys computed by earlier runs, by the files' sizes and times (a damaged file is ignored)."""
    try:
        known = json.loads(_known_path().read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return {k: v for k, v in known.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(known, dict) else {}


def _write_known(keys: dict[str, str]) -> None:
    """Best effort (a read-only cache only costs the hash again): written beside and renamed."""
    path = _known_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(dict(list(keys.items())[-KNOWN_KEYS_KEPT:])), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
