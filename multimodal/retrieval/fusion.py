"""Fusing query parts and channels into one ranking. Pure functions: numpy only, no Django.

Three modes, chosen per query:

- ``vector`` (embedding level): the parts' unit vectors are summed with their weights and
  renormalised (`vector_combine`); one search with that vector gives cosine scores. The keyword
  channel, when on, adds ``weight × bm25 / best bm25`` to an item's cosine (`keyword_add`).
- ``rrf`` (decision level): one ranked list per part (and one for the keyword channel), fused by
  weighted reciprocal rank: ``score = Σ weight / (k + rank)`` (`rrf`).
- ``weighted`` (decision level): each list's scores divided by its best score (so its best item
  gets 1 and the others keep their relative similarity; scores <= 0 count 0), an item missing
  from a list counting 0, combined as ``Σ weight × normalised / Σ |weight|`` (`weighted`).
  Dividing by the best rather than min-max scaling keeps a list's last item from counting as 0,
  which would let a weak keyword match outweigh a near-perfect vector match, or the reverse.

A negative weight turns a list against its items (they are demoted); a weight of zero removes the
list. Every fused item records what each list contributed, for the result's explanation.
Ties are broken by item id, so the order is stable from one page to the next.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MODES = ("vector", "rrf", "weighted")
DEFAULT_RRF_K = 60


@dataclass(frozen=True)
class Ranking:
    """One ranked list: a query part's nearest items, or the keyword channel's matches."""

    source: str  # e.g. "part 0" or "keyword"
    weight: float
    hits: list[tuple[int, float]]  # (item id, raw score), best first


@dataclass(frozen=True)
class Contribution:
    source: str
    raw: float | None  # the list's own score for the item (cosine, bm25), None if it was absent
    rank: int | None  # 1-based rank in that list, None if absent
    value: float  # what it added to the fused score


@dataclass
class Fused:
    item_id: int
    score: float
    contributions: list[Contribution] = field(default_factory=list)
    also: list[int] = field(default_factory=list)  # further matches folded into this one (`fused_group`), best first
    # Near duplicates folded into this one (`fused_collapse`), best first: (item id, "same" or "similar").
    duplicates: list[tuple[int, str]] = field(default_factory=list)


def vector_sum(vectors: list[np.ndarray], weights: list[float]) -> tuple[np.ndarray, float]:
    """The weighted sum of unit vectors, renormalised (float64), and its norm before renormalising:
    ‖Σ wᵢ vᵢ‖, which `vector_contributions` divides by. A norm under 1e-9 means nothing is left."""
    total = np.zeros_like(np.asarray(vectors[0], dtype=np.float64))
    for vector, weight in zip(vectors, weights):
        total += weight * np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(total))
    return (total / norm if norm >= 1e-9 else total), norm


def vector_combine(vectors: list[np.ndarray], weights: list[float]) -> np.ndarray | None:
    """The query vector of weighted parts (`vector_sum`, float32); None if nothing is left (all
    weights zero, or parts that cancel exactly)."""
    combined, norm = vector_sum(vectors, weights)
    if norm < 1e-9:
        return None
    return combined.astype(np.float32)


def vector_contributions(part_cosines: list[float], weights: list[float], combined_norm: float,
                         sources: list[str]) -> list[Contribution]:
    """Split the cosine of a combined vector into each part's share.

    cos(q, x) = Σ wᵢ·cos(vᵢ, x) / ‖Σ wᵢ vᵢ‖ for unit vᵢ, so part i contributed wᵢ·cos(vᵢ, x)/‖…‖.
    ``combined_norm`` is ‖Σ wᵢ vᵢ‖ before renormalising.
    """
    return [
        Contribution(source=source, raw=cosine, rank=None, value=weight * cosine / combined_norm)
        for source, cosine, weight in zip(sources, part_cosines, weights)
    ]


def rrf(rankings: list[Ranking], *, k: int = DEFAULT_RRF_K) -> list[Fused]:
    """Weighted reciprocal rank fusion; items absent from a list get nothing from it."""
    fused: dict[int, Fused] = {}
    for ranking in _active(rankings):
        ranks = {item_id: rank for rank, (item_id, _) in enumerate(ranking.hits, start=1)}
        raws = dict(ranking.hits)
        for item_id in ranks:
            fused.setdefault(item_id, Fused(item_id, 0.0))
        for item_id, entry in fused.items():
            rank = ranks.get(item_id)
            value = ranking.weight / (k + rank) if rank else 0.0
            entry.score += value
            entry.contributions.append(Contribution(ranking.source, raws.get(item_id), rank, value))
    return _ordered(_backfill(fused, rankings))


def weighted(rankings: list[Ranking]) -> list[Fused]:
    """Scores divided by each list's best, combined with the weights (divided by Σ|weight|)."""
    active = _active(rankings)
    scale = sum(abs(ranking.weight) for ranking in active)
    fused: dict[int, Fused] = {}
    normalised = [_by_best(ranking.hits) for ranking in active]
    for ranking in active:
        for item_id, _ in ranking.hits:
            fused.setdefault(item_id, Fused(item_id, 0.0))
    for ranking, norms in zip(active, normalised):
        ranks = {item_id: rank for rank, (item_id, _) in enumerate(ranking.hits, start=1)}
        raws = dict(ranking.hits)
        for item_id, entry in fused.items():
            value = ranking.weight * norms.get(item_id, 0.0) / scale
            entry.score += value
            entry.contributions.append(Contribution(ranking.source, raws.get(item_id), ranks.get(item_id), value))
    return _ordered(_backfill(fused, rankings))


