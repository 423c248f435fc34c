"""The scale benchmark: a synthetic corpus grown to 10k, 100k, 1M items, searched the product's way.

Encoding is what limits ingest, and it is not what this measures: items are made up (short titles
and texts drawn from a word list with a few rare words and many common ones, products with specs
and codes) and written straight to the database (whose triggers fill the keyword index) and,
as clustered unit vectors of the configured encoder's dimension, to the store. Then every stage a
search goes through is timed on its own and end to end, against baselines over the same vectors in
the same run (numpy exact, faiss HNSW), and the store's recall@10 is measured against the exact
answer. Sizes grow one from the other; each engine gets its own corpus, deleted at the end.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import os
import statistics
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone as dt_timezone
from urllib.parse import urlsplit

import numpy as np
import psutil
from django.conf import settings
from django.db import connection, connections, transaction
from django.db.models import DateTimeField, FileField, JSONField

from .. import encoders, store
from ..models import PARENT_KINDS, Corpus, Item
from ..query.types import QueryPart, SearchFilters, SearchQuery
from ..retrieval.fusion import Fused
from ..retrieval.keyword import keyword_search
from ..selectors import search_response, search_results_hydrate
from ..services.search import SearchOutcome
from .bulk_vectors import VectorWriters
from .queries import query_parts

COMMON_WORDS = (
    "chair table lamp wooden red green blue black white small large garden kitchen office modern classic "
    "soft light dark old new round square tall low oak steel glass leather cotton wool linen brass stone "
    "bicycle wall cat dog tree river house car boat mountain city night morning summer winter road park "
    "window door floor shelf cabinet sofa bench stool desk mirror rug curtain pillow blanket vase bowl cup"
).split()
SPEC_VALUES = {
    "colour": "red green blue black white grey yellow orange brown pink purple beige".split(),
    "material": ("oak pine walnut beech steel aluminium brass glass leather cotton wool linen plastic rattan "
                 "bamboo marble granite concrete cork felt").split(),
    "legs": [str(count) for count in range(1, 7)],
}
RARE_SYLLABLES = "ka lo mi ne ru ta vo zi qu xe".split()
RARE_WORDS = len(RARE_SYLLABLES) ** 4  # every item holds one of 10,000 made-up words, as names and codes are
CLUSTERS = 64
QUERY_PARTS = {1: "text", 2: "text + image", 3: "text + image - text"}
FILTERS = ("corpus", "kind", "date range", "spec")
DAYS = 365


def _rare_word(number: int) -> str:
    syllables = len(RARE_SYLLABLES)
    return "".join(RARE_SYLLABLES[(number // syllables ** power) % syllables] for power in range(4))


def _percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]}


def _timed(call, repeats: int) -> dict:
    durations_ms = []
    for _ in range(repeats):
        tick = time.perf_counter()
        call()
        durations_ms.append((time.perf_counter() - tick) * 1000)
    return _percentiles(durations_ms)


class SyntheticCorpus:
    """Items numbered 0, 1, 2, ... in one corpus; item n's words, dates and vector depend on n alone.

    Odd items are products (a code, specs), even ones texts. Word frequencies follow Zipf's law over
    COMMON_WORDS, so the most common word is in most items (the worst case for ranking) and the
    least common in a few percent; every item also holds one of RARE_WORDS made-up words (a name, a
    part number). Vectors are unit vectors around CLUSTERS random centres.
    """

    def __init__(self, *, corpus: Corpus, dim: int, seed: int = 0):
        self.corpus = corpus
        self.dim = dim
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.centres = encoders.l2_normalise(rng.standard_normal((CLUSTERS, dim)).astype(np.float32))
        ranks = np.arange(1, len(COMMON_WORDS) + 1)
        self.word_weights = (1 / ranks) / (1 / ranks).sum()
        self.today = datetime.now(dt_timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0)
        self.size = 0
        self.item_ids = np.zeros(0, dtype=np.int64)
        self.vectors = np.zeros((0, dim), dtype=np.float32)

    def vectors_for(self, start: int, stop: int) -> np.ndarray:
        """Unit vectors of items start..stop-1: their cluster's centre plus noise."""
        rng = np.random.default_rng((self.seed, start))
        clusters = rng.integers(0, CLUSTERS, stop - start)
        noisy = self.centres[clusters] + rng.standard_normal((stop - start, self.dim)).astype(np.float32) * 0.06
        return encoders.l2_normalise(noisy)

    def query_vectors(self, count: int) -> np.ndarray:
        """Queries drawn like the items (near a centre), none of them an item."""
        rng = np.random.default_rng((self.seed, 2 ** 31))
        noisy = self.centres[rng.integers(0, CLUSTERS, count)] + rng.standard_normal((count, self.dim)) * 0.06
        return encoders.l2_normalise(noisy.astype(np.float32))

    def rows_for(self, start: int, stop: int) -> tuple[list[tuple], list[str], list[int]]:
        """Items start..stop-1 as database rows (`ItemRows`), with their kinds and creation times (epoch s)."""
        rng = np.random.default_rng((self.seed, start, 1))
        count = stop - start
        words = rng.choice(len(COMMON_WORDS), size=(count, 12), p=self.word_weights).tolist()
        lengths = rng.integers(6, 13, count).tolist()
        spec_choices = np.stack([rng.integers(0, len(values), count) for values in SPEC_VALUES.values()], axis=1).tolist()
        columns = self._rows.columns
        rows, kinds, created = [], [], []
        for row_words, length, specs, number in zip(words, lengths, spec_choices, range(start, stop)):
            product = bool(number % 2)
            row = list(self._product_row if product else self._text_row)
            row[columns["title"]] = " ".join(COMMON_WORDS[index] for index in row_words[:3])
            text = " ".join([*(COMMON_WORDS[index] for index in row_words[3:length]), _rare_word(number)])
            row[columns["text"]] = text
            day = number % DAYS
            row[columns["created_at"]] = self._created_values[day]
            if product:
                row[columns["external_id"]] = self.code(number)
                row[columns["content_hash"]] = hashlib.sha256(f"product {number}".encode()).hexdigest()
                row[columns["metadata"]] = self._product_metadata[tuple(specs)]
                kinds.append(Item.Kind.PRODUCT.value)
            else:
                row[columns["content_hash"]] = hashlib.sha256(f"text {number}".encode()).hexdigest()
                row[columns["source_name"]] = f"note-{number}.txt"
                row[columns["metadata"]] = self._rows.value("metadata", {
                    "source": f"note-{number}.txt", "bytes": len(text), "characters": len(text)})
                kinds.append(Item.Kind.TEXT.value)
            rows.append(tuple(row))
            created.append(self._created_epochs[day])
        return rows, kinds, created

    @functools.cached_property
    def _rows(self) -> "ItemRows":
        return ItemRows()

    @functools.cached_property
    def _product_row(self) -> list:
        return self._rows.prototype(Item(corpus=self.corpus, kind=Item.Kind.PRODUCT, source_name="catalogue.csv"))

    @functools.cached_property
    def _text_row(self) -> list:
        return self._rows.prototype(Item(corpus=self.corpus, kind=Item.Kind.TEXT))

    @functools.cached_property
    def _created_dates(self) -> list[datetime]:
        return [self.today - timedelta(days=day) for day in range(DAYS)]

    @functools.cached_property
    def _created_values(self) -> list:
        return [self._rows.value("created_at", date) for date in self._created_dates]

    @functools.cached_property
    def _created_epochs(self) -> list[int]:
        return [int(date.timestamp()) for date in self._created_dates]

    @functools.cached_property
    def _product_metadata(self) -> dict[tuple[int, ...], str]:
        """A product's metadata, as the driver takes it, by its specs' value numbers (a few thousand kinds)."""
        return {choices: self._rows.value("metadata", {
                    "source": "catalogue.csv", "specs_text": "",
                    "specs": {name: SPEC_VALUES[name][choice] for name, choice in zip(SPEC_VALUES, choices)}})
                for choices in itertools.product(*(range(len(values)) for values in SPEC_VALUES.values()))}

    @staticmethod
    def code(number: int) -> str:
        return f"SKU-{number:07d}"

    def grow(self, size: int, *, collection: store.VectorCollection, batch_size: int, writers: int = 2,
             on_progress=None) -> dict:
        """Add items until there are ``size``: rows (the keyword index follows by trigger), then vectors.

        Three kinds of work overlap: this thread makes a batch's rows and vectors while a database
        thread writes the previous batch's rows (`RowWriter`) and the store loads the vectors of rows
        written before, whose ids are known by then (`bulk_vectors.VectorWriters`: a batch at a time, or
        hundreds of thousands when the engine imports files).
        """
        added = size - self.size
        item_ids, vectors = np.zeros(size, dtype=np.int64), np.zeros((size, self.dim), dtype=np.float32)
        item_ids[:self.size], vectors[:self.size] = self.item_ids, self.vectors
        self.item_ids, self.vectors = item_ids, vectors
        with VectorWriters(collection, processes=writers) as vector_writers, RowWriter() as row_writer:
            vector_writers.ready()
            rows_per_load = vector_writers.rows_per_load(added, batch_size)
            unloaded = self.size  # rows from here on have ids but no vectors in the store yet
            kinds, created = [], []
            started = time.perf_counter()

            def ids_known(start, stop, ids, batch_kinds, batch_created):
                nonlocal unloaded
                self.item_ids[start:stop] = ids.result()
                kinds.extend(batch_kinds)
                created.extend(batch_created)
                if stop - unloaded >= rows_per_load or stop == size:
                    vector_writers.write(store.VectorColumns(
                        item_ids=self.item_ids[unloaded:stop], corpus_ids=np.full(stop - unloaded, self.corpus.pk),
                        kinds=kinds[:], created_at=np.asarray(created, dtype=np.int64),
                        vectors=self.vectors[unloaded:stop]))
                    unloaded = stop
                    kinds.clear()
                    created.clear()
                self.size = stop
                if on_progress:
                    on_progress(stop)

            written = None
            for start in range(self.size, size, batch_size):
                stop = min(start + batch_size, size)
                rows, batch_kinds, batch_created = self.rows_for(start, stop)
                self.vectors[start:stop] = self.vectors_for(start, stop)
                if written:
                    ids_known(*written)
                written = (start, stop, row_writer.write(rows, corpus_id=self.corpus.pk), batch_kinds, batch_created)
            if written:
                ids_known(*written)
        seconds = time.perf_counter() - started
        return {"items": added, "seconds": seconds, "items_per_s": added / seconds if seconds else None}


