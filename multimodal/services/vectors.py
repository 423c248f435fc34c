"""Writing and deleting vectors so that an unavailable store loses nothing.

Vectors are written through `vectors_write`, which also applies the deletions queued while the store
was down (`PendingVectorDeletion`): a store that takes writes again takes those too, not only at the
next `store_check`. Deletions the store refuses as unavailable are queued instead of lost.
"""
import logging
from typing import Iterable

from django.db.models import F

from .. import store
from ..models import Item, PendingVectorDeletion
from ..retrieval import indexes

logger = logging.getLogger(__name__)

# Item ids per queued deletion row (a corpus of a million items is a hundred rows, not one huge one).
QUEUE_CHUNK = 10_000


def vectors_write(records: list[store.VectorRecord]) -> int:
    """Write base vectors to every index of their corpus (`indexes.vectors_upsert`), then apply queued
    deletions, since the store takes writes again. Returns base rows written."""
    records = list(records)
    written = indexes.vectors_upsert(records)
    if records:
        pending_deletions_apply_if_any()
    return written


def vectors_delete_or_queue(*, item_ids: Iterable[int]) -> None:
    """Delete these (deleted) items' vectors from every collection of ours; queue the deletion if the store
    is unavailable, so it is applied once the store is back rather than left behind."""
    item_ids = sorted({int(item_id) for item_id in item_ids})
    if not item_ids:
        return
    try:
        store.items_delete_everywhere(item_ids)
    except store.StoreUnavailable as exc:
        PendingVectorDeletion.objects.bulk_create([
            PendingVectorDeletion(item_ids=item_ids[start:start + QUEUE_CHUNK], last_error=str(exc))
            for start in range(0, len(item_ids), QUEUE_CHUNK)
        ])
        logger.warning("the vectors of %d deleted items are queued for deletion: %s", len(item_ids), exc)
        return
    pending_deletions_apply_if_any()


def collection_drop_or_queue(*, name: str) -> None:
    """Drop a collection (an index build's); queue the drop if the store is unavailable."""
    try:
        store.collection(name).drop()
    except store.StoreUnavailable as exc:
        PendingVectorDeletion.objects.create(collection=name, drop_collection=True, last_error=str(exc))
        logger.warning("dropping collection %s is queued: %s", name, exc)


def pending_deletions_apply() -> int:
    """Apply the queued deletions, oldest first, and remove each one applied; returns how many were applied.

    Stops at the first that fails because the store is unavailable (it stays queued, with one more
    attempt and its error). Ids of items that exist again are skipped: vectors of a row are never deleted.
    """
    applied = 0
    for pending in PendingVectorDeletion.objects.order_by("pk"):
        try:
            if pending.drop_collection:
                store.collection(pending.collection).drop()
            else:
                existing = set(Item.objects.filter(pk__in=pending.item_ids).values_list("pk", flat=True))
                gone = [item_id for item_id in pending.item_ids if item_id not in existing]
                if pending.collection:
                    store.collection(pending.collection).delete_items(gone)
                else:
                    store.items_delete_everywhere(gone)
        except store.StoreUnavailable as exc:
            PendingVectorDeletion.objects.filter(pk=pending.pk).update(attempts=F("attempts") + 1,
                                                                       last_error=str(exc))
            logger.warning("queued vector deletions wait for the store: %s", exc)
            break
        pending.delete()
        applied += 1
    if applied:
        logger.info("applied %d queued vector deletions", applied)
    return applied


def pending_deletions_apply_if_any() -> int:
    """`pending_deletions_apply` when anything is queued (one cheap query otherwise): after a store write."""
    return pending_deletions_apply() if PendingVectorDeletion.objects.exists() else 0
