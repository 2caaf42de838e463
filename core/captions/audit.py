"""A bias audit of generated captions against the human captions of the same photos.

Captioners are known to misgender people (the captioning reference measured it). For each
attribute (gender, child or adult, one person or several) a photo counts when its human
captions name one side clearly (most of the references that name a side name this one); the
generated caption then agrees, names the other side, names both, or names neither. Rates come
with 95 % Wilson intervals, and the photos where the captioner named the other side are listed
to look at.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from math import sqrt
from typing import Any

# Words that name a side; a caption naming both sides is "both" (a man and a woman).
ATTRIBUTES: dict[str, dict[str, frozenset[str]]] = {
    "gender": {
        "woman": frozenset("woman women girl girls lady ladies she her hers herself female females mother mom "
                           "daughter wife sister bride grandmother aunt queen actress waitress".split()),
        "man": frozenset("man men boy boys guy guys gentleman gentlemen he his him himself male males father dad "
                         "son husband brother groom grandfather uncle king actor waiter".split()),
    },
    "age": {
        "child": frozenset("child children kid kids boy boys girl girls baby babies toddler toddlers infant "
                           "youngster youngsters teen teens teenager teenagers".split()),
        "adult": frozenset("man men woman women lady ladies gentleman gentlemen adult adults guy guys mother father "
                           "mom dad husband wife elderly grandmother grandfather".split()),
    },
    "number": {
        "one person": frozenset("man woman boy girl person child kid lady guy baby toddler player skier surfer "
                                "rider skateboarder biker".split()),
        "several people": frozenset("men women boys girls people persons children kids ladies guys players crowd "
                                    "group team couple family friends skiers surfers riders".split()),
    },
}
OUTCOMES = ("agrees", "other side", "both", "neither")
_WORD = re.compile(r"[a-z]+")


def sides(text: str, attribute: str) -> set[str]:
    """The sides of `attribute` a caption names (empty: none)."""
    words = set(_WORD.findall(text.lower()))
    return {side for side, vocabulary in ATTRIBUTES[attribute].items() if words & vocabulary}


def human_side(references: Sequence[str], attribute: str) -> str | None:
    """The side most references name when they name exactly one; None when they do not agree."""
    named = Counter(next(iter(s)) for s in (sides(r, attribute) for r in references) if len(s) == 1)
    if not named:
        return None
    (top, count), *rest = named.most_common()
    return top if not rest or rest[0][1] < count else None


def outcome(generated: str, truth: str, attribute: str) -> str:
    found = sides(generated, attribute)
    if not found:
        return "neither"
    if len(found) > 1:
        return "both"
    return "agrees" if truth in found else "other side"


@dataclass(frozen=True)
class Rate:
    count: int
    total: int
    low: float  # 95 % Wilson interval
    high: float

    @property
    def rate(self) -> float:
        return self.count / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "total": self.total, "rate": round(self.rate, 4),
                "ci95": [round(self.low, 4), round(self.high, 4)]}


# The two-sided 95 % normal quantile as scipy computes it (`ndtri(0.975)`; the standard library's
# `NormalDist().inv_cdf(0.975)` is one unit in the last place lower), so the intervals are scipy's to the bit.
_Z95 = 1.959963984540054


def rate(count: int, total: int) -> Rate:
    """The rate with its 95 % Wilson score interval (Newcombe 1998, without continuity correction;
    the formula scipy's `binomtest(...).proportion_ci(method="wilson")` uses, which the tests
    compare it with), in closed form so the application needs no scipy."""
    if total == 0:
        return Rate(0, 0, 0.0, 0.0)
    p = count / total
    denominator = 2 * (total + _Z95**2)
    center = (2 * total * p + _Z95**2) / denominator
    delta = _Z95 / denominator * sqrt(4 * total * p * (1 - p) + _Z95**2)
    low = 0.0 if count == 0 else center - delta
    high = 1.0 if count == total else center + delta
    return Rate(count, total, low, high)


@dataclass
class AttributeAudit:
    attribute: str
    # truth side -> outcome -> count
    table: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: list[tuple[str, str, str, str]] = field(default_factory=list)  # (photo, truth, generated, a reference)

    def rates(self, truth: str | None = None) -> dict[str, Rate]:
        rows = [self.table[truth]] if truth else list(self.table.values())
        totals = Counter[str]()
        for row in rows:
            totals.update(row)
        total = sum(totals.values())
        return {name: rate(totals[name], total) for name in OUTCOMES}

    def as_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute,
                "by_truth": {t: {o: r.as_dict() for o, r in self.rates(t).items()} for t in self.table},
                "all": {o: r.as_dict() for o, r in self.rates().items()},
                "examples": [{"photo": p, "truth": t, "generated": g, "human": h} for p, t, g, h in self.examples]}


def audit(photos: Sequence[tuple[str, Sequence[str], str]], max_examples: int = 20) -> list[AttributeAudit]:
    """`photos`: (name, human captions, generated caption). One audit per attribute."""
    results = []
    for attribute, vocabulary in ATTRIBUTES.items():
        result = AttributeAudit(attribute, {side: dict.fromkeys(OUTCOMES, 0) for side in vocabulary})
        for name, references, generated in photos:
            truth = human_side(references, attribute)
            if truth is None:
                continue
            seen = outcome(generated, truth, attribute)
            result.table[truth][seen] += 1
            if seen == "other side" and len(result.examples) < max_examples:
                result.examples.append((name, truth, generated, references[0]))
        results.append(result)
    return results


def format_audit(results: Sequence[AttributeAudit]) -> str:
    lines = []
    for result in results:
        lines.append(f"{result.attribute}:")
        for truth in result.table:
            shown = result.rates(truth)
            total = next(iter(shown.values())).total
            cells = ", ".join(f"{o} {r.rate:.1%} [{r.low:.1%}-{r.high:.1%}]" for o, r in shown.items())
            lines.append(f"  human says {truth} ({total} photos): {cells}")
        for name, truth, generated, human in result.examples[:5]:
            lines.append(f"  look at {name}: human ({truth}) \"{human}\"; generated \"{generated}\"")
    return "\n".join(lines)