class ItemRows:
    """Item rows as the database driver takes them (every concrete column but the id, in field order),
    made without model instances.

    A row is a prototype item's row with the columns that vary between items replaced: building and
    converting an `Item` costs ~0.25 ms in Python, more than SQLite takes to store it with its keyword
    index. Values of plain types go to the driver as they are; only the others (JSON, dates, files) are
    prepared by their field.
    """

    def __init__(self):
        self.fields = [field for field in Item._meta.concrete_fields if not field.primary_key]
        self.columns = {field.attname: position for position, field in enumerate(self.fields)}
        self._converters = {field.attname: _db_converter(field) for field in self.fields}

    def prototype(self, item: Item) -> list:
        """``item``'s row (unsaved; its auto-now dates set to now)."""
        now = datetime.now(dt_timezone.utc)
        for field in self.fields:
            if (getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)) \
                    and getattr(item, field.attname) is None:
                setattr(item, field.attname, now)
        return [self.value(field.attname, getattr(item, field.attname)) for field in self.fields]

    def value(self, attname: str, value):
        """``value`` of field ``attname`` as the driver takes it."""
        return self._converters[attname](value)


def rows_insert(rows: list[tuple], *, corpus_id: int) -> list[int]:
    """Insert rows made by `ItemRows` (all of corpus ``corpus_id``) in one statement run per row; return
    their new ids in order. The keyword and spec indexes follow by the database's triggers. No signals
    are sent: the benchmark's items have no files or vectors to follow.
    """
    if not rows:
        return []
    fields = ItemRows().fields
    table = connection.ops.quote_name(Item._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SELECT coalesce(max(id), 0) FROM {table}")
        before = cursor.fetchone()[0]
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)
        # Only this benchmark writes its corpus: its rows above the old maximum are these, in insert order.
        cursor.execute(f"SELECT id FROM {table} WHERE corpus_id = %s AND id > %s ORDER BY id", [corpus_id, before])
        ids = [row[0] for row in cursor.fetchall()]
    if len(ids) != len(rows):
        raise RuntimeError(f"inserted {len(rows)} items but found {len(ids)} new rows (another writer?)")
    return ids


