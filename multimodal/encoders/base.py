"""The contract every image/text encoder meets."""
from typing import Protocol

import numpy as np
from PIL import Image


class EncoderLoadError(RuntimeError):
    """A configured model could not be loaded (bad name, missing weights, no network)."""


class Encoder(Protocol):
    """Maps texts and images into one shared space.

    Both methods return an ``(n, dim)`` float32 array whose rows have unit L2 norm, so the inner
    product of two rows is their cosine similarity. ``name`` identifies the weights: vectors from
    encoders with different names are never compared.
    """

    name: str
    dim: int

    def encode_text(self, texts: list[str]) -> np.ndarray: ...

    def encode_image(self, images: list[Image.Image]) -> np.ndarray: ...


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms == 0, 1.0, norms)).astype(np.float32)
