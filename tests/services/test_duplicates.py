"""Near-duplicate groups made at ingest, at two levels, measured on a labelled set of generated photos.

The deterministic encoder sees only a picture's mean colour, so every copy of a picture would pass any
CLIP check there and unrelated pictures of like colours would too. These tests use an encoder whose vectors
stand in for CLIP's where it matters: a picture is its palette (hue and saturation, weighted; exposure moves
neither much), so copies and other shots of a scene are close and other scenes are not. "Same" is decided by
the perceptual hash (CLIP confirms with a lenient cut); "similar" by these vectors.
"""
import io

import numpy as np
import pytest
from PIL import Image

from multimodal import encoders
from multimodal.benchmarks.duplicates import duplicates_measure, labelled_set, scene_draw
from multimodal.models import Corpus, Item

from ..conftest import ingest_files

pytestmark = pytest.mark.django_db

PALETTE = "test-palette"
HUE_BINS = 18


class PaletteEncoder:
    """A picture is its colours: a histogram of hue (weighted by saturation) plus one bin for greys, square-rooted
    and L2-normalised. Texts are their bag of words over a small vocabulary (the last axis for the rest)."""

    name = PALETTE
    dim = HUE_BINS + 1 + 8
    words = ("oak", "chair", "green", "red", "bicycle", "steel", "lamp")

    def encode_image(self, images):
        vectors = np.zeros((len(images), self.dim), dtype=np.float32)
        for row, image in enumerate(images):
            hsv = np.asarray(image.convert("RGB").resize((64, 48)).convert("HSV"), dtype=np.float32).reshape(-1, 3) / 255
            saturation = hsv[:, 1] * (hsv[:, 2] > 0.1)
            hue_bins = np.minimum((hsv[:, 0] * HUE_BINS).astype(int), HUE_BINS - 1)
            np.add.at(vectors[row], hue_bins, saturation)
            vectors[row, HUE_BINS] = (1 - saturation).sum() * 0.5
        return encoders.l2_normalise(np.sqrt(vectors))

    def encode_text(self, texts):
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace(".", " ").replace(";", " ").replace(":", " ").split():
                index = self.words.index(word) if word in self.words else len(self.words)
                vectors[row, HUE_BINS + 1 + index] += 1
        return encoders.l2_normalise(vectors)


@pytest.fixture
def palette_encoder(settings):
    encoders.register(PALETTE, PaletteEncoder)
    settings.MULTIMODAL_CLIP_MODEL = PALETTE
    yield encoders.get(PALETTE)
    encoders.unregister(PALETTE)


@pytest.fixture(scope="module")
def labelled():
    return labelled_set(scenes=20, unrelated=20, seed=0)


def test_groups_found_at_ingest_reach_the_precision_and_recall_targets(palette_encoder, labelled):
    figures = {figure.level: figure for figure in duplicates_measure(corpus=Corpus.objects.create(name="photos"),
                                                                     pictures=labelled)}
    for figure in figures.values():
        print(f"{figure.level:8} precision {figure.precision:.3f} recall {figure.recall:.3f} "
              f"({figure.right_pairs} of {figure.found_pairs} pairs found right, {figure.true_pairs} true pairs)")
    assert figures["same"].precision >= 0.95 and figures["same"].recall >= 0.9
    assert figures["similar"].precision >= 0.9 and figures["similar"].recall >= 0.8
