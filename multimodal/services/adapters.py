"""Domain adapters: trained on a corpus's own pairs over the frozen encoder, activated without downtime.

The big pretrained encoder never changes. A small adapter (`multimodal.learning.adaptation`) learns, from
the customer's own image-text pairs, to move the encoder's vectors so that each text lands next to
its image; it is measured on pairs it never saw before it is offered for use.

Training (`adapter_create` + `adapter_train`; `adapter_train_start` queues it for a worker)
- Pairs (`training_pairs`): the corpus's own (products: text vector <-> image vector of the same
  row; images with caption files), read from the stored base vectors so the image encoder never
  runs; or a JSONL file of ``{"text": ..., "image": PATH | "item": ID_OR_NAME}``, encoded here.
- A holdout split by image. Recall@1/5/10, MRR and nDCG@10 are measured on the held-out pairs,
  text->image and image->text, before (the base encoder: an untrained adapter is the identity)
  and after training.
- The artifact: an `Adapter` row (version per corpus, encoder name, hyperparameters, metrics, the
  held-out items) and its weights file under MULTIMODAL_ADAPTER_ROOT. Nothing changes for search.

Activation is per corpus (`adapter_activate`, then `index_build_run`, then `index_switch`)
- Per corpus, because an adapter fits the domain it was trained on; another corpus keeps its own
  index (a search over several corpora searches each in its own index, see `multimodal.retrieval.indexes`).
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
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from .. import encoders, store
from ..errors import UserInputError
from ..learning.adaptation import AdapterError, TrainingConfig, adapter_train as fit, holdout_split, pairs_evaluate
from ..models import Adapter, Corpus, CorpusIndex, IndexBuild, Item
from ..readers.imaging import image_open
from ..retrieval import indexes
from .background import task_dispatch_on_commit
from .embedding import ENCODER_TEXT_CHARS, item_vector_record
from .pairs import ItemResolver, corpus_pairs, file_beside, jsonl_read
from .vectors import collection_drop_or_queue

logger = logging.getLogger(__name__)
MIN_PAIRS = 10
ENCODE_BATCH = 64
COPY_BATCH = 500
CATCH_UP_MARGIN = timedelta(minutes=5)


@dataclass
class TrainingPairs:
    """Row i of ``texts`` belongs with row i of ``images``; ``groups[i]`` names the image.

    Each row's text is how people ask for the image (a product's description, a caption): the
    held-out figures are measured on these. ``extra_*`` rows pair the same images with other texts
    that go through the adapter's text side too (a product's indexed text: title, description and
    specs); they are trained on when their image is in the training split, never measured.
    """

    texts: np.ndarray
    images: np.ndarray
    groups: list
    image_item_ids: list[int | None]
    skipped: list[str] = field(default_factory=list)
    extra_texts: np.ndarray | None = None
    extra_images: np.ndarray | None = None
    extra_groups: list = field(default_factory=list)

    def training_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(texts, images) to train on: ``rows``, plus the extra rows of the same images."""
        if not self.extra_groups:
            return self.texts[rows], self.images[rows]
        training_groups = {self.groups[row] for row in rows}
        extra = [row for row, group in enumerate(self.extra_groups) if group in training_groups]
        return (np.concatenate([self.texts[rows], self.extra_texts[extra]]),
                np.concatenate([self.images[rows], self.extra_images[extra]]))


# --- training ---------------------------------------------------------------------------------


def adapter_create(*, corpus: Corpus, config: TrainingConfig, holdout: float, pairs_file: str = "", user=None) -> Adapter:
    """A queued adapter (the next version for ``corpus``) with its settings checked."""
    if not 0 <= holdout < 1:
        raise UserInputError(f"holdout must be at least 0 and below 1 (a share of the pairs), not {holdout}")
    if pairs_file and not Path(pairs_file).is_file():
        raise UserInputError(f"pairs file '{pairs_file}' is not a file")
    encoder = encoders.get()
    with transaction.atomic():
        Corpus.objects.select_for_update().get(pk=corpus.pk)  # versions are numbered one at a time
        version = (corpus.adapters.aggregate(latest=Max("version"))["latest"] or 0) + 1
        return Adapter.objects.create(
            corpus=corpus, version=version, encoder_name=encoder.name, dim=encoder.dim,
            pairs_file=str(Path(pairs_file).resolve()) if pairs_file else "",
            hyperparameters={**config.as_dict(), "holdout": holdout}, created_by=user,
        )


