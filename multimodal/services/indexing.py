"""Rebuilding Milvus from the database, which is the source of truth."""
from django.conf import settings
from django.db.models import QuerySet

from .. import encoders, store
from ..errors import UserInputError
from ..models import Item
from ..retrieval import indexes
from .embedding import inputs_encode, item_embed_inputs, item_vector_record
from .ingest import IngestFailure, IngestReport, ProgressCallback
from .vectors import vectors_write


def items_reindex(
    *,
    items: QuerySet[Item],
    drop: bool = False,
    batch_size: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Re-embed ``items`` with the configured encoder and overwrite their vectors (in every index
    their corpus may be searched in, adapted there).

    With ``drop`` the encoder's base collection is recreated first (use it after changing index
    settings); items outside ``items`` then lose their vectors until they are reindexed too.
    """
    encoder = encoders.get()
    if drop:
        store.collection_for(encoder).drop()
    batch_size = batch_size or settings.MULTIMODAL_ENCODE_BATCH_SIZE
    report = IngestReport()
    item_list = list(items.order_by("pk"))
    for start in range(0, len(item_list), batch_size):
        batch = item_list[start:start + batch_size]
        inputs = []
        for item in batch:
            try:
                inputs.extend(item_embed_inputs(item))
            except (OSError, UserInputError) as exc:
                report.failures.append(IngestFailure(_label(item), f"stored original unreadable ({exc})"))
        vectors, errors = inputs_encode(inputs, encoder=encoder)
        items_by_pk = {item.pk: item for item in batch}
        failed = {pk for pk, _ in errors}
        for pk in sorted(failed):
            report.failures.append(IngestFailure(_label(items_by_pk[pk]), next(iter(
                reason for (error_pk, _), reason in errors.items() if error_pk == pk))))
        vectors_write([
            item_vector_record(items_by_pk[pk], modality, vector)
            for (pk, modality), vector in vectors.items() if pk not in failed
        ])
        report.updated += len({pk for pk, _ in vectors} - failed)
        if on_progress:
            on_progress(start + len(batch), report)
    indexes.indexes_flush()
    return report


def _label(item: Item) -> str:
    return item.source_name or f"item {item.pk}"
