"""Activating an adapter on a corpus without downtime: build an index, switch to it, roll back.

Per corpus (`adapter_activate`, then `index_build_run`, then `index_switch`)
- Per corpus, because an adapter fits the domain it was trained on (`multimodal.services.adapter_training`);
  another corpus keeps its own index (a search over several corpora searches each in its own index,
  see `multimodal.retrieval.indexes`).
- A build fills a new collection, named from the encoder, the adapter and a token, with the
  corpus's base vectors passed through the adapter (a matrix product per batch, no encoder), in
  the background. Searches keep using the live index meanwhile: nothing routes to a collection
  before its build finishes. Items ingested during the build are written to it as well
  (`indexes.vectors_upsert`); a catch-up pass then re-copies items changed since the build began
  (a copy could have overwritten a newer vector) and drops vectors of items deleted meanwhile.
- The switch is one UPDATE of the corpus's `CorpusIndex` row in a transaction: ``live`` becomes
  the build and ``previous`` the old live index. The next search reads the new row and uses the
  new collection, complete; a search already running finishes on the old one, which still exists.
- Rollback (`index_rollback`) swaps ``live`` and ``previous``: one row update, instant, because
  the previous index keeps receiving new items while it waits. Rolling back twice goes forward
  again. `index_switch(build=None)` returns to the encoder's own vectors, also at once: the base
  index always holds every item.
- A build that is neither live nor previous after a switch is retired: its collection is dropped
  after the transaction commits.
"""
from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from functools import partial
from typing import Callable

from django.db import transaction
from django.utils import timezone

from .. import encoders, store
from ..errors import UserInputError
from ..models import Adapter, Corpus, CorpusIndex, IndexBuild, Item
from ..retrieval import indexes
from .background import task_dispatch_on_commit
from .embedding import item_vector_record
from .vectors import collection_drop_or_queue

logger = logging.getLogger(__name__)
COPY_BATCH = 500
CATCH_UP_MARGIN = timedelta(minutes=5)


def adapter_activate(*, adapter: Adapter, corpus: Corpus | None = None) -> IndexBuild:
    """Make ``adapter`` the index of ``corpus`` (default: the corpus it was trained on).

    Returns the build to run (`index_build_run`, status BUILDING), or, when the adapter's build is
    already there (it is the previous index), that build after switching to it at once.
    """
    corpus = corpus or adapter.corpus
    encoder = encoders.get()
    if adapter.status != Adapter.Status.READY:
        raise UserInputError(f"{adapter} is {adapter.status}, not ready: only a trained adapter can be activated")
    if adapter.encoder_name != encoder.name:
        raise UserInputError(f"{adapter} adapts {adapter.encoder_name}; the configured encoder is {encoder.name}")
    state = CorpusIndex.objects.filter(corpus=corpus, encoder_name=encoder.name).select_related("live", "previous").first()
    if state and state.live and state.live.adapter_id == adapter.pk:
        raise UserInputError(f"{adapter} is already the live index of corpus '{corpus.name}'")
    if state and state.previous and state.previous.adapter_id == adapter.pk:
        index_switch(corpus=corpus, build=state.previous)
        return state.previous
    running = IndexBuild.objects.filter(corpus=corpus, adapter=adapter, encoder_name=encoder.name,
                                        status=IndexBuild.Status.BUILDING).first()
    if running:
        return running
    variant = f"c{corpus.pk}_a{adapter.pk}_{uuid.uuid4().hex[:8]}"
    build = IndexBuild.objects.create(
        corpus=corpus, adapter=adapter, encoder_name=encoder.name,
        collection_name=store.collection_name(encoder.name, encoder.dim, variant),
        total=corpus.items.count(),
    )
    # Created now, not by the worker, so items ingested from this moment on land in it too.
    store.collection(build.collection_name, encoder.dim).ensure()
    return build


def adapter_activate_start(*, adapter: Adapter, corpus: Corpus | None = None) -> IndexBuild:
    """`adapter_activate`, with the build run by a worker."""
    from ..tasks import index_build_task

    build = adapter_activate(adapter=adapter, corpus=corpus)
    if build.status == IndexBuild.Status.BUILDING:
        task_dispatch_on_commit(index_build_task, build.pk)
    return build


