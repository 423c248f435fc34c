"""Text inside pictures (OCR) with Tesseract, through pytesseract.

A pure reader: a decoded PIL image in, the recognised words with their places out. Settings
(MULTIMODAL_OCR, MULTIMODAL_OCR_LANGUAGES, MULTIMODAL_OCR_SECONDS_PER_PAGE) are the caller's to read
and pass in; only `ocr_available()` reads the configured languages when it is given none.
"""
import collections
import functools
import os
import shutil
import statistics
import time
from dataclasses import dataclass
from typing import NamedTuple

from PIL import Image, ImageOps

from ..errors import IngestError

# Tesseract parallelises with OpenMP threads that spin while they wait for each other: on the few
# shared cores of a worker (which already reads several files at once) a page took 5-10 s instead of
# 1.2 s single-threaded. The limit goes to the tesseract processes only (pytesseract hands its module's
# `environ` to each), not to this process, whose encoders run OpenMP too; an OMP_THREAD_LIMIT set in
# the environment wins.
TESSERACT_ENVIRONMENT = collections.ChainMap(os.environ, {"OMP_THREAD_LIMIT": "1"})

# Tesseract reads best with an x-height of 20-30 px; a picture's text is usually smaller than that
# when its long side is under this, so it is enlarged (never by more than MAX_UPSCALE).
UPSCALE_BELOW_PX = 1000
MAX_UPSCALE = 3.0
# Words Tesseract is less sure of than this (0-100) are mostly noise read as letters (textures,
# foliage, edges in photos); they are left out of `words` and `text`.
MIN_WORD_CONFIDENCE = 60.0
# An upright reading whose confident words average at least this is taken as it is; a page read
# sideways or upside down averages far lower, and only then is the orientation detected (OSD), so
# upright pages cost one Tesseract run.
UPRIGHT_MEAN_CONFIDENCE = 75.0
# Tesseract's own binarisation by default is one global (Otsu) threshold: over a photo's gradients and
# blobs it loses most of the text (5 % of the words of tests/readers/test_ocr.py's photo page). Sauvola's
# local threshold reads 97 % there and the same as Otsu on clean pages.
TESSERACT_CONFIG = "-c thresholding_method=2"
# A picture narrower or lower than this holds no readable line (and Tesseract's thresholding fails on it).
MIN_SIDE_PX = 8
# Below this many characters in the upright reading there is no text to orient (a photo): no OSD.
MIN_CHARACTERS_TO_ORIENT = 8


@functools.cache
def _tesseract():
    """pytesseract, imported on first use: importing it imports pandas (~1 s of CPU), which every process
    that never reads a picture's words (the site, most commands, workers with OCR off) paid at start."""
    import pytesseract

    pytesseract.pytesseract.environ = TESSERACT_ENVIRONMENT
    return pytesseract


@dataclass(frozen=True)
class OcrWord:
    text: str
    # left, top, width, height as fractions (0..1) of the image given to image_ocr, as it was given
    # (before any turning or enlarging), so a page can draw them over that image's thumbnail.
    box: tuple[float, float, float, float]
    confidence: float  # 0..100, Tesseract's


@dataclass
class OcrResult:
    text: str  # confident words, in reading order: words joined with spaces, lines with newlines
    words: list[OcrWord]  # the words of `text`, each with its box, in reading order
    seconds: float  # wall time of image_ocr
    # Degrees (0, 90, 180, 270) the image was turned clockwise to read its text upright: a page can
    # show the image turned by as much (CSS rotate) to stand it upright; 0 if its text stands upright.
    rotated: int


def ocr_available(languages: str | None = None) -> bool:
    """Whether the tesseract binary runs and knows every one of ``languages`` ("+"-joined, as
    Tesseract takes them; default: the MULTIMODAL_OCR_LANGUAGES setting). Cached per process.

    Does not look at MULTIMODAL_OCR (whether OCR is wanted): that is the caller's.
    """
    if languages is None:
        from django.conf import settings

        languages = settings.MULTIMODAL_OCR_LANGUAGES
    return _tesseract_knows(_tesseract().pytesseract.tesseract_cmd, languages)


@functools.lru_cache(maxsize=8)
def _tesseract_knows(command: str, languages: str) -> bool:
    if shutil.which(command) is None:
        return False
    pytesseract = _tesseract()
    try:
        installed = set(pytesseract.get_languages())
    except (pytesseract.TesseractError, pytesseract.TesseractNotFoundError, OSError):
        return False
    wanted = {language for language in languages.split("+") if language}
    return bool(wanted) and wanted <= installed


def image_ocr(image: Image.Image, *, languages: str, timeout_s: float) -> OcrResult:
    """Read the words printed in ``image`` with Tesseract in ``languages`` ("eng", "eng+deu", ...).

    The picture is read in grayscale, enlarged when its long side is under UPSCALE_BELOW_PX. An
    upright reading with confident words is kept as it is (one Tesseract run, the bare tool's cost);
    otherwise Tesseract's orientation detection (OSD) says whether the picture is turned, and a
    turned picture is read again upright. Boxes are fractions of ``image`` as given, whatever was
    turned or enlarged. A picture without text (most photos) gives an empty result after the one
    upright run: about 0.4 s for a 1024x768 photo on an idle core.

    ``timeout_s`` bounds the whole call (every Tesseract run together); past it, raises IngestError
    "reading the words in the picture took longer than N s"; IngestError too when Tesseract fails on
    the picture. Check `ocr_available` first: without the binary, pytesseract's TesseractNotFoundError.
    """
    started = time.perf_counter()
    deadline = started + timeout_s
    if min(image.size) < MIN_SIDE_PX:
        return OcrResult(text="", words=[], seconds=time.perf_counter() - started, rotated=0)
    working = _prepared(image)
    words = _words_read(working, rotated=0, languages=languages, deadline=deadline, timeout_s=timeout_s)
    turned = 0
    if _needs_orienting(words):
        turn = _clockwise_turn(working, deadline=deadline, timeout_s=timeout_s)
        if turn:
            turned_words = _words_read(working.rotate(-turn, expand=True), rotated=turn, languages=languages,
                                       deadline=deadline, timeout_s=timeout_s)
            if _reading_score(turned_words) > _reading_score(words):
                words, turned = turned_words, turn
    confident = [word for word in words if word.word.confidence >= MIN_WORD_CONFIDENCE]
    # Tesseract reads lines running top to bottom (a page lying on its left side) by itself, turning
    # them inside: the picture still wants turning a quarter anticlockwise to stand upright.
    rotated = (turned + (270 if _runs_top_to_bottom(confident) else 0)) % 360
    return OcrResult(text=_text_of(confident), words=[read.word for read in confident],
                     seconds=time.perf_counter() - started, rotated=rotated)


