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