class RowWriter:
    """Batches of rows inserted (`rows_insert`) in a thread of their own, one at a time, beside the caller's work.

    SQLite and the PostgreSQL driver release the GIL while the database works (for SQLite, its keyword
    index's tokenising too), so the caller's Python runs meanwhile. When the caller holds a transaction
    (a test), rows are written on its connection instead: another connection would not see it, or wait
    for its lock.
    """

    def __init__(self):
        self.pool = None if connection.in_atomic_block else ThreadPoolExecutor(max_workers=1)

    def write(self, rows: list[tuple], *, corpus_id: int) -> Future:
        """The future ids of ``rows``, in order."""
        if self.pool is None:
            done = Future()
            done.set_result(rows_insert(rows, corpus_id=corpus_id))
            return done
        return self.pool.submit(rows_insert, rows, corpus_id=corpus_id)

    def __enter__(self) -> "RowWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        if self.pool is not None:
            self.pool.submit(connections.close_all).result()  # the thread's own connection
            self.pool.shutdown()


def _db_converter(field):
    """What turns a field's Python value into what the driver takes: plain values pass as they are."""
    operations = connection.ops  # looked up once: the connection proxy costs a context lookup per access
    if isinstance(field, JSONField):
        return lambda value: None if value is None else operations.adapt_json_value(value, field.encoder)
    if isinstance(field, DateTimeField):
        return operations.adapt_datetimefield_value
    if isinstance(field, FileField):
        return lambda value: value.name or "" if value is not None else None
    return lambda value: value if value is None or type(value) in (str, int, float, bool) else \
        field.get_db_prep_save(value, connection)


