"""Ingesting files with the real tiny-random CLIP model into real Milvus Lite."""
import io
import os

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from multimodal import encoders, store
from multimodal.models import Corpus, Item
from multimodal.query.types import SearchQuery
from multimodal.selectors import search_response
from multimodal.services.jobs import job_create_from_paths
from multimodal.tasks import ingest_job_run

from ..conftest import image_bytes

# Lite and a real server; IVF_FLAT's ranking is tested in tests/store/test_store_ranking.py.
pytestmark = [pytest.mark.django_db, pytest.mark.engines("lite", "server-hnsw")]

COLOURS = [(230, 30, 30), (30, 200, 40), (40, 40, 220), (240, 220, 20), (120, 20, 160)]
FORMATS = [("jpg", "JPEG"), ("png", "PNG"), ("webp", "WEBP"), ("bmp", "BMP"), ("tiff", "TIFF")]


def _noise_image(seed: int, fmt: str) -> bytes:
    # Random pixels so each image's tiny-random vector is clearly its own.
    import numpy as np

    pixels = np.random.default_rng(seed).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def library(tmp_path):
    """A folder tree of generated images (every supported format) and text files."""
    root = tmp_path / "library"
    (root / "photos" / "nested").mkdir(parents=True)
    for index, (extension, fmt) in enumerate(FORMATS):
        folder = root / "photos" / ("nested" if index % 2 else "")
        (folder / f"photo{index}.{extension}").write_bytes(_noise_image(index, fmt))
    frames = [Image.new("RGB", (32, 32), colour) for colour in COLOURS[:2]]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    (root / "photos" / "animated.gif").write_bytes(buffer.getvalue())
    (root / "notes").mkdir()
    (root / "notes" / "bicycle.md").write_text("# A red bicycle\n\nLeaning against a brick wall.\n")
    (root / "notes" / "cat.txt").write_text("A sleeping cat on a sofa.")
    (root / ".hidden.txt").write_text("hidden files are skipped")
    return root


