"""Pictures are decoded within a memory budget (multimodal/readers/imaging.py): kept whole on disk, held small in memory."""
import io

import pytest
from PIL import Image

from multimodal.models import Corpus, Item

from ..conftest import image_bytes, ingest_files
from ..live_services import ingest_peaks_rss_mb

pytestmark = pytest.mark.django_db


def test_large_pictures_are_kept_whole_but_held_small_while_a_batch_is_ingested(tmp_path):
    """Four 36-MP PNGs in one batch: each is decoded in full once (108 MB) but held at 1024 px until the
    batch is embedded, so the batch costs about one decode, not four (six cost 650 MB on the old code)."""
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir(), large.mkdir()
    (small / "dot.png").write_bytes(image_bytes((10, 20, 30)))
    for index in range(4):
        Image.new("RGB", (6000, 6000), (40 * index, 0, 0)).save(large / f"poster{index}.png")
    baseline_mb, peak_mb = ingest_peaks_rss_mb([small, large], tmp_path / "data")
    assert peak_mb - baseline_mb < 300, (baseline_mb, peak_mb)


def test_a_large_picture_keeps_its_size_and_its_original(deterministic_encoder):
    buffer = io.BytesIO()
    Image.new("RGB", (3000, 2000), (0, 0, 250)).save(buffer, format="JPEG", quality=90)
    corpus = Corpus.objects.create(name="photos")
    ingest_files(corpus, {"wide.jpg": buffer.getvalue()})
    item = Item.objects.get(corpus=corpus)
    assert (item.metadata["width"], item.metadata["height"]) == (3000, 2000)
    assert item.file.read() == buffer.getvalue()
    assert max(Image.open(item.thumbnail).size) == 320
