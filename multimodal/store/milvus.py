"""A collection of vectors in Milvus, whichever Milvus engine runs (`engines`): the only code that
calls pymilvus for data.

Searches and vector reads (the request path) give up after MILVUS_READ_TIMEOUT_S: a store that stalls
(overloaded, paused, a network that drops packets) fails them as unavailable instead of holding the request.

Consistency: a Milvus server makes a write visible to readers a moment later (its time tick), so a
read that must see what was just written asks for it. Searches and vector reads use "Session"
(this process sees its own writes at once; other processes' writes within about a second), which
costs nothing when this process has not written; counts use "Strong" (every write acknowledged
anywhere), which waits up to one time tick (~0.2 s) and so is kept off the search path.
"""
from __future__ import annotations

import functools
import json
import logging
import re
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
from django.conf import settings

from . import engines
from .types import SLOTS, StoreError, StoreUnavailable, VectorColumns, VectorFilter, VectorHit, VectorRecord

SLOTS_PER_ITEM = 16
DEFAULT_INDEX_PARAMS = {"HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 2048}, "IVF_SQ8": {"nlist": 2048}}
DEFAULT_SEARCH_PARAMS = {"HNSW": {"ef": 64}, "IVF_FLAT": {"nprobe": 10}, "IVF_SQ8": {"nprobe": 10}}
_CHUNK = 1000
KIND_MAX_LENGTH = 32
# A server indexes no segment of fewer rows (its minSegmentNumRowsToEnableIndex): searches scan those.
UNINDEXED_SEGMENT_ROWS = 1024
READ_CONSISTENCY = "Session"
COUNT_CONSISTENCY = "Strong"
_EVERYTHING = f"pk >= {-2 ** 62}"  # a filter every row passes (Milvus wants one for deletes and limited queries)

# Collections known to exist (and be loaded, and caught up), by (engine URI, name), with their dimension,
# the record they were created with and the client they were opened through: `ensure` asks the engine
# once per process and connection (`engines.client` connects again when a local server restarted).
_ensured: dict[tuple[str, str], tuple[int, dict, object]] = {}
_ensured_lock = threading.Lock()
# The collection property that holds its record (JSON): what made its vectors (see `MilvusCollection.record`).
RECORD_PROPERTY = "multimodal.record"


@dataclass(frozen=True)
class VectorIndexSpec:
    """How Milvus organises a collection's vectors for nearest-neighbour search: the index type (HNSW,
    IVF_FLAT, ...), its build parameters and the search parameters that go with it.

    One spec for every collection, from MILVUS_INDEX_TYPE / MILVUS_INDEX_PARAMS / MILVUS_SEARCH_PARAMS.
    Not to be confused with the index a corpus is searched in (`multimodal.retrieval.indexes`).
    """

    index_type: str
    build_params: dict
    search_params: dict

    @classmethod
    def configured(cls) -> "VectorIndexSpec":
        index_type = settings.MILVUS_INDEX_TYPE
        return cls(index_type=index_type,
                   build_params=settings.MILVUS_INDEX_PARAMS or DEFAULT_INDEX_PARAMS.get(index_type, {}),
                   search_params=settings.MILVUS_SEARCH_PARAMS or DEFAULT_SEARCH_PARAMS.get(index_type, {}))


def expression(where: VectorFilter | None) -> str:
    """A Milvus boolean expression over scalar fields only (JSON-field filters scan every row)."""
    if where is None:
        return ""
    clauses = []
    if where.corpus_ids is not None:
        clauses.append(f"corpus_id in {[int(value) for value in where.corpus_ids]}")
    if where.kinds is not None:
        quoted = ", ".join('"' + re.sub(r"[^a-z_]", "", kind) + '"' for kind in where.kinds)
        clauses.append(f"kind in [{quoted}]")
    if where.created_from is not None:
        clauses.append(f"created_at >= {int(where.created_from)}")
    if where.created_to is not None:
        clauses.append(f"created_at < {int(where.created_to)}")
    if where.item_ids is not None:
        clauses.append(f"item_id in {[int(value) for value in where.item_ids]}")
    if where.exclude_item_ids:
        clauses.append(f"item_id not in {[int(value) for value in where.exclude_item_ids]}")
    if where.modalities is not None:
        clauses.append("modality in [" + ", ".join(f'"{value}"' for value in where.modalities if value in SLOTS) + "]")
    return " and ".join(clauses)


def _engine_errors(method):
    """Run ``method`` with pymilvus errors translated to StoreUnavailable (see `engines.translated`).

    A failure also forgets which collections exist and are loaded (another process may have dropped
    one; a restarted server reloads them in the background). The call is made once more when the
    engine is the local server and it is down (stopped, crashed: the retry starts it again), or when
    the server answered that a collection is not loaded (the retry loads it): the site and the
    workers outlive a restart of their store.
    """

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            with engines.translated():
                return method(*args, **kwargs)
        except StoreUnavailable as exc:
            forget_ensured()
            if not engines.current().gone() and "not loaded" not in str(exc):
                raise
        with engines.translated():
            return method(*args, **kwargs)

    return wrapper


def _row_key(item_id: int, modality: str) -> int:
    return item_id * SLOTS_PER_ITEM + SLOTS[modality]


class MilvusCollection:
    """The vectors one encoder (or one adapter build) produced, with the scalar fields searches filter on.

    Made by `multimodal.store.collection`; ``dim`` is None for a collection only read, cleared or dropped.
    ``record`` is kept with the collection when it is created here (what made its vectors; see `record`).
    """

    def __init__(self, name: str, dim: int | None = None, record: dict | None = None):
        self.name = name
        self.dim = dim
        self._record = record or {}

    def _known(self) -> tuple[str, str]:
        return str(settings.MILVUS_URI), self.name

    @_engine_errors
    def exists(self) -> bool:
        return self._known() in _ensured or engines.client().has_collection(self.name)

    def _loaded(self) -> bool:
        """Whether the collection exists; if it does, it is loaded (searchable) when this returns.

        Asks the engine once per process (and again after a failure): a collection reopened by a new
        process, or by a server that restarted, must be loaded before it can be read.
        """
        milvus = engines.client()
        known = _ensured.get(self._known())
        if known is not None and known[2] is milvus:
            return True
        if not milvus.has_collection(self.name):
            return False
        dim = self.describe()["dim"]
        properties = milvus.describe_collection(self.name).get("properties") or {}
        record = json.loads(properties.get(RECORD_PROPERTY) or "{}")
        milvus.load_collection(self.name)  # returns once loaded; a no-op when it already is
        self._catch_up(milvus)
        with _ensured_lock:
            _ensured[self._known()] = (dim, record, milvus)
        return True

    def _catch_up(self, milvus) -> None:
        """Return once every write acknowledged so far, by any process, is visible to this one's reads.

        A restarted server reports a collection loaded (and answers searches) before it has replayed
        the writes it had not sealed when it stopped: until then searches silently miss those items
        (seen: 0, then 4 of 16 results for half a minute). One Strong read waits for the replay; when
        it outlasts MILVUS_READ_TIMEOUT_S the caller is told the store is catching up, not given
        partial results, and the next call waits again.
        """
        started = time.monotonic()
        try:
            milvus.query(self.name, filter=_EVERYTHING, output_fields=["pk"], limit=1,
                         consistency_level=COUNT_CONSISTENCY, timeout=settings.MILVUS_READ_TIMEOUT_S)
        except Exception as exc:
            if time.monotonic() - started < settings.MILVUS_READ_TIMEOUT_S:
                raise  # a failure of its own, translated by the caller
            engine = engines.current()
            raise StoreUnavailable(
                f"the vector store ({engine.name}) is still catching up with the writes made before it restarted: "
                f"collection {self.name} is not complete yet; try again in a moment", engine=engine.name) from exc

    @_engine_errors
    def ensure(self) -> None:
        """Create the collection and its index if missing (loaded, ready to search); refuse one of another dimension."""
        if not self._loaded():
            if self.dim is None:
                raise StoreError(f"collection {self.name} was opened without a dimension and cannot be created")
            milvus = engines.client()
            self._create(milvus)
            with _ensured_lock:
                _ensured[self._known()] = (self.dim, self._record, milvus)
        known_dim = _ensured[self._known()][0]
        if self.dim is not None and known_dim != self.dim:
            raise StoreError(f"collection {self.name} holds {known_dim}-d vectors, not {self.dim}-d")

    def _create(self, milvus) -> None:
        from pymilvus import DataType, MilvusClient

        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("pk", DataType.INT64, is_primary=True)
        schema.add_field("item_id", DataType.INT64)
        schema.add_field("corpus_id", DataType.INT64)
        schema.add_field("kind", DataType.VARCHAR, max_length=KIND_MAX_LENGTH)
        schema.add_field("modality", DataType.VARCHAR, max_length=16)
        schema.add_field("created_at", DataType.INT64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        spec = VectorIndexSpec.configured()
        index_params = milvus.prepare_index_params()
        index_params.add_index(field_name="vector", index_type=spec.index_type, metric_type="COSINE",
                               params=spec.build_params)
        milvus.create_collection(self.name, schema=schema, properties={RECORD_PROPERTY: json.dumps(self._record)})
        # An empty collection's index is built once the engine has recorded it: pymilvus's wait for the build
        # (what create_collection with index_params does) sleeps half a second before it first looks.
        milvus.create_index(self.name, index_params, sync=False)
        milvus.load_collection(self.name)

    @_engine_errors
    def record(self) -> dict | None:
        """What the collection was created with (the ``record`` given then; {} for one created without),
        or None when it does not exist yet (it will be created with this handle's record)."""
        return _ensured[self._known()][1] if self._loaded() else None

    @_engine_errors
    def describe(self) -> dict:
        """{"dim", "index_type", "metric_type", "params"} of an existing collection."""
        milvus = engines.client()
        dim = next(int(field["params"]["dim"]) for field in milvus.describe_collection(self.name)["fields"]
                   if field["name"] == "vector")
        index = milvus.describe_index(self.name, "vector")
        params = {key: value for key, value in index.items()
                  if key not in ("index_type", "metric_type", "field_name", "index_name", "total_rows",
                                 "indexed_rows", "pending_index_rows", "state")}
        return {"dim": dim, "index_type": index.get("index_type"), "metric_type": index.get("metric_type"),
                "params": params}

    @_engine_errors
    def upsert(self, records: Iterable[VectorRecord]) -> int:
        rows = [
            {
                "pk": _row_key(record.item_id, record.modality),
                "item_id": record.item_id,
                "corpus_id": record.corpus_id,
                "kind": record.kind,
                "modality": record.modality,
                "created_at": int(record.created_at),
                # As an array: pymilvus packs it in one step (a list of floats costs it ~0.1 ms a row).
                "vector": np.asarray(record.vector, dtype=np.float32),
            }
            for record in records
        ]
        if not rows:
            return 0
        self.ensure()
        milvus = engines.client()
        stored = self._stored_keys(milvus, [row["pk"] for row in rows])
        new_rows = [row for row in rows if row["pk"] not in stored]
        if new_rows:
            milvus.insert(self.name, new_rows)
        if len(new_rows) < len(rows):
            milvus.upsert(self.name, [row for row in rows if row["pk"] in stored])
        return len(rows)

    def loads_files(self) -> bool:
        """Whether `load` imports files (rows by the hundred thousand are best) or upserts (any number)."""
        return engines.current().import_folder() is not None

    @_engine_errors
    def load(self, columns: VectorColumns, *, readable: bool = True, timeout_s: float = 1800.0) -> int:
        """Add many rows at once for items that hold no vector of ``columns.modality`` here yet (a fill, a new
        collection's build). Unlike `upsert`, nothing is looked up or replaced: a row already stored is doubled.

        An engine that imports files from this machine (the local server) reads the rows from numpy files
        written beside its data and cleared afterwards: pymilvus packs no row (~0.2 ms each at 512-d) and
        none passes through the server's write-ahead log (100k rows: ~9 s of the server's time, next to
        nothing of this process's). Each call makes segments of its own, so give it rows by the hundred
        thousand, not a few. Returns once reads see the rows (in any process), which for an import is once
        the server serves its segments (a few seconds after the import); with
        ``readable=False``, once the rows are stored (a fill that waits for its indexes at the end,
        `wait_indexed`, loses no time meanwhile). Other engines take the rows as upserts.
        """
        if not len(columns):
            return 0
        self.ensure()
        self._loadable(columns)
        folder = engines.current().import_folder()
        if folder is None:
            return self.upsert(columns.records())
        from pymilvus.client.types import BulkInsertState

        fields = {
            "pk": _row_key(np.asarray(columns.item_ids, dtype=np.int64), columns.modality),
            "item_id": np.asarray(columns.item_ids, dtype=np.int64),
            "corpus_id": np.asarray(columns.corpus_ids, dtype=np.int64),
            "kind": np.asarray(columns.kinds, dtype=str),
            "modality": np.full(len(columns), columns.modality),
            "created_at": np.asarray(columns.created_at, dtype=np.int64),
            "vector": np.ascontiguousarray(columns.vectors, dtype=np.float32),
        }
        batch = folder / f"{self.name}-{uuid.uuid4().hex}"
        batch.mkdir(parents=True)
        try:
            for field, values in fields.items():
                np.save(batch / f"{field}.npy", values)
            # pymilvus 3.0's MilvusClient imports only through the REST API of Milvus 2.4+; the gRPC call the
            # 2.3 server answers is its connection's (what the deprecated ORM's utility.do_bulk_insert wraps).
            connection = engines.client()._get_connection()
            task = connection.do_bulk_insert(self.name, "", [str(batch / f"{field}.npy") for field in fields])
            deadline = time.monotonic() + timeout_s
            ended = (BulkInsertState.ImportCompleted, BulkInsertState.ImportFailed,
                     BulkInsertState.ImportFailedAndCleaned)
            while (state := connection.get_bulk_insert_state(task)).state not in ended:
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"collection {self.name}: a bulk load of {len(columns)} rows did not end "
                                           f"within {timeout_s:.0f} s")
                time.sleep(0.2)
            if state.state != BulkInsertState.ImportCompleted:
                raise StoreError(f"collection {self.name}: the engine refused a bulk load of {len(columns)} rows: "
                                 f"{state.failed_reason or state.state_name}")
        finally:
            shutil.rmtree(batch, ignore_errors=True)
        if readable:
            self._wait_visible(fields["pk"], deadline)
        return len(columns)

    def _wait_visible(self, keys: np.ndarray, deadline: float) -> None:
        """Wait until reads see an import's rows: the server serves new segments when its query coordinator
        next updates what it serves. An import fills its segments in row order, so rows spread over it stand
        for them all."""
        sample = sorted({int(keys[position]) for position in np.linspace(0, len(keys) - 1, num=16).astype(int)})
        while len(engines.client().get(self.name, ids=sample, output_fields=["pk"],
                                       consistency_level=COUNT_CONSISTENCY)) < len(sample):
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"collection {self.name}: {len(keys)} loaded rows not readable in time")
            time.sleep(0.2)

    def _loadable(self, columns: VectorColumns) -> None:
        """Refuse what the collection cannot hold, naming it: a server's file import checks less than its inserts
        (a kind past its length is stored whole)."""
        dim = _ensured[self._known()][0]
        if columns.vectors.ndim != 2 or columns.vectors.shape[1] != dim:
            raise StoreError(f"collection {self.name} holds {dim}-d vectors; a load brought {columns.vectors.shape}")
        lengths = {len(columns.item_ids), len(columns.corpus_ids), len(columns.kinds), len(columns.created_at),
                   len(columns.vectors)}
        if len(lengths) != 1:
            raise StoreError(f"a load's columns differ in length ({sorted(lengths)}): one value per row in each")
        if columns.modality not in SLOTS:
            raise StoreError(f"a load's modality {columns.modality!r} is none of {sorted(SLOTS)}")
        too_long = next((kind for kind in columns.kinds if len(kind) > KIND_MAX_LENGTH), None)
        if too_long is not None:
            raise StoreError(f"a load's kind {too_long[:40]!r} is longer than {KIND_MAX_LENGTH} characters")

    def _stored_keys(self, milvus, keys: list[int]) -> set[int]:
        """Which of these row keys the collection holds, as this process sees it (its own writes at once,
        other processes' within about a second).

        Rows not stored yet are inserted, not upserted: a server's upsert deletes every key before
        writing it, and a segment whose rows were all "deleted" so is rewritten by the server's
        compaction and indexed a second time (an ingest of 100k new items: ~2 minutes of both cores,
        searches slowed throughout). Two processes writing the same new item within that second could
        both insert it; nothing in the product does (an item's vectors are written by its own job).
        """
        stored = set()
        for start in range(0, len(keys), _CHUNK):  # by key, as `vectors` reads
            rows = milvus.get(self.name, ids=keys[start:start + _CHUNK], output_fields=["pk"],
                              consistency_level=READ_CONSISTENCY)
            stored.update(row["pk"] for row in rows)
        return stored

    @_engine_errors
    def delete_items(self, item_ids: Iterable[int]) -> None:
        ids = sorted({int(item_id) for item_id in item_ids})
        if not ids or not self._loaded():
            return
        for start in range(0, len(ids), _CHUNK):
            engines.client().delete(self.name, filter=f"item_id in {ids[start:start + _CHUNK]}")

    @_engine_errors
    def delete_corpus(self, corpus_id: int) -> None:
        if self._loaded():
            engines.client().delete(self.name, filter=f"corpus_id == {int(corpus_id)}")

    @_engine_errors
    def clear(self) -> None:
        """Delete every row, keeping the collection and its index."""
        if self._loaded() and engines.client().query(self.name, filter=_EVERYTHING, output_fields=["pk"], limit=1,
                                                    consistency_level=READ_CONSISTENCY):
            engines.client().delete(self.name, filter=_EVERYTHING)

    @_engine_errors
    def flush(self) -> None:
        """Make every write so far visible to every reader, in any process, and fast to search.

        Callers flush after a batch of writes, before saying the work is done (a job, an index build).
        Milvus Lite brute-forces rows it has not flushed, so it flushes; a server indexes new rows as
        they come and seals them by size and time, but makes them visible to other processes only a
        moment later: a read at Strong consistency returns once they are.
        """
        if not self._loaded():
            return
        if engines.current().flushes:
            engines.client().flush(self.name)
        else:
            engines.client().query(self.name, filter=_EVERYTHING, output_fields=["pk"], limit=1,
                                   consistency_level=COUNT_CONSISTENCY)

    @_engine_errors
    def wait_indexed(self, timeout_s: float = 1800.0, *, compact: bool = False) -> None:
        """Flush and wait until the engine's vector index covers every row and searches use it (before timing
        searches).

        ``compact``: first ask for a merge of the segments a bulk write leaves, so that the server indexes
        what it merges once instead of merging it minutes later, beside the searches being timed. Milvus
        2.3 rewrites every segment on such a request (each indexed again) and merges a segment only once
        it is indexed: asking again after the index wait never settled at 1M (each request rewrote all),
        and the server may still merge the last segments later on its own.
        """
        if not self._loaded():
            return
        milvus = engines.client()
        milvus.flush(self.name)
        deadline = time.monotonic() + timeout_s
        if compact and engines.current().lists_segments:  # Milvus Lite has no compaction to wait for
            job = milvus.compact(self.name)
            while milvus.get_compaction_state(job) != "Completed":
                if time.monotonic() > deadline:
                    raise StoreUnavailable(f"collection {self.name}: segments not merged within {timeout_s:.0f} s")
                time.sleep(1.0)
        while True:
            index = milvus.describe_index(self.name, "vector")
            # Done when every row is indexed (``pending_index_rows`` can stay above 0 after that, while
            # the server compacts segments it has already indexed) and searches use those indexes.
            total_rows = int(index.get("total_rows", 0) or 0)
            if int(index.get("indexed_rows", 0) or 0) >= total_rows and self._indexes_loaded(milvus, total_rows):
                return
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"collection {self.name}: index not built within {timeout_s:.0f} s "
                                       f"({index.get('indexed_rows')} of {index.get('total_rows')} rows)")
            time.sleep(1.0)

    def _indexes_loaded(self, milvus, total_rows: int) -> bool:
        """Whether the segments searches read hold ``total_rows`` rows under their index. A server's query
        node loads a segment's new index seconds after it is built; until then it scans the segment
        (100k rows: 20-170 ms a search instead of 8-13). A segment too small to index is scanned for good."""
        if not engines.current().lists_segments:  # Milvus Lite: searches what it has indexed
            return True
        segments = milvus.list_loaded_segments(self.name)
        return sum(segment.num_rows for segment in segments
                   if segment.index_id or segment.num_rows < UNINDEXED_SEGMENT_ROWS) >= total_rows

    @_engine_errors
    def count(self, where: VectorFilter | None = None) -> int:
        """How many vectors (not items) the collection holds, or those matching ``where``, counting every
        write acknowledged so far (by any process)."""
        if not self._loaded():
            return 0
        result = engines.client().query(self.name, filter=expression(where), output_fields=["count(*)"],
                                         consistency_level=COUNT_CONSISTENCY)
        return int(result[0]["count(*)"])

    @_engine_errors
    def drop(self) -> None:
        if engines.client().has_collection(self.name):
            engines.client().drop_collection(self.name)
        with _ensured_lock:
            _ensured.pop(self._known(), None)

    @_engine_errors
    def search(self, query_vector: np.ndarray, *, limit: int, where: VectorFilter | None = None) -> list[VectorHit]:
        """Items nearest to ``query_vector``, best first, one hit per item (its best vector)."""
        if limit <= 0 or (where is not None and where.matches_nothing) or not self._loaded():
            return []
        # An item may own several vectors: over-fetch, then keep each item's best row.
        fetch = min(limit * 2, 16384)
        search_params = dict(VectorIndexSpec.configured().search_params)
        if "ef" in search_params:
            search_params["ef"] = max(int(search_params["ef"]), fetch)
        results = engines.client().search(
            self.name,
            data=[np.asarray(query_vector, dtype=np.float32).tolist()],
            limit=fetch,
            filter=expression(where),
            output_fields=["item_id", "modality"],
            search_params={"metric_type": "COSINE", "params": search_params},
            consistency_level=READ_CONSISTENCY,
            timeout=settings.MILVUS_READ_TIMEOUT_S,
        )
        best: dict[int, VectorHit] = {}
        for row in results[0]:
            entity = row["entity"]
            hit = VectorHit(item_id=int(entity["item_id"]), score=float(row["distance"]), modality=entity["modality"])
            if hit.item_id not in best or hit.score > best[hit.item_id].score:
                best[hit.item_id] = hit
        return sorted(best.values(), key=lambda hit: (-hit.score, hit.item_id))[:limit]

    @_engine_errors
    def item_ids(self, where: VectorFilter | None = None, *, batch_size: int = 10_000,
                 on_rows: Callable[[int], None] | None = None) -> np.ndarray:
        """The ids of the items holding at least one vector here (or one matching ``where``), sorted,
        counting every write acknowledged so far (by any process).

        Read ``batch_size`` rows at a time (only their keys, not their vectors), so a collection of
        millions of vectors costs 8 bytes a row in memory, not a copy of its rows; ``on_rows(read)``
        is called after each batch with the rows read so far.
        """
        if not self._loaded():
            return np.empty(0, dtype=np.int64)
        chunks, read = [], 0
        # The Milvus versions here do not report an iterator's snapshot time; pymilvus then reads at its own
        # clock's time (the same, after the Strong read asked for) and warns each time. Set here, after
        # pymilvus's own logging set-up has run (it resets its loggers' levels when imported).
        logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
        iterator = engines.client().query_iterator(
            self.name, batch_size=batch_size, filter=expression(where) or _EVERYTHING, output_fields=["pk"],
            consistency_level=COUNT_CONSISTENCY,
        )
        try:
            while rows := iterator.next():
                chunks.append(np.fromiter((row["pk"] for row in rows), dtype=np.int64, count=len(rows)))
                read += len(rows)
                if on_rows:
                    on_rows(read)
        finally:
            iterator.close()
        keys = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
        return np.unique(keys // SLOTS_PER_ITEM)

    @_engine_errors
    def vectors(self, item_ids: Iterable[int]) -> dict[int, dict[str, np.ndarray]]:
        """The stored vectors of these items: {item id: {modality: unit vector}}."""
        ids = sorted({int(item_id) for item_id in item_ids})
        if not ids or not self._loaded():
            return {}
        found: dict[int, dict[str, np.ndarray]] = {}
        for start in range(0, len(ids), _CHUNK):
            keys = [_row_key(item_id, modality) for item_id in ids[start:start + _CHUNK] for modality in SLOTS]
            for row in engines.client().get(self.name, ids=keys, output_fields=["item_id", "modality", "vector"],
                                            consistency_level=READ_CONSISTENCY, timeout=settings.MILVUS_READ_TIMEOUT_S):
                found.setdefault(int(row["item_id"]), {})[row["modality"]] = np.asarray(row["vector"], dtype=np.float32)
        return found


@_engine_errors
def collection_names(prefix: str) -> list[str]:
    """Every collection of the engine whose name starts with ``prefix``."""
    return [name for name in engines.client().list_collections() if name.startswith(prefix)]


def forget_ensured() -> None:
    with _ensured_lock:
        _ensured.clear()
