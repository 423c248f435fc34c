"""Benchmarks that print figures: the product's path measured against a baseline in the same run."""
import io
import statistics
import time
import uuid

import numpy as np
from PIL import Image

from . import encoders
from .models import Corpus
from .selectors import search_response
from .services.embedding import inputs_encode, item_embed_inputs
from .services.ingest import Source, items_ingest
from .services.search import SearchQuery

WORDS = "red green blue bicycle chair wall cat dog tree river house lamp table car boat mountain city night".split()


def _generated_sources(count: int, rng: np.random.Generator) -> list[Source]:
    sources = []
    for index in range(count):
        if index % 2:
            text = " ".join(rng.choice(WORDS, size=6))
            data = f"{text}\n{index}".encode()
            name = f"text-{index}.txt"
        else:
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(buffer, format="PNG")
            data, name = buffer.getvalue(), f"image-{index}.png"
        sources.append(Source(name=name, read=lambda data=data: data, size=len(data)))
    return sources


def _percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]}


def search_benchmark(*, items: int, queries: int, keep: bool = False, on_progress=None) -> dict:
    """Ingest ``items`` generated items into a fresh corpus, then time ``queries`` text queries.

    Returns p50/p95 of the product's encode/search/total timings, and the search time of an exact
    numpy scan over the same vectors as the baseline.
    """
    rng = np.random.default_rng(0)
    corpus = Corpus.objects.create(name=f"bench-{uuid.uuid4().hex[:8]}")
    try:
        started = time.perf_counter()
        report = items_ingest(corpus=corpus, sources=_generated_sources(items, rng), on_progress=on_progress)
        ingest_s = time.perf_counter() - started
        texts = [" ".join(rng.choice(WORDS, size=3)) for _ in range(queries)]
        search_response(query=SearchQuery(text=texts[0], corpus=corpus))  # warm the model and the collection
        timings = {"encode": [], "search": [], "total": []}
        for text in texts:
            response = search_response(query=SearchQuery(text=text, top_k=10, corpus=corpus))
            for name in timings:
                timings[name].append(response["timings_ms"][name])
        encoder = encoders.get()
        matrix = _corpus_matrix(corpus, encoder)
        query_vectors = encoder.encode_text(texts)
        numpy_ms = []
        for vector in query_vectors:
            tick = time.perf_counter()
            np.argsort(-(matrix @ vector))[:10]
            numpy_ms.append((time.perf_counter() - tick) * 1000)
        return {
            "items": report.landed,
            "ingest_items_per_s": report.landed / ingest_s,
            "queries": queries,
            "product_ms": {name: _percentiles(values) for name, values in timings.items()},
            "numpy_exact_search_ms": _percentiles(numpy_ms),
            "encoder": encoder.name,
        }
    finally:
        if not keep:
            corpus.delete()


def _corpus_matrix(corpus: Corpus, encoder) -> np.ndarray:
    """The corpus's vectors, re-encoded from the database for the in-memory baseline."""
    inputs = [entry for item in corpus.items.all() for entry in item_embed_inputs(item)]
    vectors, _ = inputs_encode(inputs, encoder=encoder)
    return np.vstack(list(vectors.values()))
