"""The store's neutral values: what callers write, read and filter with, whichever engine runs."""
from dataclasses import dataclass

import numpy as np

# Which of an item's vectors a row is; the slot number is part of the row's key.
SLOTS = {"image": 0, "text": 1}


class StoreError(RuntimeError):
    """The vector store refused an operation or holds a collection of the wrong shape."""


class StoreUnavailable(StoreError):
    """The vector store could not be reached or failed to answer: it may work again later.

    The message is for operators (it may name the engine's address or folder); ``engine`` names the
    kind of engine (milvus-lite, milvus-local, milvus-server) for messages shown to anyone.
    """

    def __init__(self, message: str = "", *, engine: str = ""):
        super().__init__(message)
        self.engine = engine


@dataclass(frozen=True)
class VectorRecord:
    item_id: int
    corpus_id: int
    kind: str
    modality: str  # which of the item's vectors this is: a key of SLOTS
    vector: np.ndarray
    created_at: int = 0  # the item's creation time, Unix seconds (date filters)


@dataclass(frozen=True)
class VectorColumns:
    """Many rows of one modality as columns, for a bulk load (`VectorCollection.load`): row i is item
    ``item_ids[i]`` of corpus ``corpus_ids[i]``, its kind, creation time (Unix seconds) and vector."""

    item_ids: np.ndarray  # int64, one per row
    corpus_ids: np.ndarray  # int64
    kinds: list[str]
    created_at: np.ndarray  # int64
    vectors: np.ndarray  # float32, rows x dim
    modality: str = "text"  # a key of SLOTS, the same for every row

    def __len__(self) -> int:
        return len(self.item_ids)

    def records(self) -> list[VectorRecord]:
        return [VectorRecord(item_id=int(item_id), corpus_id=int(corpus_id), kind=kind, modality=self.modality,
                             vector=vector, created_at=int(created))
                for item_id, corpus_id, kind, created, vector
                in zip(self.item_ids, self.corpus_ids, self.kinds, self.created_at, self.vectors)]


@dataclass(frozen=True)
class VectorHit:
    item_id: int
    score: float  # cosine similarity, higher is closer
    modality: str


@dataclass(frozen=True)
class VectorFilter:
    """What a search may return; every field narrows it (None: no constraint).

    A plain value: each engine translates it into its own filter language.
    """

    corpus_ids: list[int] | None = None
    kinds: list[str] | None = None
    created_from: int | None = None  # Unix seconds, inclusive
    created_to: int | None = None  # Unix seconds, exclusive
    item_ids: list[int] | None = None  # only these (a pre-filter computed in the database)
    exclude_item_ids: list[int] | None = None
    modalities: list[str] | None = None  # only these of an item's vectors (keys of SLOTS)

    @property
    def matches_nothing(self) -> bool:
        return self.item_ids is not None and not self.item_ids


@dataclass(frozen=True)
class EngineStatus:
    """Which engine serves the store, where, and its process when it runs on this machine."""

    engine: str  # "milvus-lite" (embedded), "milvus-local" (a standalone server we run), "milvus-server"
    uri: str  # as configured (MILVUS_URI)
    address: str  # what pymilvus connects to
    running: bool
    pid: int | None = None  # the engine's process, None when it is remote
    version: str = ""
    detail: str = ""  # why it is not running, or where its data and log are
    shared: bool = True  # other processes may use it at the same time (Milvus Lite: one process only)
