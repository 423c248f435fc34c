"""Query images are decoded within a small budget: refused from their header when too large, JPEGs decoded
at reduced scale, a bounded number at once per process; anonymous searches have a default rate limit.

A 285 KB 10000x10000 PNG once cost 430-760 MB to decode, and six anonymous searches with it at once
took the web process from 1.5 to 5.3 GB.
"""
import base64
import io
import json
import os
import struct
import subprocess
import sys
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from PIL import Image

from multimodal.models import Corpus
from multimodal.readers import imaging

from ..conftest import image_bytes, ingest_files
from ..live_services import ROOT

pytestmark = pytest.mark.django_db
SEARCH = "/api/search"


def huge_png(width: int, height: int) -> bytes:
    """A black RGB PNG of any size, written row by row (the test never holds its pixels)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor, row, rows = zlib.compressobj(9), b"\0" * (1 + 3 * width), []
    for _ in range(height):
        rows.append(compressor.compress(row))
    rows.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(rows)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def png_100mp() -> bytes:
    return huge_png(10_000, 10_000)


@pytest.fixture
def corpus(deterministic_encoder):
    corpus = Corpus.objects.create(name="shop")
    assert ingest_files(corpus, {"red.png": image_bytes((255, 0, 0)), "blue.png": image_bytes((0, 0, 255))}).landed == 2
    return corpus


def _png_upload(data: bytes, name="huge.png"):
    return SimpleUploadedFile(name, data, content_type="image/png")


REFUSAL = "huge.png: the image is 10,000×10,000 (100,000,000 pixels); query images may have at most 16,000,000 pixels"


def test_a_100_megapixel_png_query_is_refused_with_its_size_and_the_limit(client, corpus, png_100mp):
    assert len(png_100mp) < 400_000  # small on the wire, 300 MB and more once decoded
    response = client.post(SEARCH, {"image": _png_upload(png_100mp), "q": "red"})
    assert response.status_code == 400
    assert REFUSAL in response.json()["error"]
    as_json = client.post(SEARCH, json.dumps({"parts": [{"type": "image", "name": "huge.png",
                                                         "value": base64.b64encode(png_100mp).decode()}]}),
                          content_type="application/json")
    assert as_json.status_code == 400 and REFUSAL in as_json.json()["error"]


PEAK_GROWTH_SCRIPT = """
import resource, sys
import django
django.setup()
from multimodal.readers import imaging
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    imaging.query_image_open(data, name="huge.png")
except imaging.ImageTooLarge as exc:
    print(exc)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_refusing_it_decodes_nothing(png_100mp, tmp_path):
    """The refusal comes from the header alone: the peak memory of the process hardly moves (a decode: 300+ MB)."""
    path = tmp_path / "huge.png"
    path.write_bytes(png_100mp)
    result = subprocess.run([sys.executable, "-c", PEAK_GROWTH_SCRIPT, str(path)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env={**os.environ, "DJANGO_SETTINGS_MODULE": "searchsite.settings"})
    refusal, peak_growth_mb = result.stdout.splitlines()[-2:] if result.returncode == 0 else (result.stderr, "")
    assert REFUSAL in refusal
    assert int(peak_growth_mb) < 30


def test_the_page_and_its_upload_endpoint_refuse_it_too(client, corpus, png_100mp):
    kept = client.post("/query-uploads", {"type": "image", "file": _png_upload(png_100mp)})
    assert kept.status_code == 413 and REFUSAL in kept.json()["error"]
    page = client.post("/", {"q": "red", "image": _png_upload(png_100mp)})
    assert page.status_code == 400 and REFUSAL in page.content.decode()


def test_the_budget_is_a_setting(client, corpus, settings):
    settings.MULTIMODAL_MAX_QUERY_IMAGE_PIXELS = 1000
    response = client.post(SEARCH, {"image": _png_upload(image_bytes(size=(40, 30)), name="small.png")})
    assert response.status_code == 400
    assert "small.png: the image is 40×30 (1,200 pixels); query images may have at most 1,000 pixels" \
        in response.json()["error"]


def test_a_large_jpeg_photo_is_decoded_at_reduced_scale_and_searched(client, corpus):
    """24 MP, over the budget in full, is read at 1/4 scale (1500x1000): accepted, and found as blue."""
    buffer = io.BytesIO()
    Image.new("RGB", (6000, 4000), (0, 0, 250)).save(buffer, format="JPEG", quality=90)
    photo = buffer.getvalue()
    decoded = imaging.query_image_open(photo, name="photo.jpg")
    assert max(decoded.size) <= 1024 and decoded.info["source_size"] == (6000, 4000)
    response = client.post(SEARCH, {"image": SimpleUploadedFile("photo.jpg", photo, content_type="image/jpeg"),
                                    "top_k": 1})
    assert response.status_code == 200, response.content[:300]
    body = response.json()
    assert (body["query"]["image"]["width"], body["query"]["image"]["height"]) == (6000, 4000)
    assert body["results"][0]["title"] == "blue"


def test_images_wait_for_a_free_decode_slot_and_get_503_when_none_frees_up(client, corpus, settings):
    settings.MULTIMODAL_QUERY_IMAGE_DECODES = 1
    settings.MULTIMODAL_QUERY_IMAGE_DECODE_WAIT_S = 1
    query = image_bytes((250, 0, 0))
    with imaging.decode_slot():  # another request is decoding
        busy = client.post(SEARCH, {"image": _png_upload(query, name="red.png")})
        page = client.post("/", {"image": _png_upload(query, name="red.png")})
    assert busy.status_code == 503 and busy["Retry-After"] == "5"
    assert busy.json() == {"error": "the server is busy reading other query images: retry in a few seconds"}
    assert page.status_code == 503 and "the server is busy reading other query images" in page.content.decode()
    freed = client.post(SEARCH, {"image": _png_upload(query, name="red.png"), "top_k": 1})
    assert freed.status_code == 200 and freed.json()["results"][0]["title"] == "red"


def test_anonymous_searches_are_rate_limited_per_address_by_default(client, corpus, django_user_model):
    """60 a minute for visitors (API and page together); logged-in users and API tokens are not held by it."""
    for _ in range(59):
        assert client.get(SEARCH, {"q": "red"}).status_code == 200
    assert client.get("/", {"q": "red"}).status_code == 200
    refused = client.get(SEARCH, {"q": "red"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused.json()["error"].startswith("too many searches from your address: retry in ")
    page = client.get("/", {"q": "red"})
    assert page.status_code == 429 and "Too many searches from your address" in page.content.decode()

    assert client.__class__(REMOTE_ADDR="10.0.0.9").get(SEARCH, {"q": "red"}).status_code == 200
    staff = django_user_model.objects.create_user("staff", password="pw-staff-12345", is_staff=True)
    out = io.StringIO()
    call_command("create_api_token", "staff", stdout=out)
    key = out.getvalue().split()[-1]
    assert client.get(SEARCH, {"q": "red"}, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 200
    client.force_login(staff)
    assert client.get(SEARCH, {"q": "red"}).status_code == 200
    assert client.get("/", {"q": "red"}).status_code == 200
