"""Batch encoding of item contents, shared by ingest and reindex."""
from dataclasses import dataclass
from typing import Hashable

import numpy as np
from PIL import Image

from .. import store
from ..models import PARENT_KINDS, Item
from ..readers.imaging import image_open

# CLIP reads at most 77 tokens; the head of a long text is all it can see.
ENCODER_TEXT_CHARS = 2000


@dataclass(frozen=True)
class EmbedInput:
    key: Hashable
    image: Image.Image | None = None
    text: str = ""


def inputs_encode(inputs: list[EmbedInput], *, encoder,
                  batch_size: int | None = None) -> tuple[dict[Hashable, np.ndarray], dict[Hashable, str]]:
    """Vectors for ``inputs`` keyed by ``key``, plus the reason for each input that failed.

    Images and texts are encoded in batches of ``batch_size`` (None: all images in one, all texts
    in one); if a batch breaks, its inputs are encoded one by one so only the culprit fails.
    """
    vectors: dict[Hashable, np.ndarray] = {}
    errors: dict[Hashable, str] = {}
    images = [entry for entry in inputs if entry.image is not None]
    texts = [entry for entry in inputs if entry.image is None]

    def encode(batch: list[EmbedInput]) -> np.ndarray:
        if batch[0].image is not None:
            return encoder.encode_image([entry.image for entry in batch])
        return encoder.encode_text([entry.text[:ENCODER_TEXT_CHARS] for entry in batch])

    for group in (images, texts):
        step = batch_size or len(group) or 1
        for batch in (group[start:start + step] for start in range(0, len(group), step)):
            try:
                vectors.update(zip((entry.key for entry in batch), encode(batch)))
            except Exception:
                for entry in batch:
                    try:
                        vectors[entry.key] = encode([entry])[0]
                    except Exception as exc:  # the model's own errors vary; the reason is reported
                        errors[entry.key] = f"could not be encoded ({exc})"
    return vectors, errors


def product_text(title: str, description: str, specs: dict[str, str], specs_text: str = "") -> str:
    """The text a product's vector is made from: title, description, then specs as 'key: value'."""
    specs_part = "; ".join(f"{key}: {value}" for key, value in specs.items()) or specs_text
    return ". ".join(part for part in (title, description, specs_part) if part)


def item_vector_record(item: Item, modality: str, vector: np.ndarray) -> store.VectorRecord:
    return store.VectorRecord(item_id=item.pk, corpus_id=item.corpus_id, kind=item.kind, modality=modality,
                              vector=vector, created_at=int(item.created_at.timestamp()))


def item_embed_inputs(item: Item) -> list[EmbedInput]:
    """What to encode for a stored item, keyed (item id, modality). Raises OSError/UserInputError.

    Images: the original file. Texts, passages and speech segments: the text. Products: title +
    description + specs, and the image when the row had one. Document pages and video scenes: their
    thumbnail (the page's rendering, the scene's keyframe, as ingest encoded them but smaller).
    Recordings, videos and documents: nothing (their children own the vectors).
    """
    if item.kind in PARENT_KINDS:
        return []
    inputs = []
    picture = item.thumbnail if item.kind in (Item.Kind.PAGE, Item.Kind.SCENE) else item.file
    if picture:
        with picture.open("rb") as handle:
            inputs.append(EmbedInput(key=(item.pk, "image"), image=image_open(handle.read(), name=picture.name)))
    if item.kind == Item.Kind.PRODUCT:
        specs = item.metadata.get("specs") or {}
        text = product_text(item.title, item.text, specs, item.metadata.get("specs_text", ""))
        inputs.append(EmbedInput(key=(item.pk, "text"), text=text))
    elif item.kind in (Item.Kind.TEXT, Item.Kind.SEGMENT, Item.Kind.PASSAGE):
        inputs.append(EmbedInput(key=(item.pk, "text"), text=item.text or item.title))
    return inputs
