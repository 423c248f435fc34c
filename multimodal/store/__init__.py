"""The vector store: the only package that knows which engine holds the vectors.

``settings.MILVUS_URI`` picks the engine and nothing else changes (see `engines`): ``local:DIR``
(the default) is a Milvus standalone server the product runs itself and every process shares;
``http(s)://host:port`` a Milvus server run elsewhere (compose, a cluster, a cloud); a filesystem
path is Milvus Lite embedded in one process. Callers use the neutral values of `types`
(`VectorRecord`, `VectorFilter`, `VectorHit`), get collections from the factories below, and see
engine failures only as `StoreUnavailable`.

There is one collection per encoder; its name carries the model name and dimension, so vectors
from one model are never searched with another's. Each item may own several vectors (an image and
a text); a row's key is derived from the item id and the vector's slot, so re-indexing an item
overwrites its rows instead of adding new ones.
"""
import hashlib
import re
from typing import Iterable

from django.conf import settings

from . import engines
from .milvus import MilvusCollection as VectorCollection
from .milvus import collection_names, forget_ensured
from .types import (SLOTS, EngineStatus, StoreError, StoreUnavailable, VectorColumns, VectorFilter, VectorHit,
                    VectorRecord)

__all__ = [
    "SLOTS", "EngineStatus", "StoreError", "StoreUnavailable", "VectorCollection", "VectorColumns", "VectorFilter",
    "VectorHit", "VectorRecord", "close_all", "collection", "collection_for", "collection_name", "collections_with_prefix",
    "engine_serving", "engine_start", "engine_status", "engine_stop", "items_delete_everywhere", "unavailable_message",
]

# Bumped when the collection's fields change: a new name, so `reindex` rebuilds rather than mixes.
SCHEMA_VERSION = 2


def collection_name(encoder_name: str, dim: int, variant: str = "") -> str:
    """A valid Milvus name that is unique per (model, dim) and still readable.

    ``variant`` names another collection of the same model's space (an adapter's index build).
    """
    slug = re.sub(r"[^0-9a-zA-Z]+", "_", encoder_name).strip("_").lower()[:60]
    digest = hashlib.sha1(encoder_name.encode()).hexdigest()[:8]
    suffix = f"_{re.sub(r'[^0-9a-zA-Z_]+', '_', variant)}" if variant else ""
    return f"{settings.MILVUS_COLLECTION_PREFIX}_{slug}_{dim}d_{digest}_v{SCHEMA_VERSION}{suffix}"


def collection(name: str, dim: int | None = None, record: dict | None = None) -> VectorCollection:
    """The collection called ``name``; give ``dim`` to create it on first write (None: read, clear or drop only),
    and ``record`` to keep with it when it is created (read back with ``.record()``)."""
    return VectorCollection(name, dim, record)


def collection_for(encoder, record: dict | None = None) -> VectorCollection:
    """The collection that holds (and is searched with) vectors from ``encoder``; ``record``: what made them."""
    return collection(collection_name(encoder.name, encoder.dim), encoder.dim, record)


def collections_with_prefix(prefix: str | None = None) -> list[VectorCollection]:
    """Every collection whose name starts with ``prefix`` (default: ours, MILVUS_COLLECTION_PREFIX)."""
    prefix = f"{settings.MILVUS_COLLECTION_PREFIX}_" if prefix is None else prefix
    return [collection(name) for name in collection_names(prefix)]


def items_delete_everywhere(item_ids: Iterable[int]) -> None:
    """Remove the items' vectors from every collection of ours, whichever model made them."""
    item_ids = list(item_ids)
    for found in collections_with_prefix():
        found.delete_items(item_ids)


def unavailable_message(exc: StoreUnavailable) -> str:
    """What anyone may be told when the store is down: which engine, and to try again; never its address or
    folder (the exception's own message, for operators, names those)."""
    engine = exc.engine or engines.current().name
    return f"the vector store ({engine}) is unavailable: it did not answer, try again shortly"


def engine_status() -> EngineStatus:
    """Which engine the configured URI names, whether it runs, and its process when it is on this machine."""
    return engines.current().status()


def engine_start(on_wait=None) -> EngineStatus:
    """Connect to the engine, starting it first when the product runs it (the local server);
    ``on_wait()`` is called now and then while it starts."""
    engines.current().start(on_wait=on_wait)
    return engine_status()


def engine_serving():
    """A context manager: the engine answers other processes inside it; yields the MILVUS_URI they use.

    The local server is started if needed (and stopped afterwards only if it was started here); Milvus
    Lite is served by a `milvus-lite server` over the same folder; a remote server is used as it is.
    """
    return engines.current().serving()


def engine_stop() -> bool:
    """Stop the local server (other engines are not ours to stop); False when nothing was stopped."""
    close_all()
    return engines.current().stop()


def close_all() -> None:
    """Close every open client (tests switch data folders; Milvus Lite releases its lock here)."""
    engines.close_all()
    forget_ensured()
