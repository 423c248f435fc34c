"""Pictures are found by the words printed in them: the real Tesseract reads images rendered by the test."""
import io

import pytest
from PIL import Image, ImageDraw, ImageFont

from multimodal.models import Corpus, Item
from multimodal.query.types import SearchQuery
from multimodal.selectors import search_response
from multimodal.services import ingest as ingest_service

from ..conftest import image_bytes, ingest_files

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ocr_on")]

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def _printed(lines: list[str], *, background=(250, 250, 250), ink=(20, 20, 20), size=(640, 240)) -> bytes:
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    for number, line in enumerate(lines):
        draw.text((30, 30 + number * 70), line, fill=ink, font=ImageFont.truetype(FONT, 44))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def pictures() -> dict[str, bytes]:
    return {
        "screenshot.png": _printed(["Error 504", "Gateway Timeout"]),
        "sign.png": _printed(["BAKERY", "Fresh bread daily"], background=(120, 40, 30), ink=(250, 230, 180)),
        "red.png": image_bytes((255, 0, 0)),
    }


def test_a_picture_is_found_first_by_a_word_printed_in_it_and_says_where_the_word_is(pictures, deterministic_encoder,
                                                                                     client):
    corpus = Corpus.objects.create(name="pictures")
    report = ingest_files(corpus, pictures)
    assert (report.created, report.failures, report.warnings) == (3, [], [])
    screenshot = Item.objects.get(title="screenshot")
    assert screenshot.text.split() == ["Error", "504", "Gateway", "Timeout"]
    words = screenshot.metadata["ocr"]["words"]
    assert [word[0] for word in words] == ["Error", "504", "Gateway", "Timeout"]
    gateway = words[2]
    assert 0 < gateway[1] < 0.2 and 0.25 < gateway[2] < 0.6  # left, top: the second line's start
    assert screenshot.metadata["ocr"]["rotated"] == 0
    assert "BAKERY" in Item.objects.get(title="sign").text and Item.objects.get(title="red").text == ""

    for query, title in [("gateway timeout", "screenshot"), ("bakery", "sign")]:
        hit = search_response(query=SearchQuery(text=query, top_k=3))["results"][0]
        assert hit["title"] == title and hit["kind"] == "image"
        assert "keyword" in [contribution["channel"] for contribution in hit["explanation"]["contributions"]]
    hit = client.get("/api/search", {"q": "gateway", "top_k": 1}).json()["results"][0]
    assert hit["ocr_boxes"] == [gateway]


def test_ingesting_a_picture_again_reuses_its_reading(pictures, deterministic_encoder, monkeypatch):
    readings = []
    real_ocr = ingest_service.image_ocr
    monkeypatch.setattr(ingest_service, "image_ocr", lambda image, **kwargs: readings.append(1) or real_ocr(image, **kwargs))
    corpus = Corpus.objects.create(name="pictures")
    ingest_files(corpus, {"screenshot.png": pictures["screenshot.png"]})
    report = ingest_files(corpus, {"screenshot-again.png": pictures["screenshot.png"]})
    assert (report.created, report.updated) == (0, 1) and len(readings) == 1
    assert "Gateway" in Item.objects.get().text


def test_ocr_missing_is_said_once_and_a_slow_reading_is_a_warning_never_a_failure(pictures, deterministic_encoder,
                                                                                  settings):
    settings.MULTIMODAL_OCR_LANGUAGES = "qqq"  # a language Tesseract does not have: as if it were not installed
    report = ingest_files(Corpus.objects.create(name="no-ocr"), pictures)
    assert report.created == 3 and not report.failures
    assert [warning.reason for warning in report.warnings] == [ingest_service.OCR_MISSING]

    settings.MULTIMODAL_OCR_LANGUAGES = "eng"
    settings.MULTIMODAL_OCR_SECONDS_PER_PAGE = 0.001
    report = ingest_files(Corpus.objects.create(name="slow-ocr"), {"screenshot.png": pictures["screenshot.png"]})
    assert report.created == 1 and not report.failures
    [warning] = report.warnings
    assert warning.reason.startswith("OCR: reading the words in the picture took longer than 0.001")

    settings.MULTIMODAL_OCR = False
    report = ingest_files(Corpus.objects.create(name="ocr-off"), {"sign.png": pictures["sign.png"]})
    assert (report.created, report.warnings) == (1, [])
    assert Item.objects.get(corpus__name="ocr-off").text == ""