def index_build_run(*, build_id: int, batch_size: int = COPY_BATCH,
                    on_progress: Callable[[IndexBuild], None] | None = None) -> IndexBuild:
    """Fill the build's collection from the base vectors, then switch the corpus to it.

    ``on_progress(build)`` is called after every batch, while searches still use the old index.
    Safe to run again after a crash (the copy is an upsert by item).
    """
    build = IndexBuild.objects.select_related("adapter", "corpus").get(pk=build_id)
    if build.status != IndexBuild.Status.BUILDING:
        return build
    try:
        index = indexes.build_index(build)
        base = store.collection_for(index.encoder)
        started = timezone.now()
        item_ids = list(build.corpus.items.order_by("pk").values_list("pk", flat=True))
        build.started_at, build.done, build.total = started, 0, len(item_ids)
        build.save(update_fields=["started_at", "done", "total"])
        for start in range(0, len(item_ids), batch_size):
            _vectors_copy(item_ids[start:start + batch_size], base, index)
            build.done = min(start + batch_size, len(item_ids))
            build.save(update_fields=["done"])
            if on_progress:
                on_progress(build)
        # An ingest saves its items, then writes their vectors; the margin covers items saved just
        # before the build began whose (newer) vectors a copy may have overwritten.
        changed = list(build.corpus.items.filter(updated_at__gte=build.created_at - CATCH_UP_MARGIN)
                       .values_list("pk", flat=True))
        for start in range(0, len(changed), batch_size):
            _vectors_copy(changed[start:start + batch_size], base, index)
        gone = set(item_ids) - set(build.corpus.items.values_list("pk", flat=True))
        index.collection.delete_items(gone)
        index.collection.flush()
    except Exception as exc:
        build.status, build.error, build.finished_at = IndexBuild.Status.FAILED, f"{type(exc).__name__}: {exc}", timezone.now()
        build.save(update_fields=["status", "error", "finished_at"])
        transaction.on_commit(partial(collection_drop_or_queue, name=build.collection_name))
        raise
    index_switch(corpus=build.corpus, build=build)
    build.refresh_from_db()
    return build


def _vectors_copy(item_ids: list[int], base: store.VectorCollection, index: indexes.SearchIndex) -> None:
    """The items' base vectors, adapted, into the index's collection."""
    stored = base.vectors(item_ids)
    items = Item.objects.in_bulk(list(stored))
    records = [
        item_vector_record(items[item_id], modality, vector)
        for item_id, by_modality in stored.items() if item_id in items
        for modality, vector in by_modality.items()
    ]
    index.collection.upsert(index.records_adapt(records))


def index_switch(*, corpus: Corpus, build: IndexBuild | None) -> CorpusIndex:
    """Search ``corpus`` in ``build`` (None: the encoder's own vectors) from the next query on.

    One row update in one transaction; the old live index becomes the rollback target, and the
    one that was the rollback target before is retired (its collection dropped after commit).
    """
    encoder_name = encoders.get().name
    if build is not None and (build.corpus_id != corpus.pk or build.encoder_name != encoder_name):
        raise UserInputError(f"index build {build.pk} belongs to another corpus or encoder")
    with transaction.atomic():
        state, _ = CorpusIndex.objects.select_for_update().get_or_create(corpus=corpus, encoder_name=encoder_name)
        build_id = build.pk if build else None
        if state.live_id == build_id:
            return state
        retired = state.previous if state.previous_id not in (build_id, state.live_id) else None
        state.previous_id, state.live_id = state.live_id, build_id
        state.switched_at = timezone.now()
        state.save(update_fields=["previous", "live", "switched_at"])
        if build is not None:
            IndexBuild.objects.filter(pk=build.pk).update(status=IndexBuild.Status.READY,
                                                          finished_at=build.finished_at or timezone.now())
        if retired is not None:
            IndexBuild.objects.filter(pk=retired.pk).update(status=IndexBuild.Status.RETIRED)
            transaction.on_commit(partial(collection_drop_or_queue, name=retired.collection_name))
    logger.info("corpus %s now searched in %s", corpus.name, build.adapter if build else "its base vectors")
    return state


def index_rollback(*, corpus: Corpus) -> CorpusIndex:
    """Go back to the index that was live before the last switch (again: forward). Instant."""
    state = CorpusIndex.objects.filter(corpus=corpus, encoder_name=encoders.get().name).select_related("previous").first()
    if state is None or state.switched_at is None:
        raise UserInputError(f"corpus '{corpus.name}' has never switched index: there is nothing to roll back to")
    return index_switch(corpus=corpus, build=state.previous)


def index_describe(corpus: Corpus) -> dict:
    """What ``corpus`` is searched in now, and what a rollback would return to."""
    state = CorpusIndex.objects.filter(corpus=corpus, encoder_name=encoders.get().name).select_related(
        "live__adapter", "previous__adapter").first()

    def name(build: IndexBuild | None) -> str:
        return f"adapter v{build.adapter.version}" if build else "base vectors"

    return {
        "corpus": corpus.name,
        "live": name(state.live if state else None),
        "previous": name(state.previous) if state and state.switched_at else None,
        "switched_at": state.switched_at.isoformat() if state and state.switched_at else None,
    }
