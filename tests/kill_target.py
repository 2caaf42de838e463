"""A process that edits a project as fast as it can and prints each acknowledged edit.

Run by tests/test_crash_safety.py, which kills it with SIGKILL at random moments.
Usage: python -m tests.kill_target FOLDER SEED
"""

from __future__ import annotations

import random
import sys

from core.store.database import ProjectStore


def main(folder: str, seed: int) -> None:
    rng = random.Random(seed)
    store = ProjectStore(folder)
    ids = sorted(store.image_ids_by_relpath().values())
    labels = ["person", "cat", "dog", "traffic light"]
    step = 0
    while True:
        step += 1
        image_id = rng.choice(ids)
        if step % 3 == 0:
            text = f"caption {seed}-{step}"
            announce(f"C\t{image_id}\t{text}")
            store.set_caption(image_id, text, "typed")
        else:
            label, present = rng.choice(labels), rng.random() < 0.5
            announce(f"L\t{image_id}\t{label}\t{int(present)}")
            store.confirm(image_id, label, present)
        announce("ACK")  # written only after the store call returned


def announce(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