def keyword_rows(corpus: SyntheticCorpus) -> int | None:
    """How many of the corpus's items the keyword index holds (SQLite's FTS5 table; None elsewhere)."""
    if connection.vendor != "sqlite" or not corpus.size:
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM multimodal_item_fts WHERE rowid BETWEEN %s AND %s",
                       [int(corpus.item_ids.min()), int(corpus.item_ids.max())])
        return int(cursor.fetchone()[0])


def engine_memory() -> dict:
    """RSS of this process and of the vector engine's process (None when it is not on this machine).

    The engine's process is the one the store reports, else the one listening on the URI's loopback
    port (a server started by hand).
    """
    own = psutil.Process()
    status = store.engine_status()
    pid = status.pid if status.pid is not None else _loopback_listener(status.uri)
    engine_mb = None
    if pid is not None and pid != own.pid:
        try:
            engine_mb = psutil.Process(pid).memory_info().rss / 2 ** 20
        except psutil.Error:
            engine_mb = None
    return {"process_mb": own.memory_info().rss / 2 ** 20, "engine_mb": engine_mb, "engine_in_process": pid == own.pid,
            "engine": status.engine, "engine_pid": pid}


def _loopback_listener(uri: str) -> int | None:
    address = urlsplit(uri)
    if address.hostname not in ("127.0.0.1", "localhost", "::1") or not address.port:
        return None
    try:
        return next((socket.pid for socket in psutil.net_connections("tcp")
                     if socket.status == psutil.CONN_LISTEN and socket.laddr.port == address.port), None)
    except psutil.AccessDenied:
        return None


def numpy_kernel() -> dict:
    """Which BLAS numpy's matrix products ran on (the exact baseline's speed depends on it)."""
    from threadpoolctl import threadpool_info

    blas = next((pool for pool in threadpool_info() if pool.get("user_api") == "blas"), {})
    return {"library": blas.get("internal_api"), "version": blas.get("version"),
            "architecture": blas.get("architecture"), "threads": blas.get("num_threads"),
            "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
            "openblas_l2_size": os.environ.get("OPENBLAS_L2_SIZE")}


def _exact_top(matrix: np.ndarray, query_vectors: np.ndarray, k: int) -> np.ndarray:
    """Row numbers of each query's k nearest rows of ``matrix``, nearest first."""
    scores = query_vectors @ matrix.T
    if matrix.shape[0] > k:
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        top = np.tile(np.arange(matrix.shape[0]), (len(query_vectors), 1))
    return np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1), axis=1)