def _ingest(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("ingest", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_directory_ingest_makes_one_item_and_one_vector_per_file(library):
    out, err = _ingest(str(library), "--corpus", "lib")
    assert "8 items landed in corpus 'lib' (8 new, 0 updated), 0 failed" in out
    assert "8/8" in err  # the progress bar reached the end
    corpus = Corpus.objects.get(name="lib")
    assert corpus.items.filter(kind="image").count() == 6
    assert set(corpus.items.filter(kind="text").values_list("title", flat=True)) == {"A red bicycle", "A sleeping cat on a sofa."}
    assert store.collection_for(encoders.get()).count() == 8
    for item in corpus.items.filter(kind="image"):
        assert item.thumbnail and item.file  # thumbnail made once at ingest, original kept


def test_searching_with_an_ingested_image_returns_that_image_first(library):
    _ingest(str(library), "--corpus", "lib")
    for path in sorted((library / "photos").rglob("photo*")):
        image = Image.open(path).convert("RGB")
        results = search_response(query=SearchQuery(image=image, image_name=path.name, top_k=3))["results"]
        assert results[0]["title"] == path.stem
        assert results[0]["score"] == pytest.approx(1.0, abs=1e-3)


def test_reingest_updates_instead_of_duplicating(library):
    _ingest(str(library), "--corpus", "lib")
    out, _ = _ingest(str(library), "--corpus", "lib")
    assert "8 items landed in corpus 'lib' (0 new, 8 updated), 0 failed" in out
    assert Item.objects.count() == 8
    assert store.collection_for(encoders.get()).count() == 8


def test_bad_files_fail_alone_with_reasons_and_the_rest_land(library):
    bad = library / "bad"
    bad.mkdir()
    (bad / "corrupt.jpg").write_bytes(image_bytes(fmt="JPEG")[:60])
    (bad / "not-an-image.png").write_text("hello")
    (bad / "empty.txt").write_text("   \n")
    (bad / "binary.txt").write_bytes(b"\x00\x01\x02")
    (bad / "archive.rar").write_bytes(b"Rar!")
    out, _ = _ingest(str(library), str(library / "missing"), "--corpus", "lib")
    assert "8 items landed" in out and "6 failed" in out
    assert "corrupt.jpg: the image is corrupt or truncated" in out
    assert "not-an-image.png: not an image" in out
    assert "empty.txt: the text file is empty" in out
    assert "binary.txt: binary data in a text file" in out
    assert "archive.rar: unsupported file type '.rar'" in out
    assert "missing: no such file or directory" in out


def test_oversized_files_are_refused_with_the_limit_named(library, settings):
    settings.MULTIMODAL_MAX_FILE_MB = 0
    out = io.StringIO()
    with pytest.raises(CommandError, match="nothing was ingested"):
        call_command("ingest", str(library / "notes"), "--corpus", "lib", stdout=out, stderr=io.StringIO())
    assert "cat.txt: too large: 25 bytes, the limit is 0 MB" in out.getvalue()
    assert Item.objects.count() == 0


def test_exif_orientation_is_honoured(tmp_path):
    rotated = Image.new("RGB", (60, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buffer = io.BytesIO()
    rotated.save(buffer, format="JPEG", exif=exif.tobytes())
    (tmp_path / "portrait.jpg").write_bytes(buffer.getvalue())
    _ingest(str(tmp_path / "portrait.jpg"), "--corpus", "exif")
    item = Item.objects.get(title="portrait")
    assert (item.metadata["width"], item.metadata["height"]) == (20, 60)
    thumbnail = Image.open(item.thumbnail.path)
    assert thumbnail.height > thumbnail.width


def test_animated_gif_is_indexed_by_its_first_frame(library):
    _ingest(str(library), "--corpus", "lib")
    def score_of_animated(colour) -> float:
        query = SearchQuery(image=Image.new("RGB", (32, 32), colour), top_k=10)
        return next(r["score"] for r in search_response(query=query)["results"] if r["title"] == "animated")

    assert score_of_animated(COLOURS[0]) == pytest.approx(1.0, abs=1e-3)
    assert score_of_animated(COLOURS[1]) < score_of_animated(COLOURS[0]) - 0.01


def test_celery_task_runs_eagerly_without_a_broker(library, settings):
    assert settings.CELERY_TASK_ALWAYS_EAGER
    corpus = Corpus.objects.create(name="eager")
    job = job_create_from_paths(corpus=corpus, paths=[str(library / "notes"), str(library / "nope")])
    ingest_job_run.delay(job.pk).get()
    job.refresh_from_db()
    assert (job.status, job.total, job.done, job.failed) == ("done", 3, 2, 1)
    assert list(job.units.filter(status="failed").values_list("name", "reason")) == [
        (str(library / "nope"), "no such file or directory")]


def test_reindex_rebuilds_the_vector_store_from_the_database(library):
    _ingest(str(library), "--corpus", "lib")
    collection = store.collection_for(encoders.get())
    collection.drop()
    assert search_response(query=SearchQuery(text="a red bicycle"))["results"] == []
    out = io.StringIO()
    call_command("reindex", stdout=out, stderr=io.StringIO())
    assert "8 items reindexed, 0 failed" in out.getvalue()
    assert collection.count() == 8
    photo = library / "photos" / "photo0.jpg"
    results = search_response(query=SearchQuery(image=Image.open(photo).convert("RGB"), top_k=1))["results"]
    assert results[0]["title"] == "photo0"


def test_deleting_items_or_a_corpus_removes_their_vectors_and_files(library, django_capture_on_commit_callbacks):
    _ingest(str(library), "--corpus", "lib")
    collection = store.collection_for(encoders.get())
    item = Item.objects.filter(kind="image").first()
    thumbnail_path = item.thumbnail.path
    with django_capture_on_commit_callbacks(execute=True):
        item.delete()
    assert collection.count() == 7
    assert not os.path.exists(thumbnail_path)
    with django_capture_on_commit_callbacks(execute=True):
        Corpus.objects.get(name="lib").delete()
    assert collection.count() == 0
    assert search_response(query=SearchQuery(text="a red bicycle"))["results"] == []
