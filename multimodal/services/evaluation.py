"""Measured relevance: a set of queries run through the product's own search path, and scored.

Each query goes through what a user's search goes through: `query_parse` (the same parsing and
limits as the page, the API and the ``search`` command), `search_response` (encoding, the live
index of each corpus with its adapter, fusion, the keyword channel, hydration). Its ranked ids
are scored against the ids the query names as relevant (`multimodal.learning.metrics`), and its wall-clock
time is its latency. The first query is run once more beforehand, unscored and untimed, so model
loading does not count as latency.

A query file is JSONL, one query a line::

    {"text": "red bicycle", "relevant": [12, "bike.jpg"]}
    {"image": "queries/q1.jpg", "relevant": ["photos/bike.jpg"]}           # paths: relative to the file
    {"voice": "queries/q2.wav", "relevant": [7]}                            # transcribed, then searched
    {"item": 12, "relevant": [13, 14]}                                      # more like this
    {"parts": [{"type": "text", "value": "bicycle"}, {"type": "image", "path": "red.png", "weight": 0.5}],
     "relevant": [12], "fusion": "rrf"}

``relevant`` names items by id, source name, row id or file name (`pairs.ItemResolver`). Optional
per line: ``corpus``, ``kind``, ``modality`` (which item vectors may match), ``fusion``,
``hybrid`` (the keyword channel, true/false), ``id`` (a label in the per-query output).

`queries_from_corpus` builds the set from a corpus's own pairs instead: each caption (a product's
description, a caption line) asks for its image among the corpus's image vectors, with the
keyword channel off: the Flickr30k/COCO text->image protocol open_clip reports as recall@k.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from django.core.files.uploadedfile import SimpleUploadedFile

from .. import encoders
from ..errors import UserInputError
from ..learning.metrics import METRIC_NAMES, metrics_mean, percentile, query_metrics
from ..models import Adapter, Corpus
from ..query.parse import query_parse
from ..query.parts import MAX_QUERY_TEXT_CHARS, PARTS, UPLOAD_TYPES
from ..query.types import SearchQuery
from ..selectors import search_response
from .adapter_activation import index_describe
from .pairs import ItemResolver, corpus_pairs, file_beside, jsonl_read

LINE_KEYS = {"id", "text", *UPLOAD_TYPES, "item", "parts", "relevant", "corpus", "kind", "modality", "fusion", "hybrid"}
MODALITY_ORDER = tuple(PARTS)


@dataclass
class EvalQuery:
    where: str  # "queries.jsonl line 3": how errors and the per-query output name it
    label: str
    data: dict  # query_parse data
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # query_parse files: field -> (name, bytes)
    relevant: list = field(default_factory=list)  # ids or names, as written
    modality: str = "text"  # the part types, e.g. "text" or "text+image"

    def query(self, *, corpus: str | None, fusion: str | None, depth: int) -> SearchQuery:
        """The query as a user's search reads it; UserInputError naming the line if it cannot be read."""
        data = {**self.data, "top_k": depth}
        if corpus:
            data["corpus"] = corpus
        if fusion:
            data["fusion"] = fusion
        files = {name: SimpleUploadedFile(filename, content) for name, (filename, content) in self.files.items()}
        try:
            return query_parse(data, files)
        except UserInputError as exc:
            raise UserInputError(f"{self.where}: {exc}") from None

    def as_line(self) -> dict:
        """The query as a line of a query file (for queries built from a corpus)."""
        line = {"id": self.label, "text": self.data["q"], "relevant": self.relevant}
        line.update({key: self.data[key] for key in ("corpus", "modality") if self.data.get(key)})
        if self.data.get("hybrid"):
            line["hybrid"] = self.data["hybrid"] == "true"
        return line


def queries_read(path: Path) -> list[EvalQuery]:
    """Every query of a JSONL file, checked (files readable, relevant ids given) before any runs."""
    queries = [_line_query(path, number, row) for number, row in jsonl_read(path)]
    if not queries:
        raise UserInputError(f"{path}: no queries (one JSON object per line)")
    return queries


