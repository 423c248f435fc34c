"""Which collection a corpus is searched in, and the transform its vectors and queries go through.

An *index* (`SearchIndex`) is the configured encoder plus, optionally, one adapter build (an
`IndexBuild` row, see `multimodal.services.adapter_activation`): a Milvus collection together with
the adapter weights every vector in it went through. (How Milvus organises one collection's vectors
for nearest-neighbour search, HNSW or IVF, is the store's `VectorIndexSpec`, a different thing.) Query vectors are made by the same index they are searched in (`SearchIndex.encode_*`),
so a query is always adapted exactly as the vectors it meets: never one without the other.

- The base index is the encoder's own collection (`store.collection_for`). It holds every item of
  every corpus, unadapted, always; index builds, rollback and retraining read it and never run the
  encoder again.
- A corpus is searched in its live build (`CorpusIndex.live`) when it has one for the configured
  encoder, else in the base index. Builds made for another encoder are never used.
- Writes (`vectors_upsert`) go to the base index and, adapted, to every build of the item's corpus
  that may be searched: the live one, the previous one (what a rollback returns to) and any still
  building, so a switch never loses items ingested while a build ran.

The base collection records the runtime and precision of the encoder that created it (torch fp32, onnx
int8, ...). Every index of a process is checked against that record on first use (`checked_encoder`): a
runtime whose vectors do not agree closely enough with the recorded one may neither write nor query there.

Loaded adapter weights are cached per process by file (a trained adapter's file never changes).
"""
from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import numpy as np
from django.conf import settings

from .. import encoders, store
from ..learning.adaptation import AdapterWeights
from ..models import Corpus, CorpusIndex, IndexBuild

_weights: dict[str, AdapterWeights] = {}
_weights_lock = threading.Lock()


def vector_side(modality: str) -> str:
    """The adapter side a stored vector belongs to: images are images, every other vector is text."""
    return "image" if modality == "image" else "text"


@dataclass(frozen=True)
class SearchIndex:
    """Vectors of one space: an encoder's, or an encoder's passed through an adapter."""

    encoder: encoders.Encoder
    collection: store.VectorCollection
    adapter: AdapterWeights | None = None
    label: str = "base"

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return self.adapt(self.encoder.encode_text(texts), "text")

    def encode_image(self, images: list) -> np.ndarray:
        return self.adapt(self.encoder.encode_image(images), "image")

    def adapt(self, vectors: np.ndarray, modality: str) -> np.ndarray:
        """Base vectors of one modality as this index stores them."""
        return vectors if self.adapter is None else self.adapter.apply(vectors, vector_side(modality))

    def records_adapt(self, records: list[store.VectorRecord]) -> list[store.VectorRecord]:
        if self.adapter is None:
            return list(records)
        by_modality: dict[str, list[int]] = defaultdict(list)
        for row, record in enumerate(records):
            by_modality[record.modality].append(row)
        adapted = list(records)
        for modality, rows in by_modality.items():
            vectors = self.adapt(np.stack([records[row].vector for row in rows]), modality)
            for row, vector in zip(rows, vectors):
                adapted[row] = replace(records[row], vector=vector)
        return adapted

    def item_vectors(self, item_ids: Iterable[int]) -> dict[int, dict[str, np.ndarray]]:
        """Items' vectors in this index's space, from the base vectors (so any item, of any corpus)."""
        stored = store.collection_for(self.encoder).vectors(item_ids)
        if self.adapter is None:
            return stored
        return {
            item_id: {modality: self.adapt(vector[None, :], modality)[0] for modality, vector in by_modality.items()}
            for item_id, by_modality in stored.items()
        }


@dataclass(frozen=True)
class Route:
    """Search ``index`` for these corpora (None: every corpus is searched in this index)."""

    index: SearchIndex
    corpus_ids: list[int] | None


