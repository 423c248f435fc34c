"""The vector store: the only module that talks to pymilvus.

``settings.MILVUS_URI`` picks the backend and nothing else changes: a filesystem path opens Milvus
Lite embedded in this process; ``http://host:19530`` talks to a Milvus server (``milvus-lite
server``, standalone or distributed). There is one collection per encoder; its name carries the
model name and dimension, so vectors from one model are never searched with another's.

Each item may own several vectors (an image and a text description, later speech segments); a
row's primary key is derived from the item id and the vector's slot so re-indexing an item
overwrites its rows instead of adding new ones.
"""
import hashlib
import re
import threading
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from django.conf import settings
from pymilvus import DataType, MilvusClient

# Bumped when the collection's fields change: a new name, so `reindex` rebuilds rather than mixes.
SCHEMA_VERSION = 2
SLOTS_PER_ITEM = 16
SLOTS = {"image": 0, "text": 1}
DEFAULT_INDEX_PARAMS = {"HNSW": {"M": 16, "efConstruction": 200}, "IVF_FLAT": {"nlist": 2048}, "IVF_SQ8": {"nlist": 2048}}
DEFAULT_SEARCH_PARAMS = {"HNSW": {"ef": 64}, "IVF_FLAT": {"nprobe": 10}, "IVF_SQ8": {"nprobe": 10}}
# Filters go through these scalar fields only: JSON-field filters scan every row in Milvus Lite.
FILTER_FIELDS = ("item_id", "corpus_id", "kind", "modality", "created_at")
_DELETE_CHUNK = 1000


class StoreError(RuntimeError):
    """The vector store refused an operation or holds a collection of the wrong shape."""


@dataclass(frozen=True)
class VectorRecord:
    item_id: int
    corpus_id: int
    kind: str
    modality: str  # which of the item's vectors this is: a key of SLOTS
    vector: np.ndarray
    created_at: int = 0  # the item's creation time, Unix seconds (date filters)


@dataclass(frozen=True)
class VectorHit:
    item_id: int
    score: float  # cosine similarity, higher is closer
    modality: str


@dataclass(frozen=True)
class VectorFilter:
    """What a search may return; every field narrows it (None: no constraint)."""

    corpus_ids: list[int] | None = None
    kinds: list[str] | None = None
    created_from: int | None = None  # Unix seconds, inclusive
    created_to: int | None = None  # Unix seconds, exclusive
    item_ids: list[int] | None = None  # only these (a pre-filter computed in the database)
    exclude_item_ids: list[int] | None = None
    modalities: list[str] | None = None  # only these of an item's vectors (keys of SLOTS)

    def expression(self) -> str:
        """A Milvus boolean expression over scalar fields only (JSON filters scan every row)."""
        clauses = []
        if self.corpus_ids is not None:
            clauses.append(f"corpus_id in {[int(value) for value in self.corpus_ids]}")
        if self.kinds is not None:
            quoted = ", ".join('"' + re.sub(r"[^a-z_]", "", kind) + '"' for kind in self.kinds)
            clauses.append(f"kind in [{quoted}]")
        if self.created_from is not None:
            clauses.append(f"created_at >= {int(self.created_from)}")
        if self.created_to is not None:
            clauses.append(f"created_at < {int(self.created_to)}")
        if self.item_ids is not None:
            clauses.append(f"item_id in {[int(value) for value in self.item_ids]}")
        if self.exclude_item_ids:
            clauses.append(f"item_id not in {[int(value) for value in self.exclude_item_ids]}")
        if self.modalities is not None:
            clauses.append("modality in [" + ", ".join(f'"{value}"' for value in self.modalities if value in SLOTS) + "]")
        return " and ".join(clauses)


_clients: dict[str, MilvusClient] = {}
_clients_lock = threading.Lock()


def client() -> MilvusClient:
    """The process-wide client for the configured URI (Milvus Lite allows one process per data dir)."""
    uri = str(settings.MILVUS_URI)
    with _clients_lock:
        if uri not in _clients:
            _clients[uri] = MilvusClient(uri=uri, token=settings.MILVUS_TOKEN or "")
        return _clients[uri]


def close_all() -> None:
    """Close every open client (tests switch data directories; Lite releases its lock here)."""
    with _clients_lock:
        for open_client in _clients.values():
            open_client.close()
        _clients.clear()


def collection_name(encoder_name: str, dim: int, variant: str = "") -> str:
    """A valid Milvus name that is unique per (model, dim) and still readable.

    ``variant`` names another collection of the same model's space (an adapter's index build).
    """
    slug = re.sub(r"[^0-9a-zA-Z]+", "_", encoder_name).strip("_").lower()[:60]
    digest = hashlib.sha1(encoder_name.encode()).hexdigest()[:8]
    suffix = f"_{re.sub(r'[^0-9a-zA-Z_]+', '_', variant)}" if variant else ""
    return f"{settings.MILVUS_COLLECTION_PREFIX}_{slug}_{dim}d_{digest}_v{SCHEMA_VERSION}{suffix}"