def _line_query(path: Path, number: int, row: dict) -> EvalQuery:
    where = f"{path.name} line {number}"
    unknown = sorted(set(row) - LINE_KEYS)
    if unknown:
        raise UserInputError(f"{where}: unknown key {', '.join(unknown)} (use {', '.join(sorted(LINE_KEYS))})")
    relevant = row.get("relevant")
    if not isinstance(relevant, list) or not relevant:
        raise UserInputError(f'{where}: "relevant" must be a non-empty list of item ids or file names')
    query = EvalQuery(where=where, label=str(row.get("id", number)), data={}, relevant=relevant)
    types = []
    if "text" in row:
        if not isinstance(row["text"], str) or not row["text"].strip():
            raise UserInputError(f'{where}: "text" must be a non-empty string')
        query.data["q"] = row["text"]
        types.append("text")
    for kind in UPLOAD_TYPES:
        if kind in row:
            file_path = file_beside(path.parent, row[kind], where=where, what=kind)
            query.files[kind] = (file_path.name, file_path.read_bytes())
            types.append(kind)
    if "item" in row:
        query.data["item"] = row["item"]  # an id, or a name resolved with the relevant items
        types.append("item")
    if "parts" in row:
        parts = _parts(path, where, row["parts"], query.files)
        query.data["parts"] = parts
        types += [str(part.get("type")) for part in parts]
    if not types:
        raise UserInputError(f'{where}: nothing to search for: give "text", "image", "voice", "item" or "parts"')
    for key in ("corpus", "kind", "modality"):
        if key in row:
            value = row[key]
            query.data[key] = ",".join(value) if isinstance(value, list) else str(value)
    if "fusion" in row:
        query.data["fusion"] = str(row["fusion"])
    if "hybrid" in row:
        if not isinstance(row["hybrid"], bool):
            raise UserInputError(f'{where}: "hybrid" must be true or false')
        query.data["hybrid"] = "true" if row["hybrid"] else "false"
    query.modality = "+".join(kind for kind in MODALITY_ORDER if kind in types)
    return query


def _parts(path: Path, where: str, parts, files: dict) -> list[dict]:
    """A line's parts as query_parse parts: files named by ``path`` become uploads."""
    if not isinstance(parts, list) or not parts:
        raise UserInputError(f'{where}: "parts" must be a non-empty list')
    out = []
    for number, part in enumerate(parts):
        if not isinstance(part, dict):
            raise UserInputError(f"{where}: part {number} must be an object")
        part = dict(part)
        if part.get("type") in UPLOAD_TYPES and "path" in part:
            file_path = file_beside(path.parent, part.pop("path"), where=f"{where} part {number}", what=part["type"])
            field_name = f"part{number}"
            files[field_name] = (file_path.name, file_path.read_bytes())
            part["file"] = field_name
        out.append(part)
    return out


def queries_from_corpus(corpus: Corpus, *, holdout_of: Adapter | None = None) -> list[EvalQuery]:
    """Caption -> image queries from the corpus's own pairs (only the adapter's held-out ones, if given)."""
    pairs = corpus_pairs(corpus)
    if holdout_of is not None:
        if not holdout_of.holdout_item_ids:
            raise UserInputError(f"{holdout_of} kept no items of the corpus aside (trained with no holdout, or on a "
                                 f"pairs file of images outside it)")
        held = set(holdout_of.holdout_item_ids)
        pairs = [pair for pair in pairs if pair.image_item_id in held]
    queries, seen = [], set()
    for pair in pairs:
        text = _shorten(pair.query)
        if not text or (text, pair.image_item_id) in seen:
            continue
        seen.add((text, pair.image_item_id))
        queries.append(EvalQuery(
            where=f"corpus {corpus.name} caption {len(queries) + 1}", label=f"item {pair.image_item_id}",
            data={"q": text, "corpus": corpus.name, "modality": "image", "hybrid": "false"},
            relevant=[pair.image_item_id],
        ))
    if not queries:
        raise UserInputError(f"corpus '{corpus.name}' holds no image-text pairs to make queries from: products with "
                             f"an image, or images with a caption file of the same name")
    return queries


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    if len(text) <= MAX_QUERY_TEXT_CHARS:
        return text
    return text[:MAX_QUERY_TEXT_CHARS].rsplit(" ", 1)[0]


