"""Training a domain adapter on a corpus's own pairs over the frozen encoder, measured before it is offered.

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
  held-out items) and its weights file under MULTIMODAL_ADAPTER_ROOT. Nothing changes for search
  until it is activated (`multimodal.services.adapter_activation`).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from .. import encoders, store
from ..errors import UserInputError
from ..learning.adaptation import AdapterError, TrainingConfig, adapter_fit, holdout_split, pairs_evaluate
from ..models import Adapter, Corpus
from ..readers.imaging import image_open
from .background import task_dispatch_on_commit
from .embedding import ENCODER_TEXT_CHARS
from .pairs import ItemResolver, corpus_pairs, file_beside, jsonl_read

MIN_PAIRS = 10
ENCODE_BATCH = 64


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
        trained = adapter_fit(
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