def adapter_train_start(*, corpus: Corpus, config: TrainingConfig, holdout: float, pairs_file: str = "", user=None) -> Adapter:
    """Queue the training of a new adapter for a worker; returns at once."""
    from ..tasks import adapter_train_task

    adapter = adapter_create(corpus=corpus, config=config, holdout=holdout, pairs_file=pairs_file, user=user)
    task_dispatch_on_commit(adapter_train_task, adapter.pk)
    return adapter


def adapter_train(*, adapter_id: int, on_progress: Callable[[Adapter], None] | None = None) -> Adapter:
    """Read the pairs, measure, train, measure again and save the weights; the row records each phase.

    Raises UserInputError (too few pairs, a bad pairs file) after recording it on the row.
    """
    adapter = Adapter.objects.select_related("corpus").get(pk=adapter_id)
    if adapter.status == Adapter.Status.READY:
        return adapter
    settings_used = dict(adapter.hyperparameters)
    holdout = float(settings_used.pop("holdout"))
    config = TrainingConfig(**{**settings_used, "sides": tuple(settings_used["sides"])})
    _progress(adapter, on_progress, status=Adapter.Status.RUNNING, started_at=timezone.now(), finished_at=None,
              error="", phase="reading pairs", done=0, total=0)
    try:
        encoder = encoders.get()
        if encoder.name != adapter.encoder_name:
            raise UserInputError(f"{adapter} was queued for {adapter.encoder_name}; the configured encoder is {encoder.name}")
        pairs = training_pairs(
            corpus=adapter.corpus, pairs_file=Path(adapter.pairs_file) if adapter.pairs_file else None, encoder=encoder,
            on_progress=lambda done, total: _progress(adapter, on_progress, done=done, total=total),
        )
        if len(pairs.groups) < MIN_PAIRS:
            raise UserInputError(f"{len(pairs.groups)} image-text pairs found; training needs at least {MIN_PAIRS}"
                                 + (f" ({'; '.join(pairs.skipped[:3])})" if pairs.skipped else ""))
        train_rows, held_rows = holdout_split(pairs.groups, fraction=holdout, seed=config.seed)
        held = (pairs.texts[held_rows], pairs.images[held_rows], [pairs.groups[row] for row in held_rows])
        before = pairs_evaluate(*held) if len(held_rows) else {}
        _progress(adapter, on_progress, phase="training", done=0, total=config.epochs)
        trained = fit(
            *pairs.training_rows(train_rows), config=config,
            on_epoch=lambda epoch, loss: _progress(adapter, on_progress, done=epoch, loss=loss),
        )
        after = pairs_evaluate(*held, adapter=trained) if len(held_rows) else {}
        weights_path = f"{adapter.corpus_id}/{adapter.corpus.name}-v{adapter.version}-{uuid.uuid4().hex[:8]}.npz"
        trained.save(Path(settings.MULTIMODAL_ADAPTER_ROOT) / weights_path)
    except (UserInputError, AdapterError) as exc:
        _progress(adapter, on_progress, status=Adapter.Status.FAILED, error=str(exc), finished_at=timezone.now())
        raise UserInputError(str(exc)) from None
    except Exception as exc:
        _progress(adapter, on_progress, status=Adapter.Status.FAILED, error=f"{type(exc).__name__}: {exc}",
                  finished_at=timezone.now())
        raise
    held_items = sorted({pairs.image_item_ids[row] for row in held_rows} - {None})
    _progress(adapter, on_progress, status=Adapter.Status.READY, phase="", weights_path=weights_path,
              pairs=len(pairs.groups), holdout_pairs=len(held_rows), holdout_item_ids=held_items,
              metrics={"before": before, "after": after, "skipped": pairs.skipped[:20]}, finished_at=timezone.now())
    return adapter


def _progress(adapter: Adapter, on_progress, **changes) -> None:
    for name, value in changes.items():
        setattr(adapter, name, value)
    adapter.save(update_fields=list(changes))
    if on_progress:
        on_progress(adapter)


def training_pairs(*, corpus: Corpus, pairs_file: Path | None, encoder,
                   on_progress: Callable[[int, int], None] | None = None) -> TrainingPairs:
    """The pairs to train on: from ``pairs_file`` when given, else the corpus's own."""
    if pairs_file is not None:
        return _file_pairs(pairs_file, corpus=corpus, encoder=encoder, on_progress=on_progress)
    return _corpus_pairs(corpus, encoder=encoder, on_progress=on_progress)


