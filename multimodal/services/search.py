"""Running a search: encode the query's parts, search each channel, fuse, cut and page.

A query (`multimodal.query.types`) is a list of weighted parts (text, image, voice, an existing
item) plus filters. Voice parts are transcribed first and then count as text. The vector channel
searches Milvus (one search with the combined vector in ``vector`` mode, one per part otherwise);
the keyword channel searches the database's full-text index with the query's positive text.
`multimodal.retrieval.fusion` does the arithmetic; this module only gathers its inputs. The page's
results are then judged strong, fair or weak (`multimodal.retrieval.relevance`) against a sample of the
searched corpora (`services.backgrounds`), whatever the fusion mode.
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
from django.conf import settings
from django.db.models import Q

from .. import encoders, store
from ..errors import QueryError
from ..models import Item
from ..query.filters import filters_items, filters_where
from ..query.parts import PARTS
from ..query.types import QueryPart, SearchQuery
from ..retrieval import fusion, indexes, relevance
from ..retrieval.keyword import keyword_search
from .backgrounds import background_sample


@dataclass
class SearchOutcome:
    """A page of results. Its explanations (``judgements``, and in "vector" fusion each hit's split into its
    parts' shares) finish beside the caller's own work: call `explained` before reading them."""

    query: SearchQuery
    hits: list[fusion.Fused]  # this page, best first
    has_more: bool
    timings_ms: dict[str, float] = field(default_factory=dict)
    judgements: dict[int, relevance.Judgement] = field(default_factory=dict)  # item id -> how good a match (this page)
    total: int = 0  # results after filters, min_score and grouping, within the candidates read
    total_is_lower_bound: bool = False  # a list was read to its depth: there may be more
    explaining: Callable[[], dict[int, relevance.Judgement]] | None = field(default=None, repr=False)

    def explained(self) -> "SearchOutcome":
        """This outcome with its page explained and judged (waits for that the first time it is called)."""
        if self.explaining is not None:
            tick = time.perf_counter()
            finish, self.explaining = self.explaining, None
            self.judgements.update(finish())
            self.timings_ms["explain"] = self.timings_ms.get("explain", 0.0) + (time.perf_counter() - tick) * 1000
        return self


class _Clock:
    def __init__(self):
        self.timings: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str, *, ran: bool = True, detail: str = "") -> None:
        """Time since the last lap goes to ``name`` (and to ``name.detail``, e.g. ``search.part 1``).

        Stages that did not run are not reported.
        """
        now = time.perf_counter()
        if ran:
            elapsed_ms = (now - self._last) * 1000
            self.timings[name] = self.timings.get(name, 0.0) + elapsed_ms
            if detail:
                key = f"{name}.{detail}"
                self.timings[key] = self.timings.get(key, 0.0) + elapsed_ms
        self._last = now

    def add(self, other: "_Clock") -> None:
        """Count another clock's stages here too (one that timed work done beside this one's)."""
        for name, elapsed_ms in other.timings.items():
            self.timings[name] = self.timings.get(name, 0.0) + elapsed_ms


def search_run(*, query: SearchQuery) -> SearchOutcome:
    """The query's page of results, fused and explained; raises QueryError for unusable queries.

    Corpora searched in different indexes (one with a live adapter, others in the encoder's own
    vectors, see `multimodal.retrieval.indexes`) are searched apart, each with its own adapted query
    vectors, and merged by score. Without adapters there is one index and one search.
    """
    clock = _Clock()
    if not query.parts:
        raise QueryError("nothing to search for: give a text, an image, a voice recording or an item")
    spoken = [part for part in query.parts if PARTS[part.type].spoken]
    for part in spoken:
        if part.transcript is None:
            part_transcribe(part)
    clock.lap("transcribe", ran=bool(spoken))
    active = [part for part in query.parts if part.weight != 0]
    if not active:
        raise QueryError("nothing to search for: every part has weight 0")
    encoder = encoders.get()
    where = filters_where(query)
    depth = max(settings.MULTIMODAL_FUSION_CANDIDATES, query.page * query.top_k)
    sources = [f"part {query.parts.index(part)}" for part in active]
    weights = [part.weight for part in active]
    routes = [(route, replace(where, corpus_ids=route.corpus_ids)) for route in indexes.search_routes(where.corpus_ids)]
    # The vector side (encoding, then the store's searches) needs no database: it runs in a worker thread
    # while this thread, which holds the database connection, runs the keyword channel. A query costs
    # the slower of the two, not their sum (encoders, Milvus calls and SQLite all release the GIL).
    # In "vector" fusion the keyword matches also need their cosine to the combined vector: this thread
    # asks the store for them as soon as that vector is known, beside the vector side's own search.
    vector_clock = _Clock()
    combined = [Future() for _ in routes] if query.fusion == "vector" and query.keyword_on else None
    vector_side = _VECTOR_SIDE.submit(_vector_lists, query, active, encoder, sources, routes, depth, vector_clock,
                                      combined)
    try:
        keywords = [_keyword_ranking(query, route_where, depth) for _, route_where in routes]
        clock.lap("keyword", ran=query.keyword_on)
        keyword_cosines = [{} for _ in routes]
        for number, ((route, route_where), keyword, ready) in enumerate(zip(routes, keywords, combined or [])):
            vector = ready.result()
            clock.lap("vectors", ran=False)
            keyword_cosines[number] = _keyword_cosines(keyword, vector, route.index.collection, route_where)
            clock.lap("search", detail="keyword candidates")
    except BaseException:
        wait([vector_side])  # the worker does not outlive the request
        raise
    lists = vector_side.result()
    clock.lap("vectors", ran=False)  # waiting for the vector side: its own stages are timed there
    clock.add(vector_clock)
    searched = [_route_fuse(query, route, depth, route_lists, keyword, cosines)
                for (route, _), route_lists, keyword, cosines in zip(routes, lists, keywords, keyword_cosines)]
    fused = searched[0].fused if len(searched) == 1 else sorted(
        (entry for result in searched for entry in result.fused), key=lambda entry: (-entry.score, entry.item_id))
    fused = fusion.min_score_cut(fused, query.min_score)
    clock.lap("fusion")
    if query.group or query.collapse != "none":
        parents, duplicate_groups = _links_of([entry.item_id for entry in fused])
        if query.group:
            fused = fusion.fused_group(fused, parents)
        if query.collapse != "none":
            fused = fusion.fused_collapse(fused, duplicate_groups, query.collapse)
    clock.lap("group", ran=query.group or query.collapse != "none")
    start = (query.page - 1) * query.top_k
    page = fused[start:start + query.top_k]
    explaining = _page_explaining(page, searched, query, weights, sources)
    clock.lap("explain")
    return SearchOutcome(query=query, hits=page, has_more=len(fused) > start + query.top_k, timings_ms=clock.timings,
                         total=len(fused), total_is_lower_bound=any(result.capped for result in searched),
                         explaining=explaining)


def _page_explaining(page: list[fusion.Fused], searched: list[_Searched], query: SearchQuery, weights: list[float],
                     sources: list[str]) -> Callable[[], dict[int, relevance.Judgement]]:
    """Start explaining and judging ``page``; the function returned finishes it and gives the judgements.

    The page's stored vectors are asked of the store in a worker thread, so that the caller reads the
    page's items from the database meanwhile (a store call costs 6-10 ms on a server, whatever it asks):
    finishing waits for them, splits each result's cosine into its parts' shares ("vector" fusion) and
    judges each result against its index's background. Backgrounds are read here: this thread holds the
    database connection.
    """
    started = []
    for result in searched:
        found = {entry.item_id for entry in result.fused}
        in_route = [entry for entry in page if entry.item_id in found]
        if in_route:
            stored = _VECTOR_SIDE.submit(result.index.collection.vectors, [entry.item_id for entry in in_route])
            started.append((result, in_route, stored,
                            background_sample(index=result.index, corpus_ids=result.corpus_ids)))

    def finish() -> dict[int, relevance.Judgement]:
        judgements = {}
        for result, in_route, stored, background in started:
            vectors = stored.result()
            if query.fusion == "vector":
                _vector_explain(in_route, result.vectors, weights, sources, vectors)
            judgements.update(_page_judge(in_route, result, weights, sources, vectors, background))
        return judgements

    return finish


def _page_judge(page: list[fusion.Fused], result: _Searched, weights: list[float], sources: list[str],
                stored: dict[int, dict[str, np.ndarray]], background: relevance.Background | None,
                ) -> dict[int, relevance.Judgement]:
    """How good a match each result of ``page`` (all found in ``result``'s index) is: its stored vectors against
    the index's ``background``, its keyword score against the query's best keyword match."""
    judge = relevance.Judge(vectors=result.vectors, weights=weights, sources=sources, background=background,
                            good_z=settings.MULTIMODAL_RELEVANCE_GOOD_Z)
    keyword_best = max((score for _, score in result.keyword.hits), default=0.0) if result.keyword else 0.0
    judgements = {}
    for entry in page:
        raw = next((c.raw for c in entry.contributions if c.source == "keyword" and c.raw is not None), None)
        share = raw / keyword_best if raw is not None and keyword_best > 0 else None
        judgements[entry.item_id] = judge.judge(stored.get(entry.item_id, {}), keyword_share=share)
    return judgements


def _links_of(item_ids: list[int]) -> tuple[dict[int, int], dict[int, tuple[int | None, int | None]]]:
    """What ties these items to others, in one query: {part id: its parent's id} for the ids that are parts
    (pages, passages, scenes, segments), and {id: (same-picture group, similar-shot group)} for those in a
    duplicate group (`services.duplicates`)."""
    parents, duplicate_groups = {}, {}
    rows = Item.objects.filter(pk__in=item_ids).filter(
        Q(parent__isnull=False) | Q(same_group__isnull=False) | Q(similar_group__isnull=False)).order_by()
    for pk, parent, same, similar in rows.values_list("pk", "parent_id", "same_group", "similar_group"):
        if parent is not None:
            parents[pk] = parent
        if same is not None or similar is not None:
            duplicate_groups[pk] = (same, similar)
    return parents, duplicate_groups


@dataclass
class _Searched:
    index: indexes.SearchIndex
    corpus_ids: list[int] | None  # the corpora searched in it (None: all)
    vectors: list[np.ndarray]  # the parts' vectors in this index's space
    fused: list[fusion.Fused]
    keyword: fusion.Ranking | None  # the keyword channel's list, when it was on
    capped: bool  # some list was read to the depth asked: more candidates may exist


@dataclass
class _VectorLists:
    """One route's vector channel: the parts' vectors and what the store listed for them."""

    vectors: list[np.ndarray]  # the parts' vectors in the route's index's space
    combined: np.ndarray | None  # their weighted sum ("vector" fusion)
    rankings: list[fusion.Ranking]  # one per part, or one for the combined vector
    listed: list[int]  # how many hits each list held


# Worker threads for queries' vector sides (see `search_run`); a few, as requests are served in parallel.
_VECTOR_SIDE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="search-vectors")


def _vector_lists(query: SearchQuery, active: list[QueryPart], encoder, sources: list[str], routes: list,
                  depth: int, clock: _Clock, combined: list[Future] | None) -> list[_VectorLists]:
    """Encode the parts, then search each route's index with them (no database access: see `search_run`).

    In "vector" fusion each route's combined vector is also handed over through ``combined`` (when given)
    before its search starts; if the side fails first, the futures not yet set hold the error.
    """
    try:
        encoded = _parts_encode(active, encoder, clock)
        return [_route_vector_lists(query, active, encoded, sources, route, route_where, depth, clock,
                                    combined[number] if combined else None)
                for number, (route, route_where) in enumerate(routes)]
    except BaseException as exc:
        for ready in combined or []:
            if not ready.done():
                ready.set_exception(exc)
        raise


def _route_vector_lists(query: SearchQuery, active: list[QueryPart], encoded: dict, sources: list[str],
                        route: indexes.Route, where: store.VectorFilter, depth: int, clock: _Clock,
                        combined_ready: Future | None) -> _VectorLists:
    collection = route.index.collection
    vectors = _parts_vectors(active, encoded, route.index, clock)
    if query.fusion == "vector":
        combined = fusion.vector_combine(vectors, [part.weight for part in active])
        if combined is None:
            raise QueryError("the parts cancel each other out: nothing is left to search for")
        if combined_ready is not None:
            combined_ready.set_result(combined)
        hits = collection.search(combined, limit=depth, where=where)
        clock.lap("search", detail="combined")
        ranked = [(hit.item_id, hit.score) for hit in hits]
        return _VectorLists(vectors, combined, [fusion.Ranking("combined", 1.0, ranked)], [len(hits)])
    rankings, listed = [], []
    for source, part, vector in zip(sources, active, vectors):
        hits = collection.search(vector, limit=depth, where=where)
        listed.append(len(hits))
        # A negative part demotes only what resembles it: unrelated items (cosine <= 0) are
        # left out of its list rather than ranked, and so penalised, in it.
        ranked = [(hit.item_id, hit.score) for hit in hits if part.weight > 0 or hit.score > 0]
        rankings.append(fusion.Ranking(source, part.weight, ranked))
        clock.lap("search", detail=source)
    return _VectorLists(vectors, None, rankings, listed)


def _keyword_ranking(query: SearchQuery, where: store.VectorFilter, depth: int) -> fusion.Ranking | None:
    if not query.keyword_on:
        return None
    return fusion.Ranking("keyword", query.keyword_weight,
                          keyword_search(query.keyword_text, items=filters_items(query, where, item_by_item=True),
                                         limit=depth))


def _route_fuse(query: SearchQuery, route: indexes.Route, depth: int, lists: _VectorLists,
                keyword: fusion.Ranking | None, keyword_cosines: dict[int, float]) -> _Searched:
    """One route's vector lists and keyword list, fused (``keyword_cosines``: see `_keyword_cosines`)."""
    listed = list(lists.listed)
    if query.fusion == "vector":
        fused = [fusion.Fused(item_id, score) for item_id, score in lists.rankings[0].hits]
        if keyword is not None:
            fused = _cosines_backfill(fused, keyword, keyword_cosines, lists.combined, route.index.collection)
            fused = fusion.keyword_add(fused, keyword)
    else:
        rankings = [*lists.rankings, *([keyword] if keyword is not None else [])]
        fused = fusion.rrf(rankings, k=query.rrf_k) if query.fusion == "rrf" else fusion.weighted(rankings)
    if keyword is not None:
        listed.append(len(keyword.hits))
    return _Searched(route.index, route.corpus_ids, lists.vectors, fused, keyword, capped=max(listed) >= depth)


def part_transcribe(part: QueryPart) -> None:
    """Turn a voice part into text with the configured speech model (kept warm per process)."""
    from .voice import voice_transcribe

    part.transcript = voice_transcribe(part.audio, name=part.name or "voice")
    part.text = part.transcript["text"]
    if not part.text.strip():
        raise QueryError(f"{part.name or 'voice'}: no speech was recognised in the recording")


ENCODER_INPUTS = {  # an encoder modality: how to encode a batch, and what of a part it encodes
    "text": (lambda encoder, values: encoder.encode_text(values), lambda part: part.text),
    "image": (lambda encoder, values: encoder.encode_image(values), lambda part: part.image),
}


def _parts_encode(parts: list[QueryPart], encoder, clock: _Clock) -> dict[int, tuple[str, np.ndarray]]:
    """The encoder's unit vector of each part its type's modality names: {index: (modality, vector)}.

    Each modality's parts are encoded in one batch. Parts without one (items) are looked up per index.
    """
    encoded: dict[int, tuple[str, np.ndarray]] = {}
    for modality, (encode, value) in ENCODER_INPUTS.items():
        batch = [index for index, part in enumerate(parts) if PARTS[part.type].modality == modality]
        if batch:
            for index, vector in zip(batch, encode(encoder, [value(parts[index]) for index in batch])):
                encoded[index] = (modality, vector)
            clock.lap("encode", detail=modality)
    return encoded


def _parts_vectors(parts: list[QueryPart], encoded: dict, index: indexes.SearchIndex, clock: _Clock) -> list[np.ndarray]:
    """One unit vector per part, in order, in ``index``'s space."""
    vectors = {number: index.adapt(vector[None, :], modality)[0] for number, (modality, vector) in encoded.items()}
    items = [(number, part.item) for number, part in enumerate(parts) if PARTS[part.type].modality is None]
    if items:
        stored = index.item_vectors([item.pk for _, item in items])
        for number, item in items:
            own = list(stored.get(item.pk, {}).values())
            if not own:
                raise QueryError(f"item {item.pk} has no vectors yet (still being indexed?)")
            # An item with an image and a text is like both: the direction between them.
            vectors[number] = encoders.l2_normalise(np.sum(own, axis=0))[0]
        clock.lap("encode", detail="item")
    return [vectors[number] for number in range(len(parts))]


def _keyword_cosines(keyword: fusion.Ranking | None, combined: np.ndarray, collection,
                     where: store.VectorFilter) -> dict[int, float]:
    """{item id: cosine of its best vector to the combined vector} for the keyword channel's matches.

    The store scores them in one search narrowed to those items (on a server, an exact scan of a few
    hundred rows), run beside the vector side's own search: shipping up to 200 items' 512 floats each
    to this process and decoding them in Python cost more than the search itself.
    """
    if not keyword or not keyword.hits:
        return {}
    ids = [item_id for item_id, _ in keyword.hits]
    return {hit.item_id: hit.score for hit in collection.search(combined, limit=len(ids),
                                                                where=replace(where, item_ids=ids))}


def _cosines_backfill(fused, keyword, keyword_cosines: dict[int, float], combined, collection) -> list[fusion.Fused]:
    """Add keyword-only candidates with their real cosine to the combined vector (their best vector's).

    The cosines come from `_keyword_cosines`. An index may miss some of so few rows (Milvus Lite's HNSW
    found none of one): those are scored from their vectors.
    """
    known = {entry.item_id for entry in fused}
    missing = [item_id for item_id, _ in keyword.hits if item_id not in known]
    fused.extend(fusion.Fused(item_id, keyword_cosines[item_id]) for item_id in missing if item_id in keyword_cosines)
    unscored = [item_id for item_id in missing if item_id not in keyword_cosines]
    for item_id, by_modality in collection.vectors(unscored).items():
        fused.append(fusion.Fused(item_id, max(float(np.dot(vector, combined)) for vector in by_modality.values())))
    return fused


def _vector_explain(page, vectors, weights, sources, stored) -> None:
    """Split each result's cosine into its parts' shares (only for the page being returned; ``stored`` holds
    its items' vectors)."""
    combined, norm = fusion.vector_sum(vectors, weights)
    for entry in page:
        keyword = [c for c in entry.contributions if c.source == "keyword"]
        if len(vectors) == 1:
            cosine = entry.score - sum(c.value for c in keyword)
            entry.contributions = [fusion.Contribution(sources[0], cosine, None, cosine), *keyword]
            continue
        own = stored.get(entry.item_id, {})
        if not own:
            continue
        # The item's vector that matched: the one closest to the combined query.
        best = max(own.values(), key=lambda vector: float(np.dot(vector, combined)))
        cosines = [float(np.dot(vector, best)) for vector in vectors]
        entry.contributions = [*fusion.vector_contributions(cosines, weights, norm, sources), *keyword]
