"""OCR timed against the bare Tesseract call on the same page, taking turns in one run."""
import difflib
import os
import random
from contextlib import contextmanager

import pytesseract
from PIL import Image, ImageDraw, ImageFont

from ..readers.ocr import TESSERACT_ENVIRONMENT, image_ocr
from .turns import Comparison, turns_run

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
WORDS = ("invoice payment account customer delivery address order number total amount shipping receipt "
         "quarterly report revenue growth market product service support contact telephone warehouse "
         "the of and to for with on by from").split()


def text_page(*, height_px: int = 1024, seed: int = 0, max_lines: int | None = None) -> tuple[Image.Image, list[str]]:
    """An A4-shaped page ``height_px`` tall, black 11-pt-like DejaVu text on white (full, or its first
    ``max_lines`` lines), and its lines."""
    rng = random.Random(seed)
    width_px = round(height_px / 2 ** 0.5)
    font = ImageFont.truetype(FONT, round(height_px / 64))
    page = Image.new("RGB", (width_px, height_px), "white")
    draw = ImageDraw.Draw(page)
    margin, line_height = height_px // 20, round(height_px / 40)
    lines, top = [], margin
    while top + line_height < height_px - margin and len(lines) != max_lines:
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


def ocr_bench(*, height_px: int = 1024, max_lines: int | None = None, repeats: int = 5,
              languages: str = "eng") -> Comparison:
    """``image_ocr`` and bare ``pytesseract.image_to_string`` (one OpenMP thread, as image_ocr runs it)
    on one rendered page, in turns; the notes add each one's word accuracy, the bare call with
    Tesseract's OpenMP threads on, and image_ocr on the page turned a quarter (orientation detected,
    read again)."""
    page, lines = text_page(height_px=height_px, max_lines=max_lines)
    turned = page.rotate(90, expand=True)

    def bare_openmp():
        with _openmp_threads():
            return pytesseract.image_to_string(page, lang=languages)

    turns = turns_run({
        "tool": lambda: image_ocr(page, languages=languages, timeout_s=600).text,
        "bare": lambda: pytesseract.image_to_string(page, lang=languages),
        "openmp": bare_openmp,
        "turned": lambda: image_ocr(turned, languages=languages, timeout_s=600).text,
    }, repeats=repeats)
    accuracy = {name: word_accuracy(text, lines) for name, text in turns.last.items()}
    width, height = page.size
    return Comparison(
        step="ocr", tool="image_ocr", bare="pytesseract.image_to_string", work=1, unit="s/page",
        tool_s=turns.seconds["tool"], bare_s=turns.seconds["bare"], repeats=repeats,
        input=f"{width}x{height} page of {len(' '.join(lines).split())} words",
        notes=(f"word accuracy {accuracy['tool']:.1%} (bare {accuracy['bare']:.1%})",
               f"bare with OpenMP threads {turns.seconds['openmp']:.2f} s/page",
               f"image_ocr on the page turned 90 deg {turns.seconds['turned']:.2f} s/page "
               f"(accuracy {accuracy['turned']:.1%})"))


@contextmanager
def _openmp_threads():
    """Tesseract as it runs out of the box: OpenMP threads on (readers/ocr.py limits them to one)."""
    pytesseract.pytesseract.environ = os.environ
    try:
        yield
    finally:
        pytesseract.pytesseract.environ = TESSERACT_ENVIRONMENT
