"""Which build is running (core.build_kind), and what the CPU build says of the verbs it lacks.

The flags themselves are baked by build.spec and read back from both frozen builds by
packaging/check_frozen.sh; here the reading and the words are checked from source.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import build_kind
from core.errors import ModelError


@pytest.fixture
def flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Point the flag at a temporary file; write it with the returned function."""
    path = tmp_path / build_kind.FLAG_FILE
    monkeypatch.setattr(build_kind, "flag_path", lambda: path)
    build_kind.build_kind.cache_clear()

    def write(text: str) -> None:
        path.write_text(text, encoding="utf-8")
        build_kind.build_kind.cache_clear()

    yield write
    build_kind.build_kind.cache_clear()


def test_a_source_run_has_no_flag_and_says_source() -> None:
    build_kind.build_kind.cache_clear()
    assert not build_kind.flag_path().exists()  # nothing in the repository may make a source run look packaged
    assert build_kind.build_kind() == "source"
    assert build_kind.describe_build().startswith("source")
    build_kind.require_gpu_build("anything")  # a source run has every feature it installed


@pytest.mark.parametrize(("text", "kind"), [('{"build": "cpu"}', "cpu"), ('{"build": "gpu"}', "gpu"),
                                            ('{"build": "tpu"}', "source"), ("not json", "source"), ("[1]", "source")])
def test_the_flag_names_the_build(flag, text: str, kind: str) -> None:  # type: ignore[no-untyped-def]
    flag(text)
    assert build_kind.build_kind() == kind


def test_the_cpu_build_names_the_gpu_build_for_finetune_and_timm(flag) -> None:  # type: ignore[no-untyped-def]
    from core.models.registry import image_spec

    flag(json.dumps({"build": "cpu"}))
    assert "CPU build" in build_kind.describe_build()
    with pytest.raises(ModelError, match=r"not in the CPU build .* use the GPU build, Tagline-.*-gpu"):
        image_spec("timm:resnet18")
    with pytest.raises(ModelError, match=r"train --finetune\) is not in the CPU build"):
        from core.tagging.finetune import finetune

        next(finetune(None, Path("unused"), None))  # type: ignore[arg-type]


def test_the_gpu_build_serves_every_verb(flag) -> None:  # type: ignore[no-untyped-def]
    flag(json.dumps({"build": "gpu"}))
    assert build_kind.describe_build().startswith("GPU build")
    build_kind.require_gpu_build("anything")