class VectorCollection:
    """The vectors one encoder produced, with the scalar fields searches filter on."""

    def __init__(self, name: str, dim: int):
        self.name = name
        self.dim = dim
        self._ready = False

    @property
    def index_type(self) -> str:
        return settings.MILVUS_INDEX_TYPE

    def ensure(self) -> None:
        """Create the collection and its index if missing; refuse one of another dimension."""
        if self._ready:
            return
        milvus = client()
        if milvus.has_collection(self.name):
            existing_dim = next(
                field["params"].get("dim")
                for field in milvus.describe_collection(self.name)["fields"]
                if field["name"] == "vector"
            )
            if int(existing_dim) != self.dim:
                raise StoreError(f"collection {self.name} holds {existing_dim}-d vectors, not {self.dim}-d")
            # A collection reopened by a new process (or released by a server) must be loaded to search.
            milvus.load_collection(self.name)
        else:
            schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
            schema.add_field("pk", DataType.INT64, is_primary=True)
            schema.add_field("item_id", DataType.INT64)
            schema.add_field("corpus_id", DataType.INT64)
            schema.add_field("kind", DataType.VARCHAR, max_length=32)
            schema.add_field("modality", DataType.VARCHAR, max_length=16)
            schema.add_field("created_at", DataType.INT64)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
            index_params = milvus.prepare_index_params()
            index_params.add_index(
                field_name="vector",
                index_type=self.index_type,
                metric_type="COSINE",
                params=settings.MILVUS_INDEX_PARAMS or DEFAULT_INDEX_PARAMS.get(self.index_type, {}),
            )
            milvus.create_collection(self.name, schema=schema, index_params=index_params)
        self._ready = True

    def upsert(self, records: Iterable[VectorRecord]) -> int:
        rows = [
            {
                "pk": record.item_id * SLOTS_PER_ITEM + SLOTS[record.modality],
                "item_id": record.item_id,
                "corpus_id": record.corpus_id,
                "kind": record.kind,
                "modality": record.modality,
                "created_at": int(record.created_at),
                "vector": np.asarray(record.vector, dtype=np.float32).tolist(),
            }
            for record in records
        ]
        if not rows:
            return 0
        self.ensure()
        client().upsert(self.name, rows)
        return len(rows)

    def delete_items(self, item_ids: Iterable[int]) -> None:
        ids = sorted({int(item_id) for item_id in item_ids})
        if not ids or not client().has_collection(self.name):
            return
        for start in range(0, len(ids), _DELETE_CHUNK):
            client().delete(self.name, filter=f"item_id in {ids[start:start + _DELETE_CHUNK]}")

    def delete_corpus(self, corpus_id: int) -> None:
        if client().has_collection(self.name):
            client().delete(self.name, filter=f"corpus_id == {int(corpus_id)}")

    def flush(self) -> None:
        if client().has_collection(self.name):
            client().flush(self.name)

    def count(self, where: VectorFilter | None = None) -> int:
        """How many vectors (not items) the collection holds, or those matching ``where``."""
        if not client().has_collection(self.name):
            return 0
        result = client().query(self.name, filter=where.expression() if where else "", output_fields=["count(*)"])
        return int(result[0]["count(*)"])

    def drop(self) -> None:
        if client().has_collection(self.name):
            client().drop_collection(self.name)
        self._ready = False

    def search(self, query_vector: np.ndarray, *, limit: int, where: VectorFilter | None = None) -> list[VectorHit]:
        """Items nearest to ``query_vector``, best first, one hit per item (its best vector)."""
        if limit <= 0 or not client().has_collection(self.name):
            return []
        if where is not None and where.item_ids is not None and not where.item_ids:
            return []  # a pre-filter that matched nothing
        self.ensure()
        # An item may own several vectors: over-fetch, then keep each item's best row.
        fetch = min(limit * 2, 16384)
        search_params = dict(settings.MILVUS_SEARCH_PARAMS or DEFAULT_SEARCH_PARAMS.get(self.index_type, {}))
        if "ef" in search_params:
            search_params["ef"] = max(int(search_params["ef"]), fetch)
        results = client().search(
            self.name,
            data=[np.asarray(query_vector, dtype=np.float32).tolist()],
            limit=fetch,
            filter=where.expression() if where else "",
            output_fields=["item_id", "modality"],
            search_params={"metric_type": "COSINE", "params": search_params},
        )
        best: dict[int, VectorHit] = {}
        for row in results[0]:
            entity = row["entity"]
            hit = VectorHit(item_id=int(entity["item_id"]), score=float(row["distance"]), modality=entity["modality"])
            if hit.item_id not in best or hit.score > best[hit.item_id].score:
                best[hit.item_id] = hit
        return sorted(best.values(), key=lambda hit: (-hit.score, hit.item_id))[:limit]

    def vectors(self, item_ids: Iterable[int]) -> dict[int, dict[str, np.ndarray]]:
        """The stored vectors of these items: {item id: {modality: unit vector}}."""
        ids = sorted({int(item_id) for item_id in item_ids})
        if not ids or not client().has_collection(self.name):
            return {}
        self.ensure()
        found: dict[int, dict[str, np.ndarray]] = {}
        for start in range(0, len(ids), _DELETE_CHUNK):
            chunk = ids[start:start + _DELETE_CHUNK]
            pks = [item_id * SLOTS_PER_ITEM + slot for item_id in chunk for slot in SLOTS.values()]
            for row in client().get(self.name, ids=pks, output_fields=["item_id", "modality", "vector"]):
                found.setdefault(int(row["item_id"]), {})[row["modality"]] = np.asarray(row["vector"], dtype=np.float32)
        return found


def collection_for(encoder) -> VectorCollection:
    """The collection that holds (and is searched with) vectors from ``encoder``."""
    return VectorCollection(collection_name(encoder.name, encoder.dim), encoder.dim)


def items_delete_everywhere(item_ids: list[int]) -> None:
    """Remove the items' vectors from every collection of ours, whichever model made them."""
    prefix = f"{settings.MILVUS_COLLECTION_PREFIX}_"
    for name in client().list_collections():
        if name.startswith(prefix):
            VectorCollection(name, dim=0).delete_items(item_ids)
