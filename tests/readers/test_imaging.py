"""Pictures are decoded within a memory budget (multimodal/readers/imaging.py): kept whole on disk, held small in memory."""
import io
import os
import subprocess
import sys

import pytest
from PIL import Image

from multimodal.models import Corpus, Item

from ..conftest import image_bytes, ingest_files
from ..live_services import ROOT

pytestmark = pytest.mark.django_db


def _ingest_peak_rss_mb(folder, data_dir) -> int:
    """Peak RSS of `manage.py ingest FOLDER` run as a person would, on its own data folder (Milvus Lite)."""
    env = {key: value for key, value in os.environ.items() if key not in ("DJANGO_TEST_DB", "MILVUS_URI")}
    env |= {"MULTIMODAL_DATA_DIR": str(data_dir), "MILVUS_URI": str(data_dir / "lite.db"),
            "MULTIMODAL_CLIP_MODEL": "tiny-random", "CELERY_BROKER_URL": "", "MULTIMODAL_OCR": "0"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    script = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
              "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)")
    result = subprocess.run([sys.executable, "-c", script, sys.executable, "manage.py", "ingest", str(folder),
                             "--corpus", "photos"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1])


def test_large_pictures_are_kept_whole_but_held_small_while_a_batch_is_ingested(tmp_path):
    """Four 36-MP PNGs in one batch: each is decoded in full once (108 MB) but held at 1024 px until the
    batch is embedded, so the batch costs about one decode, not four (six cost 650 MB on the old code)."""
    small, large = tmp_path / "small", tmp_path / "large"
    small.mkdir(), large.mkdir()
    (small / "dot.png").write_bytes(image_bytes((10, 20, 30)))
    for index in range(4):
        Image.new("RGB", (6000, 6000), (40 * index, 0, 0)).save(large / f"poster{index}.png")
    baseline_mb = _ingest_peak_rss_mb(small, tmp_path / "data-small")
    peak_mb = _ingest_peak_rss_mb(large, tmp_path / "data-large")
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
