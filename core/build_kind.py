"""Which build of Tagline is running: the CPU or the GPU double-click build, or a source run.

`make dist` bakes a flag into each bundle (build.spec writes `tagline-build.json` beside the
packages); a run from the repository or a pip install has none and says "source". The CPU build
carries no CUDA libraries, no torchvision and so no timm: `require_gpu_build` turns a verb it
cannot serve into words that name the build that can, before anything imports what is missing.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path

from core import __version__
from core.errors import ModelError

FLAG_FILE = "tagline-build.json"
SOURCE, CPU, GPU = "source", "cpu", "gpu"


def flag_path() -> Path:
    """Beside the packages, as `models/` is: the bundle's `_internal/` when frozen, else the
    repository (where no such file is ever written)."""
    import core

    return Path(str(resources.files(core))).parent / FLAG_FILE


@functools.cache
def build_kind() -> str:
    """"cpu", "gpu" or "source" (no flag, or one this version does not know)."""
    try:
        flag = json.loads(flag_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return SOURCE
    kind = flag.get("build") if isinstance(flag, dict) else None
    return kind if kind in (CPU, GPU) else SOURCE


def describe_build() -> str:
    """One line for `tagline info` and the app's status bar."""
    kind = build_kind()
    if kind == CPU:
        return f"CPU build {__version__} (no CUDA libraries; --finetune and timm: encoders are in the GPU build)"
    if kind == GPU:
        return f"GPU build {__version__} (CUDA when an NVIDIA GPU is found, else the CPU)"
    return f"source {__version__} (not a packaged build)"


def require_gpu_build(what: str) -> None:
    """Stop with words, in the CPU build, before a feature that needs what it does not carry."""
    if build_kind() == CPU:
        raise ModelError(f"{what} is not in the CPU build of Tagline (it carries no torchvision or timm); "
                         f"use the GPU build, Tagline-{__version__}-gpu, which also runs on a machine without a GPU")
