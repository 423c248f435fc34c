"""Keeping the vector store in step with the database, which is the source of truth.

The two drift apart when the store is unavailable at the wrong moment:

- rows without vectors: an ingest saved its items, then could not write their vectors (its job
  fails once its retries run out; the items stay in the database);
- vectors without rows: items, or a whole corpus, were deleted while their vectors could not be.

Deletions the store refuses as unavailable are queued (`PendingVectorDeletion`) instead of lost, and
applied by the next successful store write (`services.vectors`), by ``store_check(repair=True)``
and by its periodic run. `store_check` finds whatever drifted anyway, both ways, in every collection
of ours; with ``repair`` it re-embeds the items without vectors from their stored originals (through
the same service as ``reindex``) and deletes the orphan vectors.

A check lists the store before it reads the database: an item's row is committed before its vectors
are written, so every vector listed belongs to a row the later read sees unless the row is really
gone; and the database is asked once more right before orphans are deleted.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np
from django.db.models import QuerySet

from .. import encoders, store
from ..models import PARENT_KINDS, Corpus, IndexBuild, Item, PendingVectorDeletion
from .ingest import IngestFailure
from .indexing import items_reindex
from .vectors import QUEUE_CHUNK, pending_deletions_apply

logger = logging.getLogger(__name__)

# Ids shown per list in reports; the counts are always exact.
SHOWN_IDS = 20

# (stage, done, total): "list <collection>" counts vectors read, "re-embed" items, "delete orphans" items.
StoreProgress = Callable[[str, int, int], None]


@dataclass
class CollectionDrift:
    """One collection compared with the database."""

    name: str
    role: str  # what it holds, as shown to people
    items_with_vectors: int
    missing: np.ndarray  # ids of items that should have vectors here and have none
    orphans: np.ndarray  # ids of items holding vectors here whose rows are gone
    checks_missing: bool  # False: only orphans are looked for (another encoder's vectors, a build still running)


@dataclass
class StoreDrift:
    """What `store_check` found and, with ``repair``, did about it."""

    collections: list[CollectionDrift] = field(default_factory=list)
    orphan_collections: list[str] = field(default_factory=list)  # index build collections no build uses
    skipped_collections: list[str] = field(default_factory=list)  # an older schema's: not read
    pending_deletions: int = 0  # queued deletions found before the check
    repaired: bool = False
    pending_applied: int = 0
    reembedded: int = 0
    orphans_deleted: int = 0
    collections_dropped: int = 0
    failures: list[IngestFailure] = field(default_factory=list)  # items that could not be re-embedded

    @property
    def missing_items(self) -> np.ndarray:
        return _union(drift.missing for drift in self.collections)

    @property
    def orphan_items(self) -> np.ndarray:
        return _union(drift.orphans for drift in self.collections)

    @property
    def found(self) -> bool:
        """Whether anything had drifted (before any repair)."""
        return bool(self.missing_items.size or self.orphan_items.size or self.orphan_collections
                    or self.pending_deletions)

    @property
    def in_step(self) -> bool:
        """Whether the store matches the database now: nothing drifted, or a repair fixed all of it."""
        return not self.found or (self.repaired and not self.failures)

    def summary(self) -> str:
        """One line: what drifted and what was done, as a command or the admin says it."""
        parts = [f"{self.missing_items.size} items without vectors", f"{self.orphan_items.size} items' vectors "
                 f"without rows"]
        if self.orphan_collections:
            parts.append(f"{len(self.orphan_collections)} collections no index build uses")
        if self.pending_deletions:
            parts.append(f"{self.pending_deletions} queued deletions")
        line = ", ".join(parts)
        if self.repaired:
            line += (f"; repaired: {self.reembedded} items re-embedded, {self.orphans_deleted} items' orphan vectors "
                     f"deleted, {self.pending_applied} queued deletions applied")
            if self.collections_dropped:
                line += f", {self.collections_dropped} collections dropped"
            if self.failures:
                line += f"; {len(self.failures)} items could not be re-embedded"
        return line


def _union(arrays: Iterable[np.ndarray]) -> np.ndarray:
    arrays = [array for array in arrays if array.size]
    return np.unique(np.concatenate(arrays)) if arrays else np.empty(0, dtype=np.int64)


def store_check(*, repair: bool, corpora: QuerySet[Corpus] | list[Corpus] | None = None, reembed: bool = True,
                progress: StoreProgress | None = None) -> StoreDrift:
    """Compare every collection of ours with the database; with ``repair``, make them agree.

    Per collection: the configured encoder's own collection must hold a vector for every item that
    owns one (every kind but recordings, videos and documents, whose children own theirs); a ready index build, for every
    such item of its corpus. Every collection is searched for vectors of items that no longer exist.
    Index build collections no build uses are reported (and dropped by a repair), and so are queued
    deletions. ``corpora`` narrows the check to their items and vectors (orphans of a deleted corpus
    are then out of sight: check everything to find those).

    Repair applies the queued deletions, re-embeds the items without vectors from their stored
    originals (an item whose original is unreadable is reported in ``failures``, never deleted),
    deletes the orphans' vectors and drops the unused build collections; with ``reembed`` False the
    items without vectors are only reported (``reindex`` has just tried them). Raises StoreUnavailable
    when the store cannot be reached (nothing is changed in the database then).
    """
    drift = StoreDrift(repaired=repair)
    corpus_ids = None if corpora is None else sorted(corpus.pk for corpus in corpora)
    if repair:
        drift.pending_applied = pending_deletions_apply()
    drift.pending_deletions = PendingVectorDeletion.objects.count() + drift.pending_applied
    encoder = encoders.get()
    base_name = store.collection_name(encoder.name, encoder.dim)
    listed = {found.name for found in store.collections_with_prefix()}
    # Read after the listing (see the module's docstring): a build created meanwhile is known here.
    builds = {build.collection_name: build for build in IndexBuild.objects.filter(
        status__in=[IndexBuild.Status.BUILDING, IndexBuild.Status.READY]).select_related("corpus")}
    # Collections that must exist are checked even when they do not (a lost store: every item is missing).
    names = sorted(listed | {base_name} | {name for name, build in builds.items()
                                           if build.encoder_name == encoder.name
                                           and build.status == IndexBuild.Status.READY})
    current_schema = re.compile(rf"_v{store.SCHEMA_VERSION}(_|$)")
    plans = []
    for name in names:
        if not current_schema.search(name):
            drift.skipped_collections.append(name)
        elif name == base_name:
            plans.append((name, "base vectors of the configured encoder", True, corpus_ids))
        elif name in builds:
            build = builds[name]
            if corpus_ids is not None and build.corpus_id not in corpus_ids:
                continue
            usable = build.encoder_name == encoder.name and build.status == IndexBuild.Status.READY
            plans.append((name, f"index build {build.pk} of corpus '{build.corpus}' ({build.status})", usable,
                          [build.corpus_id]))
        elif name.endswith(f"_v{store.SCHEMA_VERSION}"):
            plans.append((name, "base vectors of another encoder", False, corpus_ids))
        elif corpus_ids is None:
            drift.orphan_collections.append(name)
    for name, role, checks_missing, scope in plans:
        drift.collections.append(_collection_check(name, role, checks_missing, scope, progress))
    if repair:
        _repair(drift, reembed, progress)
    return drift


def _collection_check(name: str, role: str, checks_missing: bool, corpus_ids: list[int] | None,
                      progress: StoreProgress | None) -> CollectionDrift:
    collection = store.collection(name)
    where = store.VectorFilter(corpus_ids=corpus_ids) if corpus_ids is not None else None
    stage = f"list {name}"
    total = collection.count(where)
    if progress:
        progress(stage, 0, total)
    # The store first: see the module's docstring.
    held = collection.item_ids(where, on_rows=(lambda read: progress(stage, read, total)) if progress else None)
    items = Item.objects.all() if corpus_ids is None else Item.objects.filter(corpus_id__in=corpus_ids)
    rows = _ids(items)
    orphans = np.setdiff1d(held, rows, assume_unique=True)
    missing = np.empty(0, dtype=np.int64)
    if checks_missing:
        missing = np.setdiff1d(_ids(items.exclude(kind__in=PARENT_KINDS)), held, assume_unique=True)
    return CollectionDrift(name=name, role=role, items_with_vectors=int(held.size), missing=missing,
                           orphans=orphans, checks_missing=checks_missing)


def _ids(items: QuerySet[Item]) -> np.ndarray:
    """The items' ids, sorted (8 bytes each however many there are)."""
    return np.fromiter(items.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=10_000), dtype=np.int64)