class _ReadWord(NamedTuple):
    """A word as Tesseract returned it, with the line it belongs to (for joining lines)."""
    word: OcrWord
    line: tuple[int, int, int]
    tall: bool  # taller than wide on the picture Tesseract read


def _prepared(image: Image.Image) -> Image.Image:
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels are black underneath: on a transparent screenshot or logo, black text
        # would vanish into them. Pages and viewers show transparency over white.
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    gray = ImageOps.grayscale(image) if image.mode != "L" else image
    long_side = max(gray.size)
    if 0 < long_side < UPSCALE_BELOW_PX:
        scale = min(MAX_UPSCALE, UPSCALE_BELOW_PX / long_side)
        gray = gray.resize((round(gray.width * scale), round(gray.height * scale)), Image.Resampling.LANCZOS)
    return gray


def _tesseract_run(function, image: Image.Image, *, deadline: float, timeout_s: float, **arguments):
    """``function(image, ...)`` of pytesseract within what is left of ``timeout_s``."""
    pytesseract = _tesseract()
    remaining_s = deadline - time.perf_counter()
    if remaining_s > 0:
        try:
            return function(image, timeout=remaining_s, **arguments)
        except pytesseract.TesseractError:
            raise
        except RuntimeError as error:  # pytesseract's "Tesseract process timeout", the process killed
            if "timeout" not in str(error).lower():
                raise
    raise IngestError(f"reading the words in the picture took longer than {timeout_s:g} s")


def _words_read(image: Image.Image, *, rotated: int, languages: str, deadline: float,
                timeout_s: float) -> list[_ReadWord]:
    pytesseract = _tesseract()
    try:
        data = _tesseract_run(pytesseract.image_to_data, image, deadline=deadline, timeout_s=timeout_s,
                              lang=languages, config=TESSERACT_CONFIG, output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractError as error:
        raise IngestError(f"Tesseract could not read the picture: {error.message}") from None
    width, height = image.size
    words = []
    for index, text in enumerate(data["text"]):
        confidence = float(data["conf"][index])
        if not text.strip() or confidence < 0:
            continue
        box = (data["left"][index] / width, data["top"][index] / height,
               data["width"][index] / width, data["height"][index] / height)
        line = (data["block_num"][index], data["par_num"][index], data["line_num"][index])
        word = OcrWord(text=text.strip(), box=_box_unturned(box, rotated), confidence=confidence)
        words.append(_ReadWord(word, line, tall=data["height"][index] > data["width"][index]))
    return words


def _box_unturned(box: tuple[float, float, float, float], rotated: int) -> tuple[float, float, float, float]:
    """A box read on the image turned ``rotated`` degrees clockwise, as fractions of the unturned image."""
    left, top, width, height = box
    if rotated == 90:
        return (top, 1 - left - width, height, width)
    if rotated == 180:
        return (1 - left - width, 1 - top - height, width, height)
    if rotated == 270:
        return (1 - top - height, left, height, width)
    return box


def _needs_orienting(words: list[_ReadWord]) -> bool:
    characters = sum(len(word.word.text) for word in words)
    if characters < MIN_CHARACTERS_TO_ORIENT:
        return False
    return statistics.fmean(word.word.confidence for word in words) < UPRIGHT_MEAN_CONFIDENCE


def _runs_top_to_bottom(words: list[_ReadWord]) -> bool:
    """Whether most words of four letters or more stand taller than wide: lines running down the picture."""
    long_words = [word for word in words if len(word.word.text) >= 4]
    return bool(long_words) and sum(word.tall for word in long_words) > len(long_words) / 2


def _clockwise_turn(image: Image.Image, *, deadline: float, timeout_s: float) -> int:
    """Degrees to turn ``image`` clockwise so its text stands upright, by Tesseract's OSD (0 when it
    finds too little text to tell)."""
    pytesseract = _tesseract()
    try:
        osd = _tesseract_run(pytesseract.image_to_osd, image, deadline=deadline, timeout_s=timeout_s,
                             output_type=pytesseract.Output.DICT)
    except pytesseract.TesseractError:
        return 0  # "Too few characters": nothing to orient by
    return int(osd["rotate"]) % 360


def _reading_score(words: list[_ReadWord]) -> float:
    """How much confident text a reading holds: the better of two readings of one picture scores higher."""
    return sum(len(read.word.text) * read.word.confidence for read in words
               if read.word.confidence >= MIN_WORD_CONFIDENCE)


def _text_of(words: list[_ReadWord]) -> str:
    lines: list[list[str]] = []
    previous_line = None
    for word, line, _tall in words:
        if line != previous_line:
            lines.append([])
            previous_line = line
        lines[-1].append(word.text)
    return "\n".join(" ".join(line) for line in lines)
