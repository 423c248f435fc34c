"""Running a search: encode the query parts, fuse them, ask the vector store."""
import time
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .. import encoders, store
from ..errors import QueryError
from ..models import Corpus


@dataclass
class SearchQuery:
    """What to search for. Text and image vectors are summed (equal weights) when both are given."""

    text: str = ""
    image: Image.Image | None = None
    image_name: str = ""
    top_k: int = 10
    corpus: Corpus | None = None

    def summary(self) -> dict:
        """What was understood, as returned to the user."""
        return {
            "text": self.text or None,
            "image": {"name": self.image_name, "width": self.image.width, "height": self.image.height}
            if self.image is not None else None,
            "top_k": self.top_k,
            "corpus": self.corpus.name if self.corpus else None,
            "fusion": "vector",
        }


@dataclass
class SearchOutcome:
    query: SearchQuery
    hits: list[store.VectorHit]
    timings_ms: dict[str, float] = field(default_factory=dict)


def search_run(*, query: SearchQuery) -> SearchOutcome:
    """Nearest items to the query, best first, at most ``query.top_k``."""
    if not query.text and query.image is None:
        raise QueryError("nothing to search for: give a text or an image")
    started = time.perf_counter()
    encoder = encoders.get()
    part_vectors = []
    if query.text:
        part_vectors.append(encoder.encode_text([query.text])[0])
    if query.image is not None:
        part_vectors.append(encoder.encode_image([query.image])[0])
    # Embedding-level fusion: the sum of unit vectors, renormalised, points between the parts.
    query_vector = encoders.l2_normalise(np.sum(part_vectors, axis=0))[0]
    encoded = time.perf_counter()
    hits = store.collection_for(encoder).search(
        query_vector, limit=query.top_k, corpus_ids=[query.corpus.pk] if query.corpus else None
    )
    searched = time.perf_counter()
    return SearchOutcome(
        query=query,
        hits=hits,
        timings_ms={"encode": (encoded - started) * 1000, "search": (searched - encoded) * 1000},
    )