def _recall(found: list[list[int]], exact: list[list[int]], k: int) -> float:
    return float(np.mean([len(set(hits[:k]) & set(truth[:k])) / len(truth[:k]) for hits, truth in zip(found, exact)]))


class FaissBaseline:
    """faiss HNSW over the same vectors (M 16, efConstruction 200, efSearch 64), grown with the corpus."""

    def __init__(self, dim: int):
        import faiss

        self.index = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efConstruction = 200
        self.index.hnsw.efSearch = 64
        self.build_s = 0.0

    def grow(self, vectors: np.ndarray) -> None:
        tick = time.perf_counter()
        self.index.add(vectors[self.index.ntotal:])
        self.build_s += time.perf_counter() - tick

    def search(self, query_vectors: np.ndarray, k: int) -> tuple[list[list[int]], dict]:
        rows, durations_ms = [], []
        for vector in query_vectors:
            tick = time.perf_counter()
            _, found = self.index.search(vector[None, :], k)
            durations_ms.append((time.perf_counter() - tick) * 1000)
            rows.append(found[0].tolist())
        return rows, _percentiles(durations_ms)


def _query_parts(count: int, rng: np.random.Generator) -> list[QueryPart]:
    """A query of ``count`` parts in the corpus's own words (the common ones, then any for the negative)."""
    return query_parts(count, rng, words=COMMON_WORDS[:40], negative_words=COMMON_WORDS, word_count=2, image_side=64)