def evaluation_run(
    *,
    queries: list[EvalQuery],
    corpus: str | None = None,
    fusion: str | None = None,
    depth: int = 10,
    on_progress: Callable[[int], None] | None = None,
) -> dict:
    """Run every query (``corpus``/``fusion`` override each line's) and return the scores.

    The report: overall and per query modality, the mean of each metric and the latency p50/p95
    (ms); per query, the rank of its first relevant result; and which index each corpus searched.
    """
    scope = _corpora(corpus)
    prepared = [(query, _relevant(query, scope)) for query in queries]
    _search(prepared[0][0], corpus=corpus, fusion=fusion, depth=depth)  # warm-up: loads the models
    rows = []
    for done, (query, relevant) in enumerate(prepared, start=1):
        started = time.perf_counter()
        ranked = _search(query, corpus=corpus, fusion=fusion, depth=depth)
        latency_ms = (time.perf_counter() - started) * 1000
        scores = query_metrics(ranked, relevant)
        first = next((rank for rank, item_id in enumerate(ranked, start=1) if item_id in relevant), None)
        rows.append({"query": query.where, "id": query.label, "modality": query.modality,
                     "first_relevant_rank": first, "latency_ms": round(latency_ms, 2), **scores})
        if on_progress:
            on_progress(done)
    groups = {"all": rows}
    for modality in sorted({row["modality"] for row in rows}):
        groups[modality] = [row for row in rows if row["modality"] == modality]
    names = {corpus.name for corpus in scope} or {name for query, _ in prepared for name in _list(query.data.get("corpus"))}
    searched = Corpus.objects.filter(name__in=names) if names else Corpus.objects.all()
    return {
        "queries": len(rows),
        "depth": depth,
        "encoder": encoders.get().name,
        "indexes": {entry.name: index_describe(entry)["live"] for entry in searched},
        "groups": {name: _summary(group) for name, group in groups.items()},
        "per_query": rows,
    }


def _summary(rows: list[dict]) -> dict:
    latencies = [row["latency_ms"] for row in rows]
    means = metrics_mean({name: row[name] for name in METRIC_NAMES} for row in rows)
    return {"queries": len(rows), **{name: round(value, 4) for name, value in means.items()},
            "latency_p50_ms": round(percentile(latencies, 50), 2), "latency_p95_ms": round(percentile(latencies, 95), 2)}


def _search(query: EvalQuery, *, corpus: str | None, fusion: str | None, depth: int) -> list[int]:
    search_query = query.query(corpus=corpus, fusion=fusion, depth=depth)
    try:
        response = search_response(query=search_query, fields=["id"])
    except UserInputError as exc:
        raise UserInputError(f"{query.where}: {exc}") from None
    return [result["id"] for result in response["results"]]


def _relevant(query: EvalQuery, scope: list[Corpus]) -> set[int]:
    """The query's relevant item ids, each checked to exist where the query searches."""
    corpora = scope or _corpora(query.data.get("corpus"), where=query.where)
    resolver = ItemResolver(corpora or None)
    if isinstance(query.data.get("item"), str):
        query.data["item"] = ItemResolver().resolve(query.data["item"], where=f"{query.where} item")
    return {resolver.resolve(reference, where=f"{query.where} relevant") for reference in query.relevant}


def _corpora(names: str | None, *, where: str = "--corpus") -> list[Corpus]:
    wanted = _list(names)
    found = list(Corpus.objects.filter(name__in=wanted))
    missing = sorted(set(wanted) - {corpus.name for corpus in found})
    if missing:
        raise UserInputError(f"{where}: no corpus named {', '.join(repr(name) for name in missing)}")
    return found


def _list(value) -> list[str]:
    return [name.strip() for name in str(value or "").split(",") if name.strip()]


def queries_write(queries: list[EvalQuery], path: Path) -> None:
    """Save queries as a query file (JSONL) that `queries_read` reads back."""
    with open(path, "w", encoding="utf-8") as handle:
        for query in queries:
            handle.write(json.dumps(query.as_line(), ensure_ascii=False) + "\n")
