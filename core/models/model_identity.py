"""A model's identity: a digest of its files, not the version string in its model.json.

A folder can keep its version while its weights change (converted to fp16, retrained in place,
damaged): keyed by the version, the store kept the old model's predictions as the new one's and
classified nothing ("0 classified, 10 already done"). The digest covers model.json (labels,
thresholds) and the weights file it names, so any change is a new model.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

_MEMO: dict[tuple[str, int, int, int, int], str] = {}  # (folder, sizes, times) -> key
_LOCK = threading.Lock()


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
    memo = (str(folder), meta_stat.st_size, meta_stat.st_mtime_ns,
            weights_stat.st_size if weights_stat else -1, weights_stat.st_mtime_ns if weights_stat else -1)
    with _LOCK:
        if memo in _MEMO:
            return _MEMO[memo]
    hasher = hashlib.blake2b(meta, digest_size=16)
    if weights is not None and weights_stat is not None:
        with open(weights, "rb") as handle:
            hasher.update(hashlib.file_digest(handle, "blake2b").digest())
    key = hasher.hexdigest()
    with _LOCK:
        _MEMO[memo] = key
    return key