def _measure(corpus: SyntheticCorpus, collection: store.VectorCollection, faiss_index: FaissBaseline | None,
             queries: int, rng: np.random.Generator) -> dict:
    """Every figure of one engine at one size (the corpus is flushed and indexed)."""
    figures: dict = {}
    where = store.VectorFilter(corpus_ids=[corpus.corpus.pk])
    query_vectors = corpus.query_vectors(queries)
    k = 10

    # Store alone, recall against numpy exact over the same vectors, and the baselines. "store" asks as
    # the product's searches do (the fusion depth, so HNSW's ef is at least twice that) and keeps the
    # top 10; "store_top10" asks for 10 alone (ef at its configured floor), for comparison with faiss.
    exact_rows = _exact_top(corpus.vectors, query_vectors, k)
    exact_ids = [corpus.item_ids[row].tolist() for row in exact_rows]
    for name, limit in (("store", settings.MULTIMODAL_FUSION_CANDIDATES), ("store_top10", k)):
        collection.search(query_vectors[0], limit=limit, where=where)  # warm-up
        store_found, store_ms = [], []
        for vector in query_vectors:
            tick = time.perf_counter()
            hits = collection.search(vector, limit=limit, where=where)
            store_ms.append((time.perf_counter() - tick) * 1000)
            store_found.append([hit.item_id for hit in hits[:k]])
        figures[name] = {**_percentiles(store_ms), "recall_at_10": _recall(store_found, exact_ids, k), "limit": limit}
    numpy_ms = []
    for vector in query_vectors:
        tick = time.perf_counter()
        scores = corpus.vectors @ vector
        np.argpartition(-scores, min(k, len(scores) - 1))[:k]
        numpy_ms.append((time.perf_counter() - tick) * 1000)
    figures["numpy_exact"] = _percentiles(numpy_ms)
    if faiss_index is not None:
        faiss_index.grow(corpus.vectors)
        faiss_rows, faiss_ms = faiss_index.search(query_vectors, k)
        faiss_ids = [[int(corpus.item_ids[row]) for row in found if row >= 0] for found in faiss_rows]
        figures["faiss_hnsw"] = {**faiss_ms, "recall_at_10": _recall(faiss_ids, exact_ids, k),
                                 "build_s_total": faiss_index.build_s}

    # End to end through the product's search path, stage by stage.
    filters = SearchFilters(corpora=[corpus.corpus])
    search_response(query=SearchQuery(parts=_query_parts(3, rng), filters=filters))  # warm-up of every stage
    figures["end_to_end"] = {}
    for count, shape in QUERY_PARTS.items():
        stages: dict[str, list[float]] = {}
        for _ in range(queries):
            response = search_response(query=SearchQuery(parts=_query_parts(count, rng), top_k=10,
                                                         filters=SearchFilters(corpora=[corpus.corpus])))
            for name, value in response["timings_ms"].items():
                stages.setdefault(name, []).append(value)
        figures["end_to_end"][f"{count} ({shape})"] = {name: _percentiles(values) for name, values in stages.items()}

    # The keyword channel alone, as the product calls it for a query over this corpus.
    candidates = Item.objects.filter(corpus=corpus.corpus).exclude(kind__in=PARENT_KINDS)
    depth = settings.MULTIMODAL_FUSION_CANDIDATES
    probes = {
        "rare word": _rare_word(corpus.size // 2),
        "common word": COMMON_WORDS[0],
        "product code": corpus.code(corpus.size - 1 if (corpus.size - 1) % 2 else corpus.size - 2),
    }
    figures["keyword"] = {}
    for name, text in probes.items():
        matches = keyword_search(text, items=candidates, limit=depth)
        figures["keyword"][name] = {**_timed(lambda text=text: keyword_search(text, items=candidates, limit=depth),
                                             queries), "text": text, "matches": len(matches)}
    code_hits = keyword_search(probes["product code"], items=candidates, limit=1)
    figures["keyword"]["product code"]["first_is_the_product"] = bool(
        code_hits and Item.objects.get(pk=code_hits[0][0]).external_id == probes["product code"])

    # Hydration alone: a page of 10 results.
    def hydrate():
        page = rng.choice(corpus.item_ids, size=min(10, corpus.size), replace=False)
        outcome = SearchOutcome(query=SearchQuery(parts=[QueryPart(type="text", text="oak chair")]),
                                hits=[Fused(int(item_id), 0.5) for item_id in page], has_more=False)
        search_results_hydrate(outcome)
    figures["hydrate"] = _timed(hydrate, queries)

    # Filtered searches, end to end (one text part; keyword and vector channels both filtered).
    recent = corpus.today.date()
    filter_sets = {
        "corpus": SearchFilters(corpora=[corpus.corpus]),
        "kind": SearchFilters(corpora=[corpus.corpus], kinds=["product"]),
        "date range": SearchFilters(corpora=[corpus.corpus], created_from=recent - timedelta(days=30),
                                    created_to=recent),
        "spec": SearchFilters(corpora=[corpus.corpus], specs={"colour": "red", "material": "oak"}),
    }
    figures["filtered"] = {}
    for name, filter_set in filter_sets.items():
        stages: dict[str, list[float]] = {"total": [], "keyword": [], "search": []}
        results = 0
        for _ in range(queries):
            response = search_response(query=SearchQuery(parts=_query_parts(1, rng), top_k=10, filters=filter_set))
            for stage, values in stages.items():
                values.append(response["timings_ms"].get(stage, 0.0))
            results += len(response["results"])
        figures["filtered"][name] = {**_percentiles(stages.pop("total")), "results_per_query": results / queries,
                                     **{stage: _percentiles(values) for stage, values in stages.items()}}
    figures["memory"] = engine_memory()
    figures["memory"]["baselines_mb"] = (corpus.vectors.nbytes + (
        faiss_index.index.ntotal * (corpus.dim * 4 + 16 * 2 * 8) if faiss_index is not None else 0)) / 2 ** 20
    return figures


def corpus_discard(corpus: Corpus, collection: store.VectorCollection, *, chunk: int = 50_000) -> float:
    """Delete a synthetic corpus in bulk. Seconds taken.

    The product's path (``corpus.delete()``) loads every item to collect its files and vectors: fine
    for real corpora, minutes for a million synthetic items that have no files. Here the vectors go
    in one delete by corpus and the rows in chunks of ids (the keyword index follows by trigger).
    """
    started = time.perf_counter()
    collection.delete_corpus(corpus.pk)
    table = connection.ops.quote_name(Item._meta.db_table)
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            ids = list(Item.objects.filter(corpus=corpus).order_by("pk").values_list("pk", flat=True)[:chunk])
            if not ids:
                break
            cursor.execute(f"DELETE FROM {table} WHERE corpus_id = %s AND id BETWEEN %s AND %s",
                           [corpus.pk, ids[0], ids[-1]])
    corpus.delete()
    return time.perf_counter() - started


@contextmanager
def _engine(uri: str):
    previous = settings.MILVUS_URI
    settings.MILVUS_URI = uri
    try:
        yield
    finally:
        settings.MILVUS_URI = previous


def scale_benchmark(*, sizes: list[int], engines: list[str], queries: int = 50, batch_size: int = 10_000,
                    writers: int = 2, faiss_items: int = 200_000, keep: bool = False, index_timeout_s: float = 1800,
                    on_fill_start=None, on_progress=None, on_measured=None) -> dict:
    """Grow a synthetic corpus through ``sizes`` in each engine (Milvus URIs) and time every stage at each size.

    The faiss baseline runs up to ``faiss_items`` items (0: never): its HNSW build costs about
    1.6 ms per 512-d vector on two shared cores, so a million would take most of half an hour.

    ``on_fill_start(engine, total)`` and ``on_progress(items so far)`` feed a progress bar;
    ``on_measured(report so far)`` is called after each size (a long run's figures survive its interruption).
    Returns {"encoder", "dim", "queries", "numpy_kernel", "engines": [{"uri", "engine", "sizes": [...]}]}.
    """
    encoder = encoders.get()
    encoder.encode_text(["warm-up"])
    report = {"encoder": encoder.name, "dim": encoder.dim, "queries": queries, "numpy_kernel": numpy_kernel(),
              "database": connection.vendor, "engines": []}
    for uri in engines:
        with _engine(uri):
            store.engine_start()  # a local server's start (~10 s) is not part of the fill
            collection = store.collection_for(encoder)
            engine = {"uri": uri, "engine": store.engine_status().engine, "sizes": []}
            faiss_index = FaissBaseline(encoder.dim) if faiss_items else None
            rng = np.random.default_rng(1)
            # Nothing may fail between creating the corpus and the try that deletes it.
            corpus = SyntheticCorpus(corpus=Corpus.objects.create(name=f"bench-scale-{uuid.uuid4().hex[:8]}"),
                                     dim=encoder.dim)
            engine["corpus"] = corpus.corpus.name
            report["engines"].append(engine)
            try:
                if on_fill_start:
                    on_fill_start(uri, max(sizes))
                for size in sizes:
                    fill = corpus.grow(size, collection=collection, batch_size=batch_size, writers=writers,
                                       on_progress=on_progress)
                    fill["keyword_rows"] = keyword_rows(corpus)
                    tick = time.perf_counter()
                    try:
                        # Inserted rows leave many sealed pieces: merged on request, they are indexed once, not
                        # again when the server merges them later beside the searches timed. Imported rows come in
                        # segments already, and Milvus 2.3 answers the request by rewriting each segment alone
                        # and indexing it again (at 1M: ~5 minutes of both cores for nothing).
                        collection.wait_indexed(timeout_s=index_timeout_s, compact=not collection.loads_files())
                        fill["index_complete"] = True
                    except store.StoreUnavailable as timed_out:
                        # Measured all the same (searches may brute-force part of the rows), and said so.
                        fill["index_complete"], fill["index_error"] = False, str(timed_out)
                    fill["index_wait_s"] = time.perf_counter() - tick
                    fill["items_in_database"] = Item.objects.filter(corpus=corpus.corpus).count()
                    fill["vectors_in_store"] = collection.count(store.VectorFilter(corpus_ids=[corpus.corpus.pk]))
                    if size > faiss_items:
                        faiss_index = None  # past the baseline's bound: free its memory too
                    engine["sizes"].append({"items": size, "fill": fill,
                                            **_measure(corpus, collection, faiss_index, queries, rng)})
                    if on_measured:
                        on_measured(report)
            finally:
                if keep:
                    engine["kept"] = True
                else:
                    engine["delete_s"] = corpus_discard(corpus.corpus, collection)
                    engine["items_left"] = Item.objects.filter(corpus__name=corpus.corpus.name).count()
    return report


def growth(engine: dict, stage: str = "store") -> list[tuple[int, int, float]]:
    """(from items, to items, p50 ratio) of ``stage`` between consecutive sizes."""
    sizes = engine["sizes"]
    return [(before["items"], after["items"], after[stage]["p50"] / before[stage]["p50"])
            for before, after in zip(sizes, sizes[1:]) if before[stage]["p50"]]
