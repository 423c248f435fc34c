"""The background a search's results are judged against: a random sample of the searched vectors.

`multimodal.retrieval.relevance` judges a hit by how far it stands above the corpus at large; this
module draws that sample. Items are drawn by id (uniformly from the searched corpora's id range, the
database saying which ids belong to them) and their vectors read from the index's collection by key
(`VectorCollection.vectors`, the same call on Milvus Lite and on a server), so a sample costs a few
key lookups, never a scan of the collection.

A sample is kept per process for each (store, collection, corpora) and drawn again after
MULTIMODAL_RELEVANCE_SAMPLE_TTL_S, or sooner when the corpora's id range has moved by a tenth (an
ingest or a large deletion): one indexed query a search.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Max, Min

from ..models import Item
from ..retrieval import indexes, relevance

# Ids of parents (documents, recordings) and of other corpora hold no vectors here: each round draws as many ids
# as the share found so far says are needed, with this margin, in at most DRAW_ROUNDS rounds of at most
# DRAW_MAX_FACTOR x the vectors wanted (reading vectors by key is the cost: ~0.3 s per thousand on Milvus Lite).
DRAW_MARGIN = 1.2
DRAW_MAX_FACTOR = 4
DRAW_ROUNDS = 3
RANGE_CHANGE = 0.1


@dataclass(frozen=True)
class _Kept:
    background: relevance.Background
    id_range: tuple[int, int]
    drawn_at: float


_kept: dict[tuple, _Kept] = {}
_kept_lock = threading.Lock()


def background_sample(*, index: indexes.SearchIndex, corpus_ids: list[int] | None) -> relevance.Background | None:
    """A random sample of the vectors of these corpora (None: all) in ``index``; None when they hold none."""
    id_range = _id_range(corpus_ids)
    if id_range is None:
        return None
    key = (str(settings.MILVUS_URI), index.collection.name, tuple(sorted(corpus_ids)) if corpus_ids else None)
    kept = _kept.get(key)
    if kept is None or _stale(kept, id_range):
        kept = _Kept(_draw(index, corpus_ids, id_range), id_range, time.monotonic())
        with _kept_lock:
            _kept[key] = kept
    return kept.background if len(kept.background.vectors) else None


def _id_range(corpus_ids: list[int] | None) -> tuple[int, int] | None:
    """The lowest and highest item id of these corpora (None: all), or None when they hold no item.

    Each end is one index seek per corpus: an aggregate over a corpus filter reads every id of the
    corpora (17 ms a search at 100k items in SQLite), where the ends of the table's own key cost nothing.
    """
    if corpus_ids is None:
        bounds = Item.objects.aggregate(low=Min("pk"), high=Max("pk"))
        return None if bounds["low"] is None else (bounds["low"], bounds["high"])
    ends = []
    for corpus_id in sorted(set(corpus_ids)):
        ids = Item.objects.filter(corpus_id=corpus_id).order_by("pk").values_list("pk", flat=True)
        low = ids.first()
        if low is not None:
            ends.append((low, ids.last()))
    return (min(low for low, _ in ends), max(high for _, high in ends)) if ends else None


def backgrounds_forget() -> None:
    """Draw every sample again on next use (tests whose store outlives their database)."""
    with _kept_lock:
        _kept.clear()


def _stale(kept: _Kept, id_range: tuple[int, int]) -> bool:
    (low, high), (old_low, old_high) = id_range, kept.id_range
    moved = abs(low - old_low) + abs(high - old_high)
    return (time.monotonic() - kept.drawn_at > settings.MULTIMODAL_RELEVANCE_SAMPLE_TTL_S
            or moved >= max(1.0, RANGE_CHANGE * (old_high - old_low + 1)))


def _draw(index: indexes.SearchIndex, corpus_ids: list[int] | None, id_range: tuple[int, int]) -> relevance.Background:
    """Draw ids until ``MULTIMODAL_RELEVANCE_SAMPLE`` vectors are found (or every id was tried)."""
    wanted = settings.MULTIMODAL_RELEVANCE_SAMPLE
    low, high = id_range
    span = high - low + 1
    rng = np.random.default_rng()
    untried = set(range(low, high + 1)) if span <= wanted * DRAW_MAX_FACTOR * DRAW_ROUNDS else None
    tried: set[int] = set()
    rows: list[tuple[str, np.ndarray]] = []
    found_items = 0
    for _ in range(DRAW_ROUNDS):
        share = found_items / len(tried) if found_items else 1 / DRAW_MAX_FACTOR if tried else 1.0
        count = min(round((wanted - len(rows)) * DRAW_MARGIN / share), wanted * DRAW_MAX_FACTOR)
        if untried is not None:
            ids = [int(item_id) for item_id in rng.permutation(sorted(untried))[:count]]
            untried.difference_update(ids)
        else:
            ids = [int(item_id) for item_id in set(rng.integers(low, high + 1, size=count).tolist()) - tried]
        tried.update(ids)
        if corpus_ids is not None:
            ids = list(Item.objects.filter(pk__in=ids, corpus_id__in=corpus_ids).values_list("pk", flat=True))
        found = index.collection.vectors(ids)
        found_items += len(found)
        for by_modality in found.values():
            rows.extend(by_modality.items())
        if len(rows) >= wanted or untried == set():
            break
    # The corpora's vector count, estimated from the share of tried ids that held vectors.
    searched = round(len(rows) * span / max(len(tried), 1))
    if len(rows) > wanted:
        rows = [rows[row] for row in rng.choice(len(rows), size=wanted, replace=False)]
    dim = index.encoder.dim
    vectors = np.stack([vector for _, vector in rows]) if rows else np.empty((0, dim), dtype=np.float32)
    return relevance.Background(vectors=vectors.astype(np.float32), modalities=tuple(modality for modality, _ in rows),
                                vectors_searched=max(searched, len(rows)))
