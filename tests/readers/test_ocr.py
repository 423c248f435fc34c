"""Words printed in pictures are read by the real Tesseract (multimodal/readers/ocr.py).

Word accuracy here: the words of the expected text found in the recognised text in the same order
(difflib's matching blocks over the two word sequences), divided by the number of expected words.
"""
import difflib
import time

import numpy as np
import pytesseract
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from multimodal.errors import IngestError
from multimodal.readers.ocr import image_ocr, ocr_available

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
LINES = [
    "Quarterly invoice for the harbour warehouse",
    "Payment is due within thirty days of delivery",
    "Please quote the order number on every letter",
    "Questions about shipping go to our support desk",
    "The blue van leaves the depot every morning",
]
MARKED_WORD = "warehouse"


def _word_accuracy(recognised: str, expected: list[str]) -> float:
    expected_words = " ".join(expected).split()
    matcher = difflib.SequenceMatcher(a=expected_words, b=recognised.split(), autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(expected_words)


def _photo_like(size: tuple[int, int], seed: int) -> Image.Image:
    """Smooth colour gradients, soft blobs and sensor noise: a photo's texture without any letters."""
    rng = np.random.default_rng(seed)
    height, width = size[1], size[0]
    rows, columns = np.mgrid[0:height, 0:width]
    channels = [150 + 50 * np.sin(columns / (60 + 25 * k) + k) + 40 * np.cos(rows / (45 + 20 * k)) for k in range(3)]
    pixels = np.stack(channels, axis=-1) + rng.normal(0, 18, (height, width, 3))
    picture = Image.fromarray(pixels.clip(0, 255).astype("uint8"))
    draw = ImageDraw.Draw(picture)
    for _ in range(12):
        x, y, radius = rng.integers(0, width), rng.integers(0, height), rng.integers(15, 80)
        colour = tuple(int(channel) for channel in rng.integers(60, 255, 3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    return picture.filter(ImageFilter.GaussianBlur(2))


def _page(background: Image.Image, lines: list[str] = LINES) -> tuple[Image.Image, tuple[float, float, float, float]]:
    """``lines`` drawn in black on ``background``; with the box of MARKED_WORD as fractions of the picture."""
    page = background.copy()
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(FONT, 24)
    marked_box = None
    for index, line in enumerate(lines):
        origin = (30, 30 + 50 * index)
        draw.text(origin, line, font=font, fill="black")
        if MARKED_WORD in line.split():
            prefix = line[:line.index(MARKED_WORD)]
            left, top, right, bottom = draw.textbbox((origin[0] + draw.textlength(prefix, font=font), origin[1]),
                                                     MARKED_WORD, font=font)
            marked_box = (left / page.width, top / page.height, (right - left) / page.width,
                          (bottom - top) / page.height)
    return page, marked_box


@pytest.fixture(scope="module")
def white_page():
    return _page(Image.new("RGB", (680, 300), "white"))


def _box_of(result, word: str) -> tuple[float, float, float, float]:
    matches = [found.box for found in result.words if found.text == word]
    assert len(matches) == 1, [found.text for found in result.words]
    return matches[0]


def _assert_box_near(found, drawn, tolerance=0.03):
    """Each side of the found box within ``tolerance`` of the image's size from where it was drawn."""
    found_sides = (found[0], found[1], found[0] + found[2], found[1] + found[3])
    drawn_sides = (drawn[0], drawn[1], drawn[0] + drawn[2], drawn[1] + drawn[3])
    assert all(abs(a - b) <= tolerance for a, b in zip(found_sides, drawn_sides)), (found, drawn)


def test_clean_black_on_white_text_is_read_word_for_word_line_by_line_with_its_boxes(white_page):
    page, marked_box = white_page
    result = image_ocr(page, languages="eng", timeout_s=20)
    assert _word_accuracy(result.text, LINES) >= 0.95, result.text
    assert len(result.text.splitlines()) == len(LINES)
    assert result.rotated == 0
    assert [word.text for word in result.words] == result.text.split()
    assert all(word.confidence >= 60 for word in result.words)
    _assert_box_near(_box_of(result, MARKED_WORD), marked_box)


def test_text_printed_over_a_photo_is_read():
    page, marked_box = _page(_photo_like((680, 300), seed=3))
    result = image_ocr(page, languages="eng", timeout_s=20)
    assert _word_accuracy(result.text, LINES) >= 0.95, result.text
    _assert_box_near(_box_of(result, MARKED_WORD), marked_box)


@pytest.mark.parametrize("turned_ccw", [90, 180, 270])
def test_a_scan_lying_sideways_or_upside_down_is_turned_read_and_boxed_on_the_picture_as_given(turned_ccw):
    page, (left, top, width, height) = _page(Image.new("RGB", (620, 170), "white"), LINES[:3])
    scan = page.rotate(turned_ccw, expand=True)  # Pillow turns counter-clockwise
    result = image_ocr(scan, languages="eng", timeout_s=20)
    assert result.rotated == turned_ccw  # turning it back clockwise by as much makes it upright
    assert _word_accuracy(result.text, LINES[:3]) >= 0.90, result.text
    drawn_on_scan = {90: (top, 1 - left - width, height, width),
                     180: (1 - left - width, 1 - top - height, width, height),
                     270: (1 - top - height, left, height, width)}[turned_ccw]
    _assert_box_near(_box_of(result, MARKED_WORD), drawn_on_scan)


def test_a_photo_without_text_gives_no_words_without_spending_the_time_limit():
    result = image_ocr(_photo_like((1024, 768), seed=7), languages="eng", timeout_s=20)
    assert len(result.words) <= 1, result.words
    assert result.seconds < 5


def test_reading_stops_at_the_time_limit_with_an_error_naming_it():
    font = ImageFont.truetype(FONT, 28)
    page = Image.new("L", (2000, 2800), 255)
    draw = ImageDraw.Draw(page)
    for index in range(60):
        draw.text((60, 60 + 44 * index), " ".join(LINES[index % len(LINES)].split() * 2), font=font, fill=0)
    started = time.perf_counter()
    with pytest.raises(IngestError, match=r"^reading the words in the picture took longer than 0\.3 s$"):
        image_ocr(page, languages="eng", timeout_s=0.3)
    assert time.perf_counter() - started < 2


def test_black_text_on_a_transparent_screenshot_is_read_as_shown_over_white():
    screenshot = Image.new("RGBA", (420, 90), (0, 0, 0, 0))
    ImageDraw.Draw(screenshot).text((12, 28), "Error: connection refused", font=ImageFont.truetype(FONT, 24),
                                    fill=(0, 0, 0, 255))
    assert image_ocr(screenshot, languages="eng", timeout_s=20).text == "Error: connection refused"


def test_a_picture_too_small_to_hold_a_line_gives_no_words():
    result = image_ocr(Image.new("RGB", (1, 1), "white"), languages="eng", timeout_s=20)
    assert (result.text, result.words, result.rotated) == ("", [], 0)


def test_ocr_is_available_only_with_the_binary_and_every_configured_language(monkeypatch, settings):
    settings.MULTIMODAL_OCR_LANGUAGES = "eng"
    assert ocr_available()
    settings.MULTIMODAL_OCR_LANGUAGES = "eng+xyz"
    assert not ocr_available()
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    assert not ocr_available("eng")
