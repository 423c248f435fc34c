"""The queries the benchmarks time, shaped as people write them: words, then a photo, then a word to avoid."""
import numpy as np
from PIL import Image

from ..query.types import QueryPart

QUERY_SHAPES = {
    1: "text",
    2: "text + image",
    3: "text + image - text",
}


def query_parts(count: int, rng: np.random.Generator, *, words: list[str], negative_words: list[str],
                word_count: int, image_side: int) -> list[QueryPart]:
    """A query of ``count`` parts (`QUERY_SHAPES`): ``word_count`` of ``words``, then a random
    ``image_side``-pixel square image at weight 0.5, then one of ``negative_words`` at weight -0.3."""
    parts = [QueryPart(type="text", text=" ".join(rng.choice(words, size=word_count)))]
    if count >= 2:
        pixels = rng.integers(0, 255, (image_side, image_side, 3), dtype=np.uint8)
        parts.append(QueryPart(type="image", image=Image.fromarray(pixels), name="query.png", weight=0.5))
    if count >= 3:
        parts.append(QueryPart(type="text", text=str(rng.choice(negative_words)), weight=-0.3))
    return parts
