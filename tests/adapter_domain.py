"""A synthetic domain where the base encoder is badly aligned and an adapter can learn the fix.

Each item has a caption of a few words. The deterministic encoder maps a text to the normalised
sum of its words' fixed random vectors, and an image to a fixed random rotation of its caption's
vector plus noise: captions and their images are unrelated to the base encoder (text->image
recall near chance), but one linear map relates them, which an adapter can learn from pairs.

Images carry their item number in their pixels (a solid colour), so the encoder can find their
caption; they are real PNG files and go through the real ingest path.
"""
import functools
import io
import zlib

import numpy as np
from PIL import Image

from multimodal import encoders

DOMAIN_ENCODER = "test-rotated-domain"
DIM = 64
VOCABULARY = [f"w{number}" for number in range(300)]
WORDS_PER_CAPTION = 4
NOISE = 0.3


# Cached: a generator per call costs ~0.3 ms, and a test asks for the same captions thousands of times
# (1,000 per registered encoder, more per catalogue and per query).
@functools.lru_cache(maxsize=None)
def caption(number: int, *, seed: int = 0) -> str:
    rng = np.random.default_rng([seed, number])
    return " ".join(rng.choice(VOCABULARY, size=WORDS_PER_CAPTION, replace=False))


@functools.lru_cache(maxsize=None)
def image_png(number: int) -> bytes:
    """An 8x8 PNG whose colour encodes ``number`` (< 65536)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (number % 256, number // 256, 7)).save(buffer, format="PNG")
    return buffer.getvalue()


@functools.lru_cache(maxsize=None)
def _word_vector(word: str) -> np.ndarray:
    vector = np.random.default_rng(zlib.crc32(word.encode())).standard_normal(DIM)
    vector.flags.writeable = False  # shared by every caller (cached)
    return vector


ROTATION = np.linalg.qr(np.random.default_rng(12345).standard_normal((DIM, DIM)))[0]


class RotatedCaptionEncoder:
    """Texts: bag of word vectors. Images: rotation of their caption's vector, plus noise."""

    name = DOMAIN_ENCODER
    dim = DIM

    def __init__(self, captions: dict[int, str]):
        self.captions = captions  # item number (in the image's pixels) -> caption

    def encode_text(self, texts):
        vectors = np.zeros((len(texts), DIM))
        for row, text in enumerate(texts):
            for word in text.lower().replace(".", " ").split():
                vectors[row] += _word_vector(word)
        return encoders.l2_normalise(vectors)

    def encode_image(self, images):
        vectors = []
        for image in images:
            red, green, _ = image.convert("RGB").getpixel((0, 0))
            number = red + 256 * green
            noise = np.random.default_rng([7, number]).standard_normal(DIM) / np.sqrt(DIM)
            vectors.append(ROTATION @ self.encode_text([self.captions[number]])[0] + NOISE * noise)
        return encoders.l2_normalise(np.array(vectors))


def domain_vectors(count: int) -> tuple[np.ndarray, np.ndarray]:
    """(caption vectors, image vectors) of items 0..count-1, without Django or the store."""
    captions = {number: caption(number) for number in range(count)}
    encoder = RotatedCaptionEncoder(captions)
    texts = encoder.encode_text([captions[number] for number in range(count)])
    images = encoder.encode_image([Image.open(io.BytesIO(image_png(number))) for number in range(count)])
    return texts, images


def catalogue_write(folder, numbers, *, shuffle_images: bool = False, titles_and_specs: bool = False) -> dict[int, str]:
    """A product CSV (description, image) and its PNGs in ``folder``; returns number -> caption.

    With ``shuffle_images`` each row names another row's image: pairs that mean nothing. With
    ``titles_and_specs`` each row also has a title and specs of other words, so its indexed text
    (title, description, specs) differs from its description, which is how people ask for it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    numbers = list(numbers)
    images = list(numbers)
    if shuffle_images:
        images = list(np.random.default_rng(3).permutation(numbers))
    lines = ["sku,title,description,specs,image" if titles_and_specs else "sku,description,image"]
    for number, image_number in zip(numbers, images):
        (folder / f"p{image_number}.png").write_bytes(image_png(image_number))
        if titles_and_specs:
            title, finish = caption(number, seed=1), caption(number, seed=2).split()[0]
            lines.append(f"SKU-{number},{title},{caption(number)},finish: {finish},p{image_number}.png")
        else:
            lines.append(f"SKU-{number},{caption(number)},p{image_number}.png")
    (folder / "catalogue.csv").write_text("\n".join(lines) + "\n")
    return {number: caption(number) for number in numbers}


def register(count: int = 1000):
    """Register the domain encoder for items 0..count-1 and return it (unregister when done)."""
    captions = {number: caption(number) for number in range(count)}
    encoders.register(DOMAIN_ENCODER, lambda: RotatedCaptionEncoder(captions))
    return encoders.get(DOMAIN_ENCODER)
