"""Recall per encoder runtime (`manage.py bench_encode --evaluate QUERY_FILE --corpus NAME`).

The queries come from a file in `evaluate`'s format (`services.evaluation.queries_read`), their relevant
items named as there and looked up in the one corpus given. Each runtime encodes the corpus's items as
reindex does (`item_embed_inputs`: the original image file, the text a product or a text item is indexed
by) and the queries, and every query ranks every item of the corpus by its best vector (exact inner
products in numpy: no index, adapter or keyword channel, so the encoder is all that differs). The ranked
lists are scored with `evaluate`'s metrics (`learning.metrics`) to `evaluate`'s default depth.

Only what a bare encoder answers is measured: a line's text or image (one of the two). Its ``modality``
and ``kind`` narrow the item vectors it ranks, as in a search; its ``corpus``, ``fusion`` and ``hybrid``
do not apply (the corpus is the one given, the ranking is the encoder's alone).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Iterator

import numpy as np
from PIL import Image

from ..errors import UserInputError
from ..learning.metrics import METRIC_NAMES, NDCG_K, RECALL_KS, metrics_mean, query_metrics
from ..models import Corpus, Item
from ..readers.imaging import image_open
from ..services.embedding import EmbedInput, item_embed_inputs
from ..services.evaluation import queries_read
from ..services.pairs import ItemResolver
from ..store.types import SLOTS

DEPTH = max(max(RECALL_KS), NDCG_K)  # `evaluate`'s default: MRR counts ranks up to it, as there

# (inputs) -> (vectors by key, reason by key for those that failed): `services.embedding.inputs_encode`'s answer.
Encode = Callable[[list[EmbedInput]], tuple[dict[Hashable, np.ndarray], dict[Hashable, str]]]


@dataclass(frozen=True)
class RecallQuery:
    where: str
    text: str
    image: Image.Image | None
    relevant: frozenset[int]
    modalities: tuple[str, ...]  # item vectors it ranks (empty: all)
    kinds: tuple[str, ...]  # item kinds it ranks (empty: all)

    def embed_input(self, number: int) -> EmbedInput:
        return EmbedInput(key=("query", number), image=self.image, text=self.text)


@dataclass(frozen=True)
class RecallSet:
    path: Path
    corpus: Corpus
    queries: list[RecallQuery]
    item_ids: list[int]

    def describe(self) -> dict:
        return {"queries_file": str(self.path), "corpus": self.corpus.name, "queries": len(self.queries),
                "items": len(self.item_ids), "depth": DEPTH}


def recall_set_read(path: Path, corpus_name: str) -> RecallSet:
    """The query file's queries against corpus ``corpus_name``, every one checked before anything is encoded.

    Raises UserInputError naming the problem: no such file or corpus, a line that is not a lone text or
    image, an unknown modality or kind, a relevant item that is not in the corpus, a corpus with no items.
    """
    corpus = Corpus.objects.filter(name=corpus_name).first()
    if corpus is None:
        raise UserInputError(f"--corpus: no corpus named '{corpus_name}'")
    resolver = ItemResolver([corpus])
    queries = [_query(line, resolver) for line in queries_read(path)]
    item_ids = list(corpus.items.order_by("pk").values_list("pk", flat=True))
    if not item_ids:
        raise UserInputError(f"corpus '{corpus_name}' holds no items")
    return RecallSet(path=path, corpus=corpus, queries=queries, item_ids=item_ids)


def _query(line, resolver: ItemResolver) -> RecallQuery:
    given = "parts" if "parts" in line.data else "an item" if "item" in line.data else line.modality
    if given not in ("text", "image"):
        raise UserInputError(f"{line.where}: an encoder's recall is measured on a lone \"text\" or \"image\" "
                             f"query, and this line gives {given}")
    image = None
    if "image" in line.files:
        name, data = line.files["image"]
        image = image_open(data, name=name)
    modalities, kinds = _names(line.data.get("modality")), _names(line.data.get("kind"))
    for what, values, known in (("modality", modalities, tuple(SLOTS)), ("kind", kinds, tuple(Item.Kind.values))):
        unknown = [value for value in values if value not in known]
        if unknown:
            raise UserInputError(f"{line.where}: unknown {what} {', '.join(unknown)}: use {', '.join(known)}")
    relevant = frozenset(resolver.resolve(reference, where=f"{line.where} relevant") for reference in line.relevant)
    return RecallQuery(where=line.where, text=line.data.get("q", ""), image=image, relevant=relevant,
                       modalities=modalities, kinds=kinds)


def _names(value) -> tuple[str, ...]:
    return tuple(name.strip() for name in str(value or "").split(",") if name.strip())


def recall_measure(recall_set: RecallSet, *, encode: Encode, chunk: int,
                   on_progress: Callable[[int, int], None] | None = None) -> dict:
    """``evaluate``'s mean metrics (recall@k, MRR, nDCG) for vectors made by ``encode``, which is called with
    ``chunk`` items' inputs at a time (``on_progress(items done, items)`` after each), then with the queries.

    Also: how many item vectors were ranked, and how many items could not be read or encoded."""
    vectors: dict[Hashable, np.ndarray] = {}
    failed: dict[int, str] = {}
    total = len(recall_set.item_ids)
    for done, inputs, unreadable in _item_inputs(recall_set.item_ids, chunk):
        failed.update(unreadable)
        found, errors = encode(inputs) if inputs else ({}, {})
        vectors.update(found)
        failed.update({key[0]: reason for key, reason in errors.items()})
        if on_progress:
            on_progress(done, total)
    queries, query_errors = encode([query.embed_input(number) for number, query in enumerate(recall_set.queries)])
    if query_errors:
        (_, number), reason = next(iter(query_errors.items()))
        raise UserInputError(f"{recall_set.queries[number].where}: {reason}")
    candidates = _Candidates.of(vectors)
    metrics = metrics_mean(
        query_metrics(candidates.ranked(query, queries[("query", number)]), set(query.relevant))
        for number, query in enumerate(recall_set.queries)
    )
    return {"metrics": {name: round(metrics[name], 4) for name in METRIC_NAMES}, "vectors": len(vectors),
            "failed_items": len(failed)}


def _item_inputs(item_ids: list[int], chunk: int) -> Iterator[tuple[int, list[EmbedInput], dict[int, str]]]:
    """(items done, their inputs, reason for each item that could not be read), ``chunk`` items at a time:
    a large corpus's pictures are never all decoded at once."""
    for start in range(0, len(item_ids), chunk):
        inputs, unreadable = [], {}
        for item in Item.objects.filter(pk__in=item_ids[start:start + chunk]).order_by("pk"):
            try:
                inputs.extend(item_embed_inputs(item))
            except (OSError, UserInputError) as exc:
                unreadable[item.pk] = str(exc)
        yield min(start + chunk, len(item_ids)), inputs, unreadable


