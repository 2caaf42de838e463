"""A new label's first guesses, from its name, before any photo is confirmed.

A label the active model does not know has no prediction at all, so neither the grid nor "what
to label next" can help the person find its first photos. The image-text alignment can: the
label's prompts ("a photo of {name}", and any the person adds) rank the photos by how well they
match. These are guesses, not decisions: they are never written as predictions (the grid's one
rule, `core.store.decisions`, shows the active model's calls and the person's only); they order
the photos shown for the label and the first suggestions, until the person has confirmed
enough photos for a model to learn it (`FIRST_ROUNDS_POSITIVES`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from core.errors import ModelError
from core.learn.label_prior import LabelPrior
from core.models.alignment import DEFAULT_PROMPT, load_alignment
from core.models.encoders import TextEncoder
from core.store.database import Label, ProjectStore

# confirmed photos with the label before the model's uncertainty takes over from the guesses: the
# ladder names a label with fewer than three photos too rare to learn, and five gives one a fold
FIRST_ROUNDS_POSITIVES = 5
PROMPTS_KEY = "label_prompts"  # project meta: {label name: [prompt, ...]} the person added
# a label's name in five phrasings, their mean in the aligned space: chosen over the alignment's
# one prompt on comp5329's validation part (bench/bench_zero_shot.py: 0.493 against 0.485 mAP on
# the six scenes, 0.307 against 0.291 on six of ours)
TEMPLATES = (DEFAULT_PROMPT, "a picture of {}", "{}", "a photo showing {}", "a photo of the {}, outdoors")


def label_prompts(name: str, extra: Iterable[str] = ()) -> list[str]:
    """The queries for a label: its name in the chosen phrasings ("traffic_light" read as
    "traffic light"), then the person's own."""
    readable = name.replace("_", " ").replace("-", " ")
    prompts = [template.format(readable) for template in TEMPLATES]
    prompts += [p.strip() for p in extra if p.strip() and p.strip() not in prompts]
    return prompts


def saved_prompts(store: ProjectStore) -> dict[str, list[str]]:
    try:
        saved = json.loads(store.get_meta(PROMPTS_KEY) or "{}")
    except ValueError:
        return {}
    return {str(k): [str(p) for p in v] for k, v in saved.items() if isinstance(v, list)} if isinstance(saved, dict) else {}


def add_prompt(store: ProjectStore, label: str, prompt: str) -> list[str]:
    """Keep another way of saying what the label shows ("a snowy mountain" for "snow")."""
    return set_prompts(store, label, [*saved_prompts(store).get(label, []), prompt])


def set_prompts(store: ProjectStore, label: str, prompts: Iterable[str]) -> list[str]:
    """The person's own ways of saying what the label shows, all at once (none: the name alone)."""
    saved = saved_prompts(store)
    saved[label] = own_words(prompts)
    _save_prompts(store, saved)
    return label_prompts(label, saved[label])


def own_words(prompts: Iterable[str]) -> list[str]:
    """A person's words as kept: trimmed, blank lines and repeats left out, in their order."""
    return list(dict.fromkeys(p.strip() for p in prompts if p.strip()))


def rename_label(store: ProjectStore, old: str, new: str) -> None:
    """Rename a label; it keeps the prompts the person gave it."""
    store.rename_label(old, new)
    saved = saved_prompts(store)
    if old in saved:
        saved[new] = saved.pop(old)
        _save_prompts(store, saved)


def _save_prompts(store: ProjectStore, saved: dict[str, list[str]]) -> None:
    """Labels left with no words of their own are dropped (their name alone is read)."""
    store.set_meta(PROMPTS_KEY, json.dumps({label: prompts for label, prompts in saved.items() if prompts}))


def unknown_labels(labels: Sequence[Label], model_labels: Iterable[str]) -> list[Label]:
    """The project's labels the model has never learnt (by the name models know them by)."""
    known = set(model_labels)
    return [label for label in labels if (label.origin or label.name) not in known]


def first_round_picks(guesses: Mapping[str, tuple[np.ndarray, np.ndarray]],
                      confirmed: Mapping[int, Mapping[str, bool]], n: int,
                      candidates: set[int] | None = None) -> list[tuple[int, str]]:
    """Up to `n` undecided photos, best guesses first, for the labels with fewer than
    `FIRST_ROUNDS_POSITIVES` confirmed photos; the labels take turns, so each gets its first
    photos. `guesses`: label -> (image ids, scores); `confirmed`: the person's decisions.
    Returns (image id, the label it is a guess for)."""
    queues = []
    for name, (image_ids, scores) in guesses.items():
        positives = sum(1 for decided in confirmed.values() if decided.get(name))
        if positives < FIRST_ROUNDS_POSITIVES:
            order = np.asarray(image_ids)[np.argsort(-np.asarray(scores), kind="stable")]
            queues.append((name, iter([int(i) for i in order if int(i) not in confirmed
                                       and (candidates is None or int(i) in candidates)])))
    picked: list[tuple[int, str]] = []
    seen: set[int] = set()
    while queues and len(picked) < n:
        for entry in list(queues):
            name, queue = entry
            for image_id in queue:
                if image_id not in seen:
                    seen.add(image_id)
                    picked.append((image_id, name))
                    break
            else:
                queues.remove(entry)
            if len(picked) >= n:
                break
    return picked


def build_label_prior(names: Sequence[str], text_encoder: TextEncoder, extra: Mapping[str, Sequence[str]] | None = None,
                      image_key: str | None = None, text_key: str | None = None) -> LabelPrior | None:
    """The shipped alignment's prior for these labels (their names in the chosen phrasings and
    the prompts the person added), for the trainer (`core.learn.label_prior`); None where no
    alignment is installed or it was trained on other encoders than these features'."""
    try:
        alignment = load_alignment()
        if image_key is not None and text_key is not None:
            alignment = alignment.require_encoders(image_key, text_key)
    except ModelError:
        return None
    rows = [alignment.mean_text(np.asarray(text_encoder.encode(label_prompts(name, (extra or {}).get(name, ()))),
                                           np.float32)) for name in names]
    return LabelPrior(alignment.key, alignment.image_weight, alignment.image_bias, np.stack(rows))
