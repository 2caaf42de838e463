"""SIGKILL during editing: every acknowledged edit survives and the database stays sound."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.progress import run_to_end
from core.store.database import ProjectStore
from core.store.sync import sync_folder

ROOT = Path(__file__).resolve().parents[1]
KILLS = int(os.environ.get("TAGLINE_KILLS", "12"))


def test_acknowledged_edits_survive_sigkill(sample_folder: Path) -> None:
    store = ProjectStore(sample_folder)
    run_to_end(sync_folder(store))
    store.close()
    expected_labels: dict[tuple[int, str], bool] = {}
    expected_captions: dict[int, str] = {}
    rng = random.Random(7)
    acknowledged = 0
    in_flight: list[str] = []
    for kill in range(KILLS):
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.kill_target", str(sample_folder), str(kill)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        time.sleep(rng.uniform(0.8, 1.6))  # interpreter start-up plus a random stretch of edits
        process.send_signal(signal.SIGKILL)
        output, _ = process.communicate()
        lines = output.splitlines()
        for intent, ack in zip(lines[::2], lines[1::2]):
            if ack != "ACK":
                break
            record(intent, expected_labels, expected_captions)
            acknowledged += 1
        if len(lines) % 2 == 1:  # one edit was in flight: it may or may not have landed
            in_flight.append(lines[-1])
        check_state(sample_folder, expected_labels, expected_captions, in_flight[-1:] if len(lines) % 2 else [])
    assert acknowledged > KILLS  # the harness really edited between kills


def record(intent: str, labels: dict[tuple[int, str], bool], captions: dict[int, str]) -> None:
    parts = intent.split("\t")
    if parts[0] == "L":
        labels[(int(parts[1]), parts[2])] = parts[3] == "1"
    else:
        captions[int(parts[1])] = parts[2]


def check_state(folder: Path, labels: dict[tuple[int, str], bool], captions: dict[int, str], pending: list[str]) -> None:
    """Every acknowledged edit is there; the one in flight may have landed (then it counts)."""
    reopened = ProjectStore(folder)
    try:
        assert reopened.integrity_ok()
        if pending:
            parts = pending[0].split("\t")
            landed = (reopened.confirmations().get(int(parts[1]), {}).get(parts[2]) == (parts[3] == "1")
                      if parts[0] == "L" else reopened.caption(int(parts[1])) == (parts[2], "typed"))
            if landed:
                record(pending[0], labels, captions)
        confirmed = reopened.confirmations()
        for (image_id, label), present in labels.items():
            assert confirmed[image_id][label] == present
        for image_id, text in captions.items():
            assert reopened.caption(image_id) == (text, "typed")
    finally:
        reopened.close()


def test_classify_killed_midway_resumes_and_finishes(comp_slice: Path) -> None:
    """SIGKILL `tagline classify` while batches are being committed; the next run only does
    what is left, and the database stays sound."""
    from core.tagging.classifier import Classifier, classify_project

    command = [sys.executable, "-m", "gui.entry", "-q", "classify", str(comp_slice), "--batch-size", "8"]
    version = Classifier().key
    done_after_kill: list[int] = []
    for kill in range(2):
        process = subprocess.Popen(command, cwd=ROOT)
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
            if (comp_slice / ".tagline" / "project.db").exists():
                with ProjectStore(comp_slice) as probe:
                    if len(probe.prediction_inputs(version)) >= 8 * (kill * 3 + 1):
                        break  # some batches are committed: kill in the middle of the next ones
        process.send_signal(signal.SIGKILL)
        process.wait()
        store = ProjectStore(comp_slice)
        assert store.integrity_ok()
        done_after_kill.append(len(store.prediction_inputs(version)))
        store.close()
    assert done_after_kill[-1] < 160, "the kill came too late to test anything"
    store = ProjectStore(comp_slice)
    report = run_to_end(classify_project(store, Classifier()))
    assert report.already_done == done_after_kill[-1]
    assert report.classified + report.already_done == 160


JOB_KILLS = int(os.environ.get("TAGLINE_JOB_KILLS", "4"))


def kill_at_random(command: list[str], rng: random.Random, low: float, high: float, after: str | None = None) -> list[str]:
    """Start `command`, SIGKILL it a random stretch after it starts (or after it first prints a
    line beginning with `after`), and return every line it printed."""
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if after is not None and line.startswith(after):
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if after is not None:
        seen.wait(timeout=180)
    time.sleep(rng.uniform(low, high))
    process.send_signal(signal.SIGKILL)
    process.wait()
    reader.join(timeout=10)
    return lines


def stage_at_kill(lines: list[str]) -> str:
    stages = [line.split("\t")[1] for line in lines if line.startswith("STAGE")]
    return stages[-1] if stages else "start-up"


def kill_job_repeatedly(job: list[str], seed: int, finished: str, check: Callable[[], None],
                        low: float = 2.0, high: float = 8.0) -> tuple[int, dict[str, int]]:
    """SIGKILL `python -m tests.kill_jobs JOB... KILL` JOB_KILLS times, calling `check` after
    each kill. Every other kill comes up to 1.5 s after the first line starting with `finished`
    (so kills also land late in the work), the others `low`-`high` s after start. Returns how
    many passes finished between kills and in which stage the kills landed."""
    rng = random.Random(seed)
    passes, landed = 0, {}
    for kill in range(JOB_KILLS):
        command = [sys.executable, "-m", "tests.kill_jobs", *job, str(kill)]
        lines = kill_at_random(command, rng, 0.0, 1.5, finished) if kill % 2 else kill_at_random(command, rng, low, high)
        passes += sum(line.startswith(finished) for line in lines)
        landed[stage_at_kill(lines)] = landed.get(stage_at_kill(lines), 0) + 1
        check()
    return passes, landed


def test_training_killed_at_random_moments_keeps_the_project_and_a_whole_model(comp_slice: Path, tmp_path: Path) -> None:
    """Kills land while embedding, training or saving: the database stays sound, the labels a
    person confirmed are untouched, embeddings already computed stay cached (the next run
    resumes from them), and the model folder always holds a matching pair of files."""
    from core.cli import main
    from core.models.model_files import load_head_weights, read_info
    from core.tagging.classifier import Classifier
    from core.tagging.learning import _version
    from tests.conftest import COMP

    label_map = ROOT / "resources" / "label_maps" / "comp5329.json"
    main(["-q", "import", str(comp_slice), "--captions", str(COMP / "train.csv"), "--label-map", str(label_map)])
    with ProjectStore(comp_slice) as store:
        confirmed = store.confirmations()
        image_key = Classifier().encoders(prefer_gpu=False).image_key  # with the runtime in use (bf16 has its own)
    assert len(confirmed) == 160
    model_dir = tmp_path / "model"
    cached_before = [0]

    def check() -> None:
        with ProjectStore(comp_slice) as store:
            assert store.integrity_ok()
            assert store.confirmations() == confirmed
            cached = store.cached_embeddings(image_key)
            assert len(cached) >= cached_before[0], "embeddings committed before the kill were lost"
            assert all(np.isfinite(vector).all() for _, vector in cached.values())
            cached_before[0] = len(cached)
        if (model_dir / "model.json").exists():
            info = read_info(model_dir)
            assert _version(load_head_weights(model_dir, info)) == info.version  # weights match metadata
            Classifier(model_dir)

    saves, landed = kill_job_repeatedly(["train", str(comp_slice), str(model_dir)], 11, "SAVED", check, 2.0, 10.0)
    print(f"training: {JOB_KILLS} kills, {saves} models saved between them, kills landed in {landed}")
    assert cached_before[0] > 0 and saves > 0, "the kills came too early to test anything"
    assert len(list(model_dir.glob("model*.safetensors"))) == 1


def test_captioning_killed_at_random_moments_keeps_typed_captions_and_resumes(comp_slice: Path) -> None:
    from core.captions.caption_job import caption_project
    from core.captions.captioning import Captioner

    with ProjectStore(comp_slice) as store:
        run_to_end(sync_folder(store))
        ids = sorted(store.image_ids_by_relpath().values())
        typed = {image_id: f"typed by a person {image_id}" for image_id in ids[::10]}
        for image_id, text in typed.items():
            store.set_caption(image_id, text, "typed")

    def check() -> None:
        with ProjectStore(comp_slice) as store:
            assert store.integrity_ok()
            captions = store.captions()
            assert {i: captions[i] for i in typed} == {i: (t, "typed") for i, t in typed.items()}
            assert all(text.strip() for text, source in captions.values() if source == "generated")

    done, landed = kill_job_repeatedly(["caption", str(comp_slice)], 5, "DONE", check)
    print(f"captioning: {JOB_KILLS} kills, {done} complete passes between them, kills landed in {landed}")
    with ProjectStore(comp_slice) as store:
        generated_before = sum(source == "generated" for _, source in store.captions().values())
        report = run_to_end(caption_project(store, Captioner(prefer_gpu=False)))
        assert report.kept == len(typed) + generated_before  # resumed: finished batches are not redone
        assert report.captioned + report.kept == 160 and not report.failures


def test_classification_killed_at_random_moments_commits_whole_batches_and_resumes(comp_slice: Path) -> None:
    """Each batch's predictions and embeddings land in one transaction: after any kill every
    photo has a prediction for every label or none, and the next run does only what is left."""
    from core.tagging.classifier import Classifier, classify_project

    with ProjectStore(comp_slice) as store:
        run_to_end(sync_folder(store))
        store.confirm(store.images()[0].id, "person", True)
    labels = len(Classifier().info.labels)

    def check() -> None:
        with ProjectStore(comp_slice) as store:
            assert store.integrity_ok()
            per_image = store.query("SELECT COUNT(*) FROM predictions GROUP BY image_id")
            assert all(count == labels for (count,) in per_image), "a batch was half written"
            assert store.confirmations() == {store.images()[0].id: {"person": True}}

    done, landed = kill_job_repeatedly(["classify", str(comp_slice)], 3, "DONE", check)
    print(f"classify: {JOB_KILLS} kills, {done} complete passes between them, kills landed in {landed}")
    with ProjectStore(comp_slice) as store:
        finished = len(store.query("SELECT DISTINCT image_id FROM predictions"))
        report = run_to_end(classify_project(store, Classifier(), Classifier().encoders(prefer_gpu=False)))
        assert report.already_done == finished and report.classified + report.already_done == 160