def checked_encoder() -> tuple[encoders.Encoder, store.VectorCollection]:
    """The configured encoder and its base collection, once the collection's recorded runtime (if it
    exists yet) is known to agree with the encoder's. Raises EncoderRuntimeMismatch."""
    encoder = encoders.get()
    collection = store.collection_for(encoder, record=encoders.runtime_of(encoder).record())
    recorded = collection.record()
    if recorded is not None:
        encoders.runtime_check(encoder, recorded, collection.name)
    return encoder, collection


def base_index() -> SearchIndex:
    encoder, collection = checked_encoder()
    return SearchIndex(encoder=encoder, collection=collection)


def build_index(build: IndexBuild) -> SearchIndex:
    encoder = checked_encoder()[0]  # a build holds the base collection's vectors, adapted
    if build.encoder_name != encoder.name:
        raise ValueError(f"index build {build.pk} was made for {build.encoder_name}, not {encoder.name}")
    return SearchIndex(
        encoder=encoder, collection=store.collection(build.collection_name, encoder.dim),
        adapter=adapter_weights_load(build.adapter.weights_path), label=str(build.adapter),
    )


def adapter_weights_load(weights_path: str) -> AdapterWeights:
    """The weights stored at ``weights_path`` (under MULTIMODAL_ADAPTER_ROOT), loaded once per process."""
    path = str(Path(settings.MULTIMODAL_ADAPTER_ROOT) / weights_path)
    weights = _weights.get(path)
    if weights is None:
        with _weights_lock:
            weights = _weights.get(path) or AdapterWeights.load(Path(path))
            _weights[path] = weights
    return weights


def live_builds(corpus_ids: Iterable[int] | None = None) -> dict[int, IndexBuild]:
    """Corpus id -> its live build under the configured encoder (corpora searched in base vectors are absent)."""
    rows = CorpusIndex.objects.filter(encoder_name=encoders.get().name, live__isnull=False).select_related("live__adapter")
    if corpus_ids is not None:
        rows = rows.filter(corpus_id__in=list(corpus_ids))
    return {row.corpus_id: row.live for row in rows}


def search_routes(corpus_ids: list[int] | None) -> list[Route]:
    """The indexes a search over these corpora (None: all) runs in, each with the corpora it covers.

    Without any live build this is one route, the base index, narrowed exactly as asked.
    """
    live = live_builds(corpus_ids)
    if not live:
        return [Route(base_index(), corpus_ids)]
    routes = [Route(build_index(build), [corpus_id]) for corpus_id, build in sorted(live.items())]
    wanted = corpus_ids if corpus_ids is not None else Corpus.objects.values_list("pk", flat=True)
    rest = sorted(set(wanted) - set(live))
    if rest:
        routes.insert(0, Route(base_index(), rest))
    return routes


def _write_builds(corpus_ids: Iterable[int]) -> list[IndexBuild]:
    """Builds that must receive the corpora's new vectors: live, previous and still building."""
    return list(
        IndexBuild.objects.filter(
            corpus_id__in=list(corpus_ids), encoder_name=encoders.get().name,
            status__in=[IndexBuild.Status.BUILDING, IndexBuild.Status.READY],
        ).select_related("adapter")
    )


def vectors_upsert(records: list[store.VectorRecord]) -> int:
    """Write base vectors to the base index and, adapted, to every build of their corpus. Returns base rows."""
    records = list(records)
    written = base_index().collection.upsert(records)
    if not records:
        return written
    by_corpus: dict[int, list[store.VectorRecord]] = defaultdict(list)
    for record in records:
        by_corpus[record.corpus_id].append(record)
    for build in _write_builds(by_corpus):
        index = build_index(build)
        index.collection.upsert(index.records_adapt(by_corpus[build.corpus_id]))
    return written


def indexes_flush(corpus_ids: Iterable[int] | None = None) -> None:
    """Flush the base index and the builds of these corpora (None: every build)."""
    base_index().collection.flush()
    builds = _write_builds(corpus_ids) if corpus_ids is not None else IndexBuild.objects.filter(
        encoder_name=encoders.get().name, status__in=[IndexBuild.Status.BUILDING, IndexBuild.Status.READY])
    for build in builds:
        store.collection(build.collection_name).flush()