def _corpus_pairs(corpus: Corpus, *, encoder, on_progress) -> TrainingPairs:
    found = corpus_pairs(corpus)
    if not found:
        raise UserInputError(f"corpus '{corpus.name}' holds no image-text pairs: products with an image, or images "
                             f"with a caption file of the same name (dog.jpg + dog.txt); or give --pairs FILE")
    base = store.collection_for(encoder)
    stored = base.vectors({pair.image_item_id for pair in found} | {pair.text_item_id for pair in found} - {None})
    # The adapter learns both the words people search with (a product's description: queries go
    # through the text side) and the indexed text (title, description and specs: stored vectors do).
    to_encode = sorted({pair.text for pair in found if pair.text_item_id is None}
                       | {pair.query for pair in found if pair.asked_differently})
    encoded = _texts_encode(to_encode, encoder, on_progress)
    texts, images, groups, skipped = [], [], [], []
    extra_texts, extra_images, extra_groups = [], [], []
    for pair in found:
        image = stored.get(pair.image_item_id, {}).get("image")
        text = stored.get(pair.text_item_id, {}).get("text") if pair.text_item_id else encoded[pair.text]
        if image is None or text is None:
            skipped.append(f"item {pair.image_item_id if image is None else pair.text_item_id} has no stored vector")
            continue
        if pair.asked_differently:
            extra_texts.append(text)
            extra_images.append(image)
            extra_groups.append(pair.image_item_id)
            text = encoded[pair.query]
        texts.append(text)
        images.append(image)
        groups.append(pair.image_item_id)
    found_pairs = _pairs(texts, images, groups, list(groups), skipped)
    if extra_texts:
        found_pairs.extra_texts = np.stack(extra_texts).astype(np.float32)
        found_pairs.extra_images = np.stack(extra_images).astype(np.float32)
        found_pairs.extra_groups = extra_groups
    return found_pairs


def _texts_encode(texts: list[str], encoder, on_progress) -> dict[str, np.ndarray]:
    encoded = {}
    for start in range(0, len(texts), ENCODE_BATCH):
        batch = texts[start:start + ENCODE_BATCH]
        encoded.update(zip(batch, encoder.encode_text([text[:ENCODER_TEXT_CHARS] for text in batch])))
        if on_progress:
            on_progress(start + len(batch), len(texts))
    return encoded


def _file_pairs(path: Path, *, corpus: Corpus, encoder, on_progress) -> TrainingPairs:
    """Pairs from JSONL: ``{"text": ..., "image": PATH}`` (relative to the file) or ``"item": ID_OR_NAME``."""
    resolver = ItemResolver([corpus])
    rows = []
    for number, row in jsonl_read(path):
        where = f"{path} line {number}"
        text = row.get("text")
        if not isinstance(text, str) or not text.strip():
            raise UserInputError(f'{where}: needs a non-empty "text"')
        if ("image" in row) == ("item" in row):
            raise UserInputError(f'{where}: give either "image" (a file path) or "item" (an id or file name)')
        if "image" in row:
            rows.append((text.strip(), file_beside(path.parent, row["image"], where=where, what="image"), None))
        else:
            rows.append((text.strip(), None, resolver.resolve(row["item"], where=where)))
    stored = store.collection_for(encoder).vectors({item_id for _, _, item_id in rows if item_id is not None})
    texts, images, groups, item_ids = [], [], [], []
    total = len(rows)
    for start in range(0, total, ENCODE_BATCH):
        batch = rows[start:start + ENCODE_BATCH]
        texts.extend(encoder.encode_text([text[:ENCODER_TEXT_CHARS] for text, _, _ in batch]))
        files = [image_path for _, image_path, _ in batch if image_path is not None]
        decoded = iter(encoder.encode_image([_image_read(image_path) for image_path in files]) if files else [])
        for text, image_path, item_id in batch:
            if image_path is not None:
                images.append(next(decoded))
                groups.append(str(image_path.resolve()))
            else:
                image = stored.get(item_id, {}).get("image")
                if image is None:
                    raise UserInputError(f"{path}: item {item_id} ('{text[:40]}') has no stored image vector")
                images.append(image)
                groups.append(item_id)
            item_ids.append(item_id)
        if on_progress:
            on_progress(start + len(batch), total)
    return _pairs(texts, images, groups, item_ids, [])


def _image_read(path: Path):
    try:
        return image_open(path.read_bytes(), name=str(path))
    except OSError as exc:
        raise UserInputError(f"{path}: {exc.strerror or exc}") from None


def _pairs(texts, images, groups, item_ids, skipped) -> TrainingPairs:
    if not texts:
        return TrainingPairs(np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32), [], [], skipped)
    return TrainingPairs(np.stack(texts).astype(np.float32), np.stack(images).astype(np.float32), groups, item_ids,
                         skipped)


# --- activation -------------------------------------------------------------------------------


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
