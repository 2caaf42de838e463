"""Caption words as a sparse bag (unigrams and bigrams) beside the sentence embedding.

A sentence embedding blurs rare, decisive nouns ("hydrant", "parking meter", "bench"); a
binary bag of the caption's words keeps them. The vocabulary is built from training captions
and stored in model.json, so prediction needs no extra file.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

_WORD = re.compile(r"[a-z]+")


def caption_terms(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def build_vocabulary(texts: Iterable[str], min_count: int = 3, max_size: int = 4000) -> list[str]:
    """Most frequent terms (each counted once per caption), ties broken alphabetically."""
    counts = Counter(term for text in texts for term in set(caption_terms(text)))
    ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return ranked[:max_size]


def bag_of_words(texts: Sequence[str | None], vocabulary: Sequence[str]) -> np.ndarray:
    index = {term: j for j, term in enumerate(vocabulary)}
    bag = np.zeros((len(texts), len(vocabulary)), np.float32)
    for row, text in enumerate(texts):
        for term in caption_terms(text or ""):
            j = index.get(term)
            if j is not None:
                bag[row, j] = 1.0
    return bag


def _name_pattern(name: str) -> re.Pattern[str]:
    """A label's name as words ('traffic_light', 'traffic-light', 'Traffic light'), the last one
    in the singular or a regular plural."""
    words = _WORD.findall(name.lower())
    if not words:
        return re.compile(r"(?!)")  # a name with no letters is never said
    *first, last = words
    body = r"[\s_-]+".join([*map(re.escape, first), re.escape(last) + r"(?:s|es)?"])
    return re.compile(rf"\b{body}\b")


def name_mentions(captions: Sequence[str | None], names: Sequence[str]) -> np.ndarray:
    """(captions, labels) 1.0 where the caption says the label's name outright. A caption that
    names a label is nearly always right about it (comp5329: 82-100 % per label), which a label
    confirmed on one or two photos cannot learn from its own examples; zero without a caption."""
    patterns = [_name_pattern(name) for name in names]
    found = np.zeros((len(captions), len(names)), np.float32)
    for row, caption in enumerate(captions):
        if caption:
            lowered = caption.lower()
            found[row] = [bool(p.search(lowered)) for p in patterns]
    return found