def _repair(drift: StoreDrift, reembed: bool, progress: StoreProgress | None) -> None:
    missing = drift.missing_items
    if missing.size and reembed:
        total = int(missing.size)
        report = items_reindex(
            items=Item.objects.filter(pk__in=missing.tolist()),
            on_progress=(lambda done, so_far: progress("re-embed", done, total)) if progress else None,
        )
        drift.reembedded = report.updated
        drift.failures = report.failures
    deleted = []
    for collection_drift in drift.collections:
        orphans = collection_drift.orphans
        if not orphans.size:
            continue
        # Asked again right before deleting: rows are the truth, and a vector with a row is never deleted.
        existing = np.fromiter(Item.objects.filter(pk__in=orphans.tolist()).values_list("pk", flat=True),
                               dtype=np.int64)
        gone = np.setdiff1d(orphans, existing)
        stage = f"delete orphans in {collection_drift.name}"
        collection = store.collection(collection_drift.name)
        for start in range(0, int(gone.size), QUEUE_CHUNK):
            if progress:
                progress(stage, start, int(gone.size))
            collection.delete_items(gone[start:start + QUEUE_CHUNK].tolist())
        if progress:
            progress(stage, int(gone.size), int(gone.size))
        collection.flush()
        deleted.append(gone)
    drift.orphans_deleted = int(_union(deleted).size)
    for name in drift.orphan_collections:
        store.collection(name).drop()
        drift.collections_dropped += 1
