"""Rebuilding Milvus from the database, which is the source of truth."""
from django.conf import settings
from django.db.models import QuerySet

from .. import encoders, store
from ..errors import UserInputError
from ..models import Item
from .embedding import inputs_encode, item_embed_input, item_vector_record
from .ingest import IngestFailure, IngestReport, ProgressCallback


def items_reindex(
    *,
    items: QuerySet[Item],
    drop: bool = False,
    batch_size: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Re-embed ``items`` with the configured encoder and overwrite their vectors.

    With ``drop`` the whole collection is recreated first (use it after changing index settings);
    items outside ``items`` then lose their vectors until they are reindexed too.
    """
    encoder = encoders.get()
    collection = store.collection_for(encoder)
    if drop:
        collection.drop()
    batch_size = batch_size or settings.MULTIMODAL_ENCODE_BATCH_SIZE
    report = IngestReport()
    item_list = list(items.order_by("pk"))
    for start in range(0, len(item_list), batch_size):
        batch = item_list[start:start + batch_size]
        inputs = []
        for item in batch:
            try:
                inputs.append(item_embed_input(item))
            except (OSError, UserInputError) as exc:
                report.failures.append(IngestFailure(_label(item), f"stored original unreadable ({exc})"))
        vectors, errors = inputs_encode(inputs, encoder=encoder)
        for item in batch:
            if item.pk in errors:
                report.failures.append(IngestFailure(_label(item), errors[item.pk]))
        collection.upsert(item_vector_record(item, vectors[item.pk]) for item in batch if item.pk in vectors)
        report.updated += sum(item.pk in vectors for item in batch)
        if on_progress:
            on_progress(start + len(batch), report)
    collection.flush()
    return report


def _label(item: Item) -> str:
    return item.source_name or f"item {item.pk}"