def keyword_add(vector_hits: list[Fused], keyword: Ranking) -> list[Fused]:
    """Vector mode's hybrid: each item's cosine plus ``weight × bm25 / best bm25``.

    ``vector_hits`` must already hold every candidate (keyword-only items with their cosine looked
    up), so a keyword match can only raise an item, never drop one.
    """
    best = max((score for _, score in keyword.hits), default=0.0)
    ranks = {item_id: rank for rank, (item_id, _) in enumerate(keyword.hits, start=1)}
    raws = dict(keyword.hits)
    out = []
    for hit in vector_hits:
        raw = raws.get(hit.item_id)
        value = keyword.weight * raw / best if raw is not None and best > 0 else 0.0
        contribution = Contribution(keyword.source, raw, ranks.get(hit.item_id), value)
        out.append(Fused(hit.item_id, hit.score + value, [*hit.contributions, contribution]))
    return _ordered(out)


# A folded part is named beside its group's best only when it scores at least this share of the best's score:
# every page of a document is some distance from a query, and "also matches at page 1" must mean something.
ALSO_MIN_SHARE = 0.75


def fused_group(fused: list[Fused], group_of: dict[int, int]) -> list[Fused]:
    """``fused`` (best first) with one entry per group: the group's best, with the ids of the group's other
    entries that scored at least ``ALSO_MIN_SHARE`` of its score in its ``also`` (best first).

    ``group_of`` maps an item id to its group (a part's parent); an id it lacks is a group of its own.
    """
    kept: dict[int, Fused] = {}
    for entry in fused:
        group = group_of.get(entry.item_id, entry.item_id)
        best = kept.setdefault(group, entry)
        if best is not entry and best.score > 0 and entry.score >= ALSO_MIN_SHARE * best.score:
            best.also.append(entry.item_id)
    return list(kept.values())


COLLAPSE_LEVELS = ("same", "similar", "none")


def fused_collapse(fused: list[Fused], groups: dict[int, tuple[int | None, int | None]], level: str) -> list[Fused]:
    """``fused`` (best first) with each near-duplicate group once: its best-ranked member, the others in its
    ``duplicates`` with their level ("same" when they are copies of its picture, else "similar").

    ``groups`` maps an item id to its (same-picture group, similar-shot group); ``level`` "same" folds copies
    only, "similar" folds similar shots too, "none" nothing. An id without a group stands alone.
    """
    if level == "none":
        return fused
    kept: dict[tuple[str, int], Fused] = {}
    out = []
    for entry in fused:
        same, similar = groups.get(entry.item_id, (None, None))
        key = ("same", same) if level == "same" else ("similar", similar)
        if key[1] is None:
            out.append(entry)
            continue
        best = kept.setdefault(key, entry)
        if best is entry:
            out.append(entry)
        else:
            copies = same is not None and groups.get(best.item_id, (None, None))[0] == same
            best.duplicates.append((entry.item_id, "same" if copies else "similar"))
    return out


def min_score_cut(fused: list[Fused], min_score: float | None) -> list[Fused]:
    return fused if min_score is None else [entry for entry in fused if entry.score >= min_score]


def _active(rankings: list[Ranking]) -> list[Ranking]:
    return [ranking for ranking in rankings if ranking.weight != 0]


def _by_best(hits: list[tuple[int, float]]) -> dict[int, float]:
    best = max((score for _, score in hits), default=0.0)
    if best <= 0:
        return {item_id: 0.0 for item_id, _ in hits}
    return {item_id: max(score, 0.0) / best for item_id, score in hits}


def _backfill(fused: dict[int, Fused], rankings: list[Ranking]) -> dict[int, Fused]:
    """Zero-weight lists still appear in explanations (as contributing nothing)."""
    for ranking in rankings:
        if ranking.weight == 0:
            raws = dict(ranking.hits)
            ranks = {item_id: rank for rank, (item_id, _) in enumerate(ranking.hits, start=1)}
            for item_id, entry in fused.items():
                entry.contributions.append(Contribution(ranking.source, raws.get(item_id), ranks.get(item_id), 0.0))
    return fused


def _ordered(fused) -> list[Fused]:
    entries = fused.values() if isinstance(fused, dict) else fused
    return sorted(entries, key=lambda entry: (-entry.score, entry.item_id))
