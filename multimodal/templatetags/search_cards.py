"""Filters for the result cards: times, kinds, fusion modes, explanations and printed words, as people read them."""
from django import template

from ..models import Item
from ..query.parts import PARTS
from ..readers.audio import clock as audio_clock

register = template.Library()

FUSION_LABELS = {
    "vector": "one search with the weighted sum of the parts' vectors",
    "rrf": "reciprocal rank fusion of one search per part",
    "weighted": "the weighted sum of each part's normalised scores",
}


@register.filter
def clock(seconds) -> str:
    """12.5 -> '0:12', 3725 -> '1:02:05' (see `multimodal.readers.audio.clock`)."""
    return "" if seconds is None or seconds == "" else audio_clock(float(seconds))


GALLERY_KINDS = frozenset({Item.Kind.IMAGE})


@register.filter
def result_runs(results: list[dict]) -> list[dict]:
    """Results in rank order, cut into runs: {"gallery": True, "results": [...]} for pictures that follow one
    another (shown as a justified grid), {"gallery": False, ...} for the hits between them (shown as cards)."""
    runs: list[dict] = []
    for result in results:
        gallery = result.get("kind") in GALLERY_KINDS and bool(result.get("thumbnail_url"))
        if not runs or runs[-1]["gallery"] != gallery:
            runs.append({"gallery": gallery, "results": []})
        runs[-1]["results"].append(result)
    return runs


@register.filter
def kind_label(kind: str) -> str:
    return Item.Kind(kind).label if kind in Item.Kind.values else kind


@register.filter
def part_chip(summary: dict) -> str:
    """A part of the query as the results page shows it (its type's ``chip`` in `query.parts.PARTS`)."""
    return PARTS[summary["type"]].chip(summary)


@register.filter
def fusion_label(mode: str) -> str:
    return FUSION_LABELS.get(mode, mode)


RELEVANCE_LABELS = {"strong": "Strong match", "fair": "Fair match", "weak": "Weak match"}


@register.filter
def relevance_label(relevance: dict | None) -> str:
    """A result's relevance as its pill says it: 'Strong match', 'Fair match', 'Weak match'."""
    return RELEVANCE_LABELS[(relevance or {}).get("label", "weak")]


@register.filter
def good_matches(results: list[dict]) -> list[dict]:
    """The results that match well (fair or strong), in rank order."""
    return [result for result in results if (result.get("relevance") or {}).get("label", "weak") != "weak"]


@register.filter
def weak_matches(results: list[dict]) -> list[dict]:
    """The results shown under 'Weak matches', in rank order."""
    return [result for result in results if (result.get("relevance") or {}).get("label", "weak") == "weak"]


@register.filter
def signed(value) -> str:
    """A contribution to a score: '+0.412', '−0.050' (a real minus sign)."""
    if value is None:
        return ""
    number = float(value)
    return f"{'−' if number < 0 else '+'}{abs(number):.3f}"


@register.filter
def weight(value) -> str:
    """A part's weight, short: 1.0 -> '1', -0.3 -> '−0.3'."""
    if value is None or value == "":
        return ""
    number = float(value)
    text = f"{abs(number):.2f}".rstrip("0").rstrip(".")
    return f"−{text}" if number < 0 else text


@register.filter
def printed_words(boxes) -> str:
    """OCR boxes [[word, l, t, w, h], ...] said in words: "'OPEN' and 'SALE' are printed in the picture"."""
    words = list(dict.fromkeys(f"'{box[0]}'" for box in boxes or ()))
    if not words:
        return ""
    said = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"
    return f"{said} {'is' if len(words) == 1 else 'are'} printed in the picture"
