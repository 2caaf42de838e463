"""SIGKILL during editing: every acknowledged edit survives and the database stays sound."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from core.progress import run_to_end
from core.store import ProjectStore
from core.sync import sync_folder

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
    from core.classifier import Classifier, classify_project

    command = [sys.executable, "-m", "gui.entry", "-q", "classify", str(comp_slice), "--batch-size", "8"]
    version = Classifier().version
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