@dataclass(frozen=True)
class _Candidates:
    """Every item vector, one a row, with its item's id and kind and its modality."""
    matrix: np.ndarray
    item_ids: np.ndarray
    kinds: np.ndarray
    modalities: np.ndarray

    @classmethod
    def of(cls, vectors: dict[Hashable, np.ndarray]) -> "_Candidates":
        keys = list(vectors)
        kinds = dict(Item.objects.filter(pk__in=sorted({item_id for item_id, _ in keys})).values_list("pk", "kind"))
        matrix = np.vstack([vectors[key] for key in keys]).astype(np.float32) if keys else np.zeros((0, 1), np.float32)
        return cls(matrix, np.array([item_id for item_id, _ in keys], dtype=np.int64),
                   np.array([kinds[item_id] for item_id, _ in keys], dtype=object),
                   np.array([modality for _, modality in keys], dtype=object))

    def ranked(self, query: RecallQuery, vector: np.ndarray) -> list[int]:
        """Item ids best first, each scored by its best vector among those the query may match, to DEPTH."""
        allowed = np.ones(len(self.item_ids), dtype=bool)
        if query.modalities:
            allowed &= np.isin(self.modalities, query.modalities)
        if query.kinds:
            allowed &= np.isin(self.kinds, query.kinds)
        rows = np.flatnonzero(allowed)
        if not rows.size:
            return []
        scores = self.matrix[rows] @ np.asarray(vector, dtype=np.float32)
        ranked: list[int] = []
        for item_id in self.item_ids[rows[np.argsort(-scores, kind="stable")]].tolist():
            if item_id not in ranked:
                ranked.append(item_id)
                if len(ranked) == DEPTH:
                    break
        return ranked
