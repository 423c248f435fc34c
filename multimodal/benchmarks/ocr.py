"""OCR timed against the bare Tesseract call on the same page, taking turns in one run."""
import difflib
import os
import random
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass

import pytesseract
from PIL import Image, ImageDraw, ImageFont

from ..readers.ocr import TESSERACT_ENVIRONMENT, image_ocr

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
WORDS = ("invoice payment account customer delivery address order number total amount shipping receipt "
         "quarterly report revenue growth market product service support contact telephone warehouse "
         "the of and to for with on by from").split()


@dataclass(frozen=True)
class OcrBench:
    size: tuple[int, int]
    words: int  # words printed on the page
    ocr_s: float  # median seconds of image_ocr on the upright page
    bare_s: float  # median seconds of pytesseract.image_to_string on the same page (one OpenMP thread, too)
    bare_openmp_s: float  # the same with Tesseract's OpenMP threads left on
    turned_s: float  # median seconds of image_ocr on the page turned a quarter (orientation detected, read again)
    ocr_accuracy: float  # words read in order / words printed, image_ocr
    bare_accuracy: float  # the same for the bare call
    turned_accuracy: float
    repeats: int

    @property
    def ratio(self) -> float:
        """image_ocr's pages per second over the bare call's (1.0: as fast)."""
        return self.bare_s / self.ocr_s

    def report(self) -> str:
        width, height = self.size
        return (f"{width}x{height} page, {self.words} words, medians of {self.repeats}: "
                f"image_ocr {self.ocr_s:.3f} s/page (accuracy {self.ocr_accuracy:.1%}); "
                f"bare image_to_string {self.bare_s:.3f} s/page (accuracy {self.bare_accuracy:.1%}) "
                f"-> ratio {self.ratio:.2f}; bare with OpenMP threads {self.bare_openmp_s:.3f} s/page; "
                f"image_ocr on the page turned 90 deg {self.turned_s:.3f} s/page "
                f"(accuracy {self.turned_accuracy:.1%})")


def text_page(*, height_px: int = 1024, seed: int = 0) -> tuple[Image.Image, list[str]]:
    """An A4-shaped page ``height_px`` tall, black 11-pt-like DejaVu text on white, and its lines."""
    rng = random.Random(seed)
    width_px = round(height_px / 2 ** 0.5)
    font = ImageFont.truetype(FONT, round(height_px / 64))
    page = Image.new("RGB", (width_px, height_px), "white")
    draw = ImageDraw.Draw(page)
    margin, line_height = height_px // 20, round(height_px / 40)
    lines, top = [], margin
    while top + line_height < height_px - margin:
        words: list[str] = []
        while draw.textlength(" ".join(words + ["warehouse"]), font=font) < width_px - 2 * margin:
            words.append(rng.choice(WORDS))
        lines.append(" ".join(words))
        draw.text((margin, top), lines[-1], font=font, fill="black")
        top += line_height
    return page, lines


def word_accuracy(recognised: str, lines: list[str]) -> float:
    """Words of ``lines`` found in ``recognised`` in the same order, over the words of ``lines``."""
    expected = " ".join(lines).split()
    matcher = difflib.SequenceMatcher(a=expected, b=recognised.split(), autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / len(expected)


def ocr_bench(*, height_px: int = 1024, repeats: int = 5, languages: str = "eng") -> OcrBench:
    """``image_ocr`` and bare ``pytesseract.image_to_string`` on one rendered page, in turns."""
    page, lines = text_page(height_px=height_px)
    turned = page.rotate(90, expand=True)
    times: dict[str, list[float]] = {"ocr": [], "bare": [], "openmp": [], "turned": []}
    texts: dict[str, str] = {}
    for _ in range(repeats):
        started = time.perf_counter()
        texts["ocr"] = image_ocr(page, languages=languages, timeout_s=600).text
        times["ocr"].append(time.perf_counter() - started)
        started = time.perf_counter()
        texts["bare"] = pytesseract.image_to_string(page, lang=languages)
        times["bare"].append(time.perf_counter() - started)
        with _openmp_threads():
            started = time.perf_counter()
            pytesseract.image_to_string(page, lang=languages)
            times["openmp"].append(time.perf_counter() - started)
        started = time.perf_counter()
        texts["turned"] = image_ocr(turned, languages=languages, timeout_s=600).text
        times["turned"].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in times.items()}
    return OcrBench(size=page.size, words=len(" ".join(lines).split()), ocr_s=median["ocr"], bare_s=median["bare"],
                    bare_openmp_s=median["openmp"], turned_s=median["turned"],
                    ocr_accuracy=word_accuracy(texts["ocr"], lines), bare_accuracy=word_accuracy(texts["bare"], lines),
                    turned_accuracy=word_accuracy(texts["turned"], lines), repeats=repeats)


@contextmanager
def _openmp_threads():
    """Tesseract as it runs out of the box: OpenMP threads on (readers/ocr.py limits them to one)."""
    pytesseract.pytesseract.environ = os.environ
    try:
        yield
    finally:
        pytesseract.pytesseract.environ = TESSERACT_ENVIRONMENT
