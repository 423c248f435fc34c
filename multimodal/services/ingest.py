"""Turning sources (files, archive entries, table rows) into items and vectors.

A batch of sources is checked and decoded one by one (a bad source fails alone, with its reason),
the good ones are encoded together, saved together, and their vectors upserted in bulk. Items are
keyed by (corpus, content hash), or by (corpus, external id) for table rows that carry one, so
ingesting the same source again updates its item and overwrites its vectors instead of adding new
ones. Saving together means a batch costs a few statements however many rows it has (one lookup,
one insert, one round of updates); a batch the database refuses is saved again one item at a time,
so a source whose save fails still fails alone. Batch after batch (`batches_ingest`), the model encodes
one batch in a thread of its own while the next is decoded and the last saved.

Stored text is bounded: a text file's or a product's text keeps ``MULTIMODAL_MAX_TEXT_CHARS``
characters, a title ``TITLE_MAX_CHARS``; what was cut is said in the report's ``warnings`` (the
item still lands), as is a text file read in an encoding other than UTF-8.

Some sources become an item with children (``Item.parent``), each child owning one vector:

* a recording is transcribed while it is decoded and becomes an item that owns no vector, plus one
  segment per passage of its transcript (the text vector of its words);
* a video is a scene per shot (its keyframe's picture vector, start and end) plus its speech's
  segments; a video whose pictures cannot be read is ingested as a recording;
* a document (PDF, DOCX, PPTX, HTML, EPUB) is a page per rendered PDF page (its picture's vector;
  scanned pages read by OCR) and passages per page (text vectors, with their page number);
* a text file longer than one passage keeps its own vector and gets passages too.

Children are keyed by their parent's content, their kind and their position, so ingesting the
source again updates them in place, and those left over go (with their vectors). Pictures are
read by OCR (`multimodal.readers.ocr`): the words become their text, for the keyword channel. OCR
never fails a source: a failure is a warning, OCR not installed a warning once per report.
"""
import hashlib
import json
import logging
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Hashable, Iterable, TypeVar

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from .. import encoders
from ..errors import IngestError, UserInputError
from ..models import PARENT_KINDS, Corpus, Item
from ..readers.documents import PAGE_WORD, Document, document_read
from ..readers.imaging import image_open, thumbnail_jpeg
from ..readers.ocr import OcrResult, image_ocr, ocr_available
from ..readers.passages import text_passages
from ..readers.video import VideoScenes, VideoTooLongError, has_video_stream, video_scenes
from ..readers.sniffing import HEAD_BYTES, MEDIA_HEAD_BYTES, content_kind, is_image, media_type
from ..readers.tabular import TextLimits, encoding_detect, text_decode
from ..readers.titles import part_title, text_title
from ..retrieval import indexes
from ..row_updates import rows_update
from ..speech.segmenting import Passage
from .duplicates import FINGERPRINT_FIELDS, duplicates_assign, fingerprint_fields
from .embedding import EmbedInput, inputs_encode, item_vector_record, product_text
from .vectors import vectors_write
from .voice import recording_transcribe

logger = logging.getLogger(__name__)
T = TypeVar("T")

TITLE_MAX_CHARS = 200
# Said once per report (per job batch) rather than on every picture.
OCR_MISSING = "OCR is not installed: no words read inside pictures"
# The words (with their boxes) an item keeps of what OCR read; the text keeps all of them.
OCR_WORDS_KEPT = 300
# A document page's or video keyframe's picture is kept no larger than this once read (OCR reads the
# full rendering first): enough for the encoder (224-336 px) and the thumbnail (MULTIMODAL_THUMBNAIL_PX),
# a ninth of a 1024-px rendering's pixels, and resizing it to a thumbnail costs a fraction as much.
CHILD_IMAGE_PX = 400
# Kept documents are stored under their format's extension (PDFs are recognised by `media_type`
# already); HTML is not among them, so an uploaded page is never served as a page of this site.
DOCUMENT_EXTENSIONS = {"docx": ".docx", "pptx": ".pptx", "epub": ".epub"}
# What ingesting a source again rewrites in its item (its identity, corpus and parent stay).
ITEM_FIELDS_WRITTEN = ["kind", "title", "text", "content_hash", "source_name", "metadata", "file", "thumbnail",
                       *FINGERPRINT_FIELDS, "updated_at"]
# What ingesting a parent again rewrites in each child it keeps.
CHILD_FIELDS_WRITTEN = ["kind", "title", "text", "source_name", "start_s", "end_s", "page", "metadata", "thumbnail",
                        "updated_at"]


@dataclass(frozen=True)
class ProductRow:
    """A knowledge-base row: its text fields and, optionally, a way to read its image."""

    title: str
    description: str
    specs: dict[str, str] = field(default_factory=dict)
    specs_text: str = ""
    external_id: str = ""
    image_name: str = ""
    read_image: Callable[[], bytes] | None = None
    notes: tuple[str, ...] = ()  # how reading the table changed the row (cells cut), reported as warnings


@dataclass(frozen=True)
class Source:
    """One thing to ingest: the name shown to people, and a file reader or a table row.

    ``key`` lets a caller match outcomes back to its own records (a job's units).
    """

    name: str
    read: Callable[[], bytes] | None = None
    size: int | None = None
    key: Hashable = None
    row: ProductRow | None = None

    @property
    def extension(self) -> str:
        return Path(self.name).suffix.lower()


@dataclass
class IngestFailure:
    name: str
    reason: str
    key: Hashable = None


@dataclass
class IngestReport:
    created: int = 0
    updated: int = 0
    failures: list[IngestFailure] = field(default_factory=list)
    # Sources that landed altered (text cut, decoded from another encoding), each with what changed.
    warnings: list[IngestFailure] = field(default_factory=list)
    items: dict[Hashable, tuple[int, bool]] = field(default_factory=dict)  # key -> (item id, created)
    notices_given: set[str] = field(default_factory=set)  # warnings said once (OCR_MISSING), not on every source

    @property
    def landed(self) -> int:
        return self.created + self.updated

    def fail(self, source: Source, reason: str) -> None:
        self.failures.append(IngestFailure(source.name, reason.removeprefix(f"{source.name}: "), source.key))

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "failed": len(self.failures),
            "failures": [{"name": failure.name, "reason": failure.reason} for failure in self.failures],
            "warnings": [{"name": warning.name, "reason": warning.reason} for warning in self.warnings],
        }


ProgressCallback = Callable[[int, IngestReport], None]  # (sources processed so far, report so far)
# Called now and then during long work on one source (transcribing a recording), so the caller
# can show it is alive (a job renews its lease); it may raise to abandon the batch.
Heartbeat = Callable[[], None]


@dataclass
class _Child:
    """A part of a source that becomes an item of its own under the source's item (see ``Item.parent``).

    A child with an ``image`` owns that picture's vector (and keeps it as its thumbnail); one
    without owns the vector of its ``text``.
    """

    kind: str
    title: str
    text: str = ""
    image: Image.Image | None = None
    start_s: float | None = None
    end_s: float | None = None
    page: int | None = None
    metadata: dict = field(default_factory=dict)


@dataclass
class _Decoded:
    source: Source
    kind: str
    content_hash: str
    title: str
    text: str = ""  # stored and shown: a text file's content, a product's description
    encoder_text: str = ""  # what the text vector is made from, when it differs from ``text``
    data: bytes = b""  # the original file, kept for images, recordings, videos and documents
    file_extension: str = ""  # the kept file's extension when its bytes alone do not say (`media_type`)
    image: Image.Image | None = None  # encoded, except for parents (PARENT_KINDS): their thumbnail only
    children: list[_Child] = field(default_factory=list)
    external_id: str = ""
    metadata: dict = field(default_factory=dict)
    fingerprint: dict = field(default_factory=dict)  # pictures' and product rows' (`services.duplicates`)
    warnings: list[str] = field(default_factory=list)  # what was changed on the way in, for people
    notices: list[str] = field(default_factory=list)  # warnings to give once per report (`IngestReport.notices_given`)


def text_limits() -> TextLimits:
    """The configured bounds on text read from tables (`multimodal.readers.tabular`)."""
    return TextLimits(cell=settings.MULTIMODAL_MAX_CELL_CHARS, row=settings.MULTIMODAL_MAX_TEXT_CHARS,
                      table=settings.MULTIMODAL_MAX_TABLE_TEXT_MB * 1024 * 1024,
                      xlsx_bytes=settings.MULTIMODAL_MAX_ARCHIVE_MB * 1024 * 1024)


def text_cap(text: str, *, label: str, limit: int, warnings: list[str]) -> str:
    """``text`` kept to ``limit`` characters; a cut is added to ``warnings`` in words people read."""
    if len(text) <= limit:
        return text
    warnings.append(f"{label} cut from {len(text):,} to {limit:,} characters")
    return text[:limit]


def files_discover(paths: Iterable[str | Path]) -> tuple[list[Path], list[IngestFailure]]:
    """Every file under ``paths`` (directories recursively, hidden files skipped), sorted.

    Paths that do not exist come back as failures rather than stopping the run, and so do paths
    whose names are not UTF-8 (the database keeps names as text): named as decoded, with the reason.
    """
    found, failures = [], []
    for raw_path in paths:
        path = Path(raw_path)
        if path.is_dir():
            found.extend(sorted(
                candidate
                for candidate in path.rglob("*")
                if candidate.is_file()
                and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
            ))
        elif path.is_file():
            found.append(path)
        else:
            failures.append(IngestFailure(_path_text(path)[0], "no such file or directory"))
    for path in [path for path in found if _path_text(path)[1]]:
        found.remove(path)
        name, encoding = _path_text(path)
        failures.append(IngestFailure(name, f"its name is not UTF-8 (read as {encoding}): rename the file to "
                                            "UTF-8 to ingest it"))
    return found, failures


def _path_text(path: Path) -> tuple[str, str]:
    """The path as text, and the encoding its bytes were read in when they are not UTF-8 ('' when they are).

    Python keeps undecodable bytes of a file name as lone surrogates, which no database accepts.
    """
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(text)
        encoding = encoding_detect(raw) or "latin-1"  # latin-1: every byte is some character
        return raw.decode(encoding, errors="replace"), encoding
    return text, ""


def file_source(path: Path, *, name: str | None = None, key: Hashable = None) -> Source:
    return Source(name=name or str(path), read=path.read_bytes, size=path.stat().st_size, key=key)


def items_ingest(
    *,
    corpus: Corpus,
    sources: list[Source],
    batch_size: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest ``sources`` into ``corpus`` in batches and flush; each lands as an item or is a failure."""
    batch_size = batch_size or settings.MULTIMODAL_ENCODE_BATCH_SIZE
    report = IngestReport()

    def saved(start: int, _report: IngestReport) -> None:
        if on_progress:
            on_progress(min(start + batch_size, len(sources)), report)

    batches_ingest(corpus=corpus, batches=range(0, len(sources), batch_size),
                   sources_of=lambda start: sources[start:start + batch_size], report_of=lambda start: report,
                   on_saved=saved)
    indexes.indexes_flush([corpus.pk])
    return report


def batches_ingest(*, corpus: Corpus, batches: Iterable[T], sources_of: Callable[[T], list[Source]],
                   report_of: Callable[[T], IngestReport], on_saved: Callable[[T, IngestReport], None],
                   alone: Callable[[T], bool] = lambda batch: False, heartbeat: Heartbeat | None = None,
                   encode_batch_size: int | None = None) -> None:
    """Decode, encode, save together and upsert each of ``batches``, each encoded while the next is read and decoded.

    Vectors go to every index the corpus may be searched in (`vectors_write`). They are not flushed:
    callers flush once after their last batch. The model encodes ``encode_batch_size`` inputs at a time
    (None: the whole batch at once).

    The model runs in a thread of its own (ONNX Runtime and PyTorch let go of the interpreter while
    they compute), one batch at a time: while it encodes batch N, this thread saves batch N-1 and reads
    and decodes batch N+1, so the model waits for neither. At most two batches of decoded pictures are
    held: the one being encoded and the one being decoded (or saved). ``batches`` is read lazily, one ahead
    of the batch being saved; a batch's outcomes go to ``report_of(batch)``, and ``on_saved(batch, report)``
    hears of each saved batch, in order. A batch for which ``alone(batch)`` is true is worked on with no other
    beside it (a job's unit that may have killed a run). If reading or decoding a batch raises, the batch
    being encoded is still saved (and heard of) before the error goes on, as if they had run one by one.
    """
    encoder = encoders.get()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-encoder") as lane:
        encoding: _Flight | None = None  # handed to the encoder's thread; its saving has not begun

        def land() -> None:
            nonlocal encoding
            flight, encoding = encoding, None
            flight.land(corpus=corpus, on_saved=on_saved)

        try:
            for batch in batches:
                if encoding is not None and alone(batch):
                    land()
                report = report_of(batch)
                decoded = _batch_decode(corpus=corpus, sources=sources_of(batch), report=report, heartbeat=heartbeat)
                vectors = lane.submit(_batch_encode, decoded, encoder, encode_batch_size)
                flight = _Flight(batch, report, decoded, vectors)
                if encoding is not None:
                    land()
                encoding = flight
                if alone(batch):
                    land()
        except BaseException:
            if encoding is not None:  # the error came before its saving: it is saved as it would have been
                land()
            raise
        if encoding is not None:
            land()


@dataclass
class _Flight:
    """A batch decoded and handed to the encoder's thread, waiting to be saved."""

    batch: object
    report: IngestReport
    decoded: "_DecodedBatch"
    encoded: Future

    def land(self, *, corpus: Corpus, on_saved) -> None:
        _batch_save(corpus=corpus, batch=self.decoded, encoded=self.encoded.result(), report=self.report)
        on_saved(self.batch, self.report)


@dataclass
class _DecodedBatch:
    entries: list["_Decoded"]
    inputs: list[EmbedInput]


def _batch_decode(*, corpus: Corpus, sources: list[Source], report: IngestReport,
                  heartbeat: Heartbeat | None) -> _DecodedBatch:
    """Each source read and decoded (one that cannot be fails alone, in ``report``), and what to encode."""
    decoded = []
    for source in sources:
        try:
            decoded.append(_decode(source, corpus=corpus, heartbeat=heartbeat))
        except UserInputError as exc:
            report.fail(source, str(exc))
        if heartbeat:  # reading the words in a batch of pictures may take longer than a lease
            heartbeat()
    inputs = []
    for index, entry in enumerate(decoded):
        if entry.image is not None and entry.kind not in PARENT_KINDS:
            inputs.append(EmbedInput(key=(index, "image"), image=entry.image))
        if entry.kind in (Item.Kind.TEXT, Item.Kind.PRODUCT):
            inputs.append(EmbedInput(key=(index, "text"), text=entry.encoder_text or entry.text))
        inputs += [EmbedInput(key=(index, "child", number), image=child.image, text=child.text)
                   for number, child in enumerate(entry.children)]
    return _DecodedBatch(decoded, inputs)


def _batch_encode(batch: _DecodedBatch, encoder, batch_size: int | None):
    """The batch's vectors and failures (`inputs_encode`): the model only, no database, so any thread may run it."""
    return inputs_encode(batch.inputs, encoder=encoder, batch_size=batch_size)


def _batch_save(*, corpus: Corpus, batch: _DecodedBatch, encoded, report: IngestReport) -> None:
    """Save the batch's encoded entries together and upsert their vectors, adding the outcomes to ``report``."""
    vectors, errors = encoded
    kept = []
    for index, entry in enumerate(batch.entries):
        error = next((reason for key, reason in errors.items() if key[0] == index), None)
        if error:
            report.fail(entry.source, error)
        else:
            kept.append((index, entry))
    records, landed = [], []
    for (index, entry), saved in zip(kept, _items_save(corpus=corpus, entries=[entry for _, entry in kept])):
        if isinstance(saved, Exception):
            report.fail(entry.source, f"could not be saved ({saved})")
            continue
        report.created += saved.created
        report.updated += not saved.created
        report.items[entry.source.key] = (saved.item.pk, saved.created)
        landed.append(saved.item)
        for notice in entry.notices:
            if notice not in report.notices_given:
                report.notices_given.add(notice)
                entry.warnings.append(notice)
        if entry.warnings:
            report.warnings.append(IngestFailure(entry.source.name, "; ".join(entry.warnings), entry.source.key))
        records += [
            item_vector_record(saved.item, modality, vectors[(index, modality)])
            for modality in ("image", "text")
            if (index, modality) in vectors
        ]
        records += [item_vector_record(child, "text" if child_entry.image is None else "image",
                                       vectors[(index, "child", number)])
                    for number, (child, child_entry) in enumerate(zip(saved.children, entry.children))]
    vectors_write(records)
    written: dict[int, dict] = {}
    for record in records:
        written.setdefault(record.item_id, {})[record.modality] = record.vector
    duplicates_assign(items=landed, vectors=written)


def _decode(source: Source, *, corpus: Corpus, heartbeat: Heartbeat | None = None) -> _Decoded:
    if source.row is not None:
        return _decode_row(source)
    # The kind is not known before reading: recordings may be larger than other files.
    max_bytes = max(settings.MULTIMODAL_MAX_FILE_MB, settings.MULTIMODAL_MAX_RECORDING_MB) * 1024 * 1024
    if source.size is not None and source.size > max_bytes:
        raise IngestError(_too_large(source.size, max_bytes // (1024 * 1024)))
    try:
        data = source.read()
    except OSError as exc:
        raise IngestError(f"could not be read ({exc.strerror or exc})") from None
    if not data:
        raise IngestError("the file is empty")
    kind = content_kind(source.name, data[:HEAD_BYTES])
    limit_mb = settings.MULTIMODAL_MAX_RECORDING_MB if kind in ("audio", "video") else settings.MULTIMODAL_MAX_FILE_MB
    if len(data) > limit_mb * 1024 * 1024:
        raise IngestError(_too_large(len(data), limit_mb))
    content_hash = hashlib.sha256(data).hexdigest()
    stem = Path(source.name).stem
    if kind == "video" or (kind == "audio" and has_video_stream(data)):
        return _decode_video(source, data, corpus=corpus, content_hash=content_hash, title=stem, heartbeat=heartbeat)
    if kind == "audio":
        return _decode_audio(source, data, corpus=corpus, content_hash=content_hash, title=stem, heartbeat=heartbeat)
    if kind == "document":
        return _decode_document(source, data, content_hash=content_hash, stem=stem, heartbeat=heartbeat)
    if kind == "image":
        return _decode_image(source, data, corpus=corpus, content_hash=content_hash, title=stem)
    if kind != "text":
        raise IngestError(f"unsupported file type '{source.extension or '(none)'}'")
    if b"\x00" in data[:8192]:
        raise IngestError("binary data in a text file")
    text, encoding = text_decode(data, source.name)
    text = text.strip()
    if not text:
        raise IngestError("the text file is empty")
    warnings = [f"not UTF-8: read as {encoding}"] if encoding else []
    characters = len(text)
    text = text_cap(text, label="text", limit=settings.MULTIMODAL_MAX_TEXT_CHARS, warnings=warnings)
    title = text_title(text, fallback=stem)
    # A text longer than one passage keeps its own vector (of its beginning) and is also searched by passage.
    passages = _passage_children(text, title=title, label="passage")
    return _Decoded(
        source=source, kind=Item.Kind.TEXT, content_hash=content_hash, title=title, text=text,
        children=passages if len(passages) > 1 else [],
        metadata={"source": source.name, "bytes": len(data), "characters": characters}, warnings=warnings,
    )


def _passage_children(text: str, *, title: str, label: str, page: int | None = None,
                      offset: int = 0) -> list[_Child]:
    """``text`` cut into passages (`text_passages`), each a child owning its text's vector.

    Each passage's ``metadata["span"]`` is where it is in its parent's text: [start, end) characters,
    ``offset`` being where ``text`` starts there. ``label`` names it in its title ("passage", "page").
    """
    passages = text_passages(text, max_words=settings.MULTIMODAL_PASSAGE_WORDS,
                             overlap_words=settings.MULTIMODAL_PASSAGE_OVERLAP_WORDS)
    return [
        _Child(kind=Item.Kind.PASSAGE, text=passage.text, page=page,
               title=f"{title}, {label} {page if page is not None else number}",
               metadata={"span": [offset + passage.start, offset + passage.end]})
        for number, passage in enumerate(passages, start=1)
    ]


def _decode_image(source: Source, data: bytes, *, corpus: Corpus, content_hash: str, title: str) -> _Decoded:
    """A picture, with the words printed in it (OCR) as its text: the keyword channel finds them."""
    if not is_image(data[:HEAD_BYTES]):
        raise IngestError(f"not an image: the content does not match the '{source.extension}' extension")
    image = image_open(data, name=source.name)
    width, height = image.info["source_size"]
    entry = _Decoded(
        source=source, kind=Item.Kind.IMAGE, content_hash=content_hash, title=title, data=data, image=image,
        metadata={"source": source.name, "width": width, "height": height, "bytes": len(data)},
        fingerprint=fingerprint_fields(kind=Item.Kind.IMAGE, image=image),
    )
    reused = _ocr_reuse(corpus=corpus, content_hash=content_hash)
    if reused is not None:
        entry.text, entry.metadata["ocr"] = reused
        return entry
    result = _ocr_read(image, what="OCR", warnings=entry.warnings, notices=entry.notices)
    if result is not None:
        entry.text = text_cap(result.text, label="recognised text", limit=settings.MULTIMODAL_MAX_TEXT_CHARS,
                              warnings=entry.warnings)
        entry.metadata["ocr"] = _ocr_metadata(result)
    return entry


def _ocr_read(image: Image.Image, *, what: str, warnings: list[str], notices: list[str]) -> OcrResult | None:
    """The words Tesseract reads in ``image``, or None: OCR off, not installed (a notice), or failed
    (a warning starting with ``what``: "OCR of page 4"). OCR never makes a source fail."""
    if not settings.MULTIMODAL_OCR:
        return None
    if not ocr_available():
        notices.append(OCR_MISSING)
        return None
    try:
        return image_ocr(image, languages=settings.MULTIMODAL_OCR_LANGUAGES,
                         timeout_s=settings.MULTIMODAL_OCR_SECONDS_PER_PAGE)
    except IngestError as exc:
        warnings.append(f"{what}: {exc}")
    except (OSError, RuntimeError) as exc:  # Tesseract itself failing (the reader turns its known errors into IngestError)
        warnings.append(f"{what} failed ({exc})")
    return None


def _ocr_metadata(result: OcrResult) -> dict:
    """What an item keeps of a reading: its first OCR_WORDS_KEPT words as [text, left, top, width,
    height] (fractions of the picture), how many there were, the seconds it took, the turn it needed,
    and the languages (a reading is reused only with the same languages)."""
    return {
        "words": [[word.text, *(round(value, 4) for value in word.box)] for word in result.words[:OCR_WORDS_KEPT]],
        "word_count": len(result.words), "seconds": round(result.seconds, 2), "rotated": result.rotated,
        "languages": settings.MULTIMODAL_OCR_LANGUAGES,
    }


def _ocr_reuse(*, corpus: Corpus, content_hash: str) -> tuple[str, dict] | None:
    """The text and reading of the same picture already in ``corpus``, read in the current languages.

    OCR costs a few tenths of a second a picture: uploading a folder of photos again should not pay it twice.
    """
    if not settings.MULTIMODAL_OCR:
        return None
    found = (Item.objects.filter(corpus=corpus, kind=Item.Kind.IMAGE, content_hash=content_hash, external_id="")
             .values_list("text", "metadata").first())
    if found is None:
        return None
    text, metadata = found
    reading = metadata.get("ocr")
    if not reading or reading.get("languages") != settings.MULTIMODAL_OCR_LANGUAGES:
        return None
    return text, reading


def _decode_document(source: Source, data: bytes, *, content_hash: str, stem: str,
                     heartbeat: Heartbeat | None) -> _Decoded:
    """A document: one item with its whole text (the original kept, the first page's rendering as its
    thumbnail), a page child per rendered PDF page (its picture's vector) and passage children per
    page (their text's vectors). Scanned PDF pages are read by OCR.

    Pages are handled one at a time as the reader renders them: a scan's full rendering (1024 px, 3 MB
    for an A4 page: Pillow keeps 4 bytes a pixel) is read by OCR, shrunk to its child's picture and let
    go of before the next page is rendered. What each page keeps until the batch is encoded is that
    picture, at most CHILD_IMAGE_PX a side: 0.45 MB for an A4 page with a text layer (rendered at
    400 px), 0.33 MB for a scan (1024 px reduced by 3); 500 pages ~225 MB at most, not every rendering.
    """
    # Scans are rendered large for OCR; pages with a text layer only as large as they are kept.
    with document_read(data, name=source.name, max_pages=settings.MULTIMODAL_MAX_DOCUMENT_PAGES,
                       text_page_px=CHILD_IMAGE_PX) as document:
        title = (document.title or stem)[:TITLE_MAX_CHARS]
        warnings, notices = list(document.warnings), []
        label = PAGE_WORD[document.format]
        children, texts, offset, read_by_ocr = [], [], 0, []
        for page in document.pages:
            text, page_metadata = page.text.strip(), {}
            if page.needs_ocr and page.image is not None:
                result = _ocr_read(page.image, what=f"OCR of {label} {page.number}", warnings=warnings,
                                   notices=notices)
                if result is not None:
                    text, page_metadata["ocr"] = result.text, _ocr_metadata(result)
                    read_by_ocr.append(page.number)
            if heartbeat:
                heartbeat()
            text = text_cap(text, label=f"{label} {page.number}'s text", limit=settings.MULTIMODAL_MAX_TEXT_CHARS,
                            warnings=warnings)
            if page.image is not None:
                children.append(_Child(kind=Item.Kind.PAGE, title=f"{title}, {label} {page.number}", text=text,
                                       image=_image_shrunk(page.image), page=page.number, metadata=page_metadata))
            children += _passage_children(text, title=title, label=label, page=page.number, offset=offset)
            texts.append(text)
            offset += len(text) + 2  # the "\n\n" joining pages below
            del page  # its full rendering goes now, not once the next page has been rendered beside it
    text = "\n\n".join(texts).strip()
    if not text and not any(child.kind == Item.Kind.PAGE for child in children):
        raise IngestError(f"the document holds no text ({_document_pages(document)})")
    characters = len(text)
    text = text_cap(text, label="text", limit=settings.MULTIMODAL_MAX_TEXT_CHARS, warnings=warnings)
    first_page = next((child.image for child in children if child.kind == Item.Kind.PAGE), None)
    metadata = {
        "source": source.name, "bytes": len(data), "format": document.format, "page_count": document.page_count,
        "pages_read": document.pages_read, "page_word": label, "characters": characters,
        "ocr_pages": read_by_ocr, "warnings": list(warnings),
    }
    return _Decoded(source=source, kind=Item.Kind.DOCUMENT, content_hash=content_hash, title=title, text=text,
                    data=data, file_extension=DOCUMENT_EXTENSIONS.get(document.format, ""), image=first_page,
                    children=children, metadata=metadata, warnings=warnings, notices=notices)


def _document_pages(document: Document) -> str:
    return f"{document.pages_read} {PAGE_WORD[document.format]}{'s' if document.pages_read != 1 else ''} read"


def _image_shrunk(image: Image.Image) -> Image.Image:
    """``image`` reduced by a whole factor to at most CHILD_IMAGE_PX a side (box averaging: a few ms a
    page, where a Lanczos resize took ten times as long as reading the page)."""
    factor = math.ceil(max(image.size) / CHILD_IMAGE_PX)
    return image.reduce(factor) if factor > 1 else image


def _decode_audio(source: Source, data: bytes, *, corpus: Corpus, content_hash: str, title: str,
                  heartbeat: Heartbeat | None) -> _Decoded:
    return (_recording_reuse(source, data, corpus=corpus, content_hash=content_hash, title=title)
            or _decode_recording(source, data, content_hash=content_hash, title=title, heartbeat=heartbeat))


def video_scenes_cut(data: bytes, *, on_progress: Callable[[float, float], None] | None = None) -> VideoScenes:
    """A video's scenes as ingest cuts them: `video_scenes` with this site's scene and length settings."""
    return video_scenes(
        data, threshold=settings.MULTIMODAL_SCENE_THRESHOLD, min_scene_s=settings.MULTIMODAL_SCENE_MIN_SECONDS,
        max_scene_s=settings.MULTIMODAL_SCENE_MAX_SECONDS, max_scenes=settings.MULTIMODAL_MAX_SCENES,
        max_duration_s=settings.MULTIMODAL_MAX_VIDEO_MINUTES * 60, on_progress=on_progress,
    )


def _progress_beats(heartbeat: Heartbeat | None) -> Callable[[float, float], None] | None:
    """A reader's progress callback (done, total seconds) that renews the caller's lease on every call."""
    return (lambda done_s, total_s: heartbeat()) if heartbeat else None


def _decode_video(source: Source, data: bytes, *, corpus: Corpus, content_hash: str, title: str,
                  heartbeat: Heartbeat | None) -> _Decoded:
    """A video: one item (the file kept, its first scene's keyframe as thumbnail) with a scene child
    per scene (its keyframe's vector, its start and end) and a segment child per passage of its speech.

    A video whose pictures cannot be read is ingested as a recording of its sound, with a warning;
    one too long fails. A video without sound, or without speech, has scenes only.
    """
    try:
        found = video_scenes_cut(data, on_progress=_progress_beats(heartbeat))
    except VideoTooLongError:
        raise
    except IngestError as exc:
        reason = str(exc)
        entry = _decode_audio(source, data, corpus=corpus, content_hash=content_hash, title=title,
                              heartbeat=heartbeat)
        if reason != "no video stream":
            entry.warnings.append(f"its pictures were not read ({reason}): indexed by its sound only")
        return entry
    warnings = list(found.warnings)
    metadata = {"source": source.name, "bytes": len(data), "duration_s": round(found.duration_s, 2),
                "width": found.width, "height": found.height, "scenes": len(found.scenes),
                "has_audio": found.has_audio}
    children = [
        _Child(kind=Item.Kind.SCENE, title=part_title(title, scene.start_s, scene.end_s),
               image=_image_shrunk(scene.keyframe), start_s=round(scene.start_s, 3), end_s=round(scene.end_s, 3))
        for scene in found.scenes
    ]
    passages: list[Passage] = []
    if found.has_audio:
        reused = _transcript_reuse(corpus=corpus, kind=Item.Kind.VIDEO, content_hash=content_hash)
        if reused is not None:
            passages = reused[0]
            metadata.update({key: reused[1][key] for key in _TRANSCRIPT_KEYS if key in reused[1]})
        else:
            try:
                recording = recording_transcribe(data, on_progress=_progress_beats(heartbeat))
            except UserInputError as exc:  # AudioError: the sound track cannot be read or is too long
                warnings.append(f"its sound was not transcribed: {exc}")
            else:
                passages = recording.passages
                metadata.update(_transcript_metadata(recording))
    children += _segment_children(title, passages, metadata, warnings)
    return _Decoded(source=source, kind=Item.Kind.VIDEO, content_hash=content_hash, title=title, data=data,
                    image=children[0].image if found.scenes else None, children=children, metadata=metadata,
                    warnings=warnings)


def _decode_recording(source: Source, data: bytes, *, content_hash: str, title: str,
                      heartbeat: Heartbeat | None) -> _Decoded:
    recording = recording_transcribe(data, on_progress=_progress_beats(heartbeat))
    if not recording.passages:
        raise IngestError("no speech was recognised in the recording")
    warnings: list[str] = []
    metadata = {
        "source": source.name, "bytes": len(data), **_transcript_metadata(recording), **recording.info.as_metadata(),
    }
    return _Decoded(source=source, kind=Item.Kind.AUDIO, content_hash=content_hash, title=title, data=data,
                    children=_segment_children(title, recording.passages, metadata, warnings), metadata=metadata,
                    warnings=warnings)


def _transcript_metadata(recording) -> dict:
    """What a recording's or video's item says about its transcript (and what `_transcript_reuse` checks)."""
    return {
        "duration_s": round(recording.transcript.duration_s, 2), "language": recording.transcript.language,
        "speech_model": recording.model, "transcribe_s": round(recording.transcribe_s, 2),
        "segments": len(recording.passages), "transcribed_with": _transcription_settings(),
    }


def _segment_children(title: str, passages: list[Passage], metadata: dict, warnings: list[str]) -> list[_Child]:
    """One timed segment per passage of a transcript, each owning its words' text vector."""
    return [
        _Child(kind=Item.Kind.SEGMENT, title=part_title(title, passage.start_s, passage.end_s),
               text=text_cap(passage.text, label=f"passage {number + 1}'s transcript",
                             limit=settings.MULTIMODAL_MAX_TEXT_CHARS, warnings=warnings),
               start_s=passage.start_s, end_s=passage.end_s,
               metadata={"source": metadata["source"], "language": metadata.get("language")})
        for number, passage in enumerate(passages)
    ]


def _transcription_settings() -> str:
    """What a recording's passages depend on besides its bytes: the speech model, language and segmenting."""
    return "|".join(str(value) for value in (
        settings.MULTIMODAL_SPEECH_MODEL, settings.MULTIMODAL_SPEECH_LANGUAGE, settings.MULTIMODAL_SEGMENT_MIN_SECONDS,
        settings.MULTIMODAL_SEGMENT_MAX_SECONDS, settings.MULTIMODAL_SEGMENT_PAUSE_SECONDS,
    ))


def _transcript_reuse(*, corpus: Corpus, kind: str, content_hash: str) -> tuple[list[Passage], dict] | None:
    """The passages (and item metadata) of the same recording or video already in ``corpus``,
    transcribed with the current settings, so they need not be transcribed again.

    Transcription is by far the slowest step of ingest, so uploading a folder again (or a job
    re-delivered after a worker died) only pays for the recordings that are new or changed. None
    when there is no such item, or the speech model or segmenting settings have changed since.
    """
    found = Item.objects.filter(corpus=corpus, kind=kind, content_hash=content_hash, external_id="").first()
    if found is None or found.metadata.get("transcribed_with") != _transcription_settings():
        return None
    passages = [Passage(start_s=segment.start_s, end_s=segment.end_s, text=segment.text)
                for segment in found.children.filter(kind=Item.Kind.SEGMENT).order_by("start_s")]
    if not passages and kind == Item.Kind.AUDIO:
        return None
    return passages, found.metadata


_TRANSCRIPT_KEYS = ("duration_s", "language", "speech_model", "transcribe_s", "segments", "transcribed_with")


def _recording_reuse(source: Source, data: bytes, *, corpus: Corpus, content_hash: str, title: str) -> _Decoded | None:
    """The same recording already in ``corpus``, transcribed with the current settings (`_transcript_reuse`)."""
    reused = _transcript_reuse(corpus=corpus, kind=Item.Kind.AUDIO, content_hash=content_hash)
    if reused is None:
        return None
    passages, found_metadata = reused
    metadata = {**found_metadata, "source": source.name}
    return _Decoded(source=source, kind=Item.Kind.AUDIO, content_hash=content_hash, title=title, data=data,
                    children=_segment_children(title, passages, metadata, []), metadata=metadata)


def _decode_row(source: Source) -> _Decoded:
    row = source.row
    if not (row.title or row.description):
        raise IngestError("row without text (title and description are empty)")
    image, data = None, b""
    if row.image_name:
        if row.read_image is None:
            raise IngestError(f"image '{row.image_name}' is not in the upload")
        try:
            data = row.read_image()
        except OSError as exc:
            raise IngestError(f"image '{row.image_name}' could not be read ({exc.strerror or exc})") from None
        if not is_image(data[:HEAD_BYTES]):
            raise IngestError(f"image '{row.image_name}' is not an image")
        image = image_open(data, name=f"image '{row.image_name}'")
    fields = {"title": row.title, "description": row.description, "specs": row.specs, "specs_text": row.specs_text}
    content_hash = hashlib.sha256(json.dumps(fields, sort_keys=True).encode() + data).hexdigest()
    # Tables are cut as they are read (multimodal.readers.tabular); rows from elsewhere are held to the same bounds.
    warnings = list(row.notes)
    limit = settings.MULTIMODAL_MAX_TEXT_CHARS
    title = text_cap(row.title or row.description, label="title", limit=TITLE_MAX_CHARS, warnings=warnings)
    description = text_cap(row.description, label="description", limit=limit, warnings=warnings)
    specs_text = text_cap(row.specs_text, label="specs", limit=limit, warnings=warnings)
    specs = _specs_cap(row.specs, limit=limit, warnings=warnings)
    metadata = {"source": source.name, "specs": specs, "specs_text": specs_text}
    if row.image_name:
        metadata["image"] = row.image_name
    return _Decoded(
        source=source, kind=Item.Kind.PRODUCT, content_hash=content_hash, external_id=row.external_id,
        title=title, data=data, image=image, text=description,
        encoder_text=product_text(title, description, specs, specs_text), metadata=metadata, warnings=warnings,
        fingerprint=fingerprint_fields(kind=Item.Kind.PRODUCT, image=image, title=title, description=description,
                                       specs=specs, specs_text=specs_text),
    )


def _specs_cap(specs: dict[str, str], *, limit: int, warnings: list[str]) -> dict[str, str]:
    """The specs, in order, as long as their keys and values together stay within ``limit`` characters."""
    kept: dict[str, str] = {}
    room = limit
    for key, value in specs.items():
        room -= len(key) + len(value)
        if room < 0:
            warnings.append(f"specs cut: {len(kept)} of {len(specs)} kept (the limit is {limit:,} characters)")
            break
        kept[key] = value
    return kept


def _too_large(size: int, limit_mb: int) -> str:
    return f"too large: {size:,} bytes, the limit is {limit_mb} MB"


@dataclass
class _Saved:
    item: Item
    created: bool
    children: list[Item] = field(default_factory=list)  # in the order of the entry's children



def _items_save(*, corpus: Corpus, entries: list[_Decoded]) -> list[_Saved | Exception]:
    """Each entry's item (and its children) saved, or the exception its save raised.

    The entries are saved together first (`_items_write`). If that fails (a storage error, a row
    the database refuses, a concurrent ingest that inserted the same item first), none of it is
    kept and each entry is saved on its own, so only the culprit fails.
    """
    if not entries:
        return []
    try:
        with transaction.atomic():
            return _items_write(corpus=corpus, entries=entries)
    except Exception:  # told apart below, one entry at a time
        logger.warning("saving %d items together failed; saving them one by one", len(entries), exc_info=True)
    outcomes: list[_Saved | Exception] = []
    for entry in entries:
        try:
            with transaction.atomic():
                outcomes += _items_write(corpus=corpus, entries=[entry])
        except Exception as exc:  # a storage or database problem with one item must not sink the batch
            logger.exception("saving %s failed", entry.source.name)
            outcomes.append(exc)
    return outcomes


def _items_write(*, corpus: Corpus, entries: list[_Decoded]) -> list[_Saved]:
    """Save ``entries`` in a few statements however many they are: one query finds the items that
    exist, the new ones are inserted together and the others updated together. The caller holds
    the transaction.

    Entries with the same identity (external id, else content hash) are one item, updated by each
    in turn as if they had been saved one after another. The rows found stay locked until the
    transaction ends, so two ingests of the same item update it in turn.
    """
    external_ids = {entry.external_id for entry in entries if entry.external_id}
    content_hashes = {entry.content_hash for entry in entries if not entry.external_id}
    # Unordered: ordered by id, SQLite prefers walking every item of the corpus in id order to
    # sorting the few found by the (corpus, external id) or (corpus, content hash) index.
    existing = Item.objects.select_for_update().order_by()
    found: dict[tuple[str, str], Item] = {}
    if external_ids:
        found.update((("id", item.external_id), item)
                     for item in existing.filter(corpus=corpus, external_id__in=external_ids))
    if content_hashes:
        found.update((("hash", item.content_hash), item)
                     for item in existing.filter(corpus=corpus, external_id="", content_hash__in=content_hashes))
    saved, new_items, existing_items, files_written = [], [], {}, []
    try:
        for entry in entries:
            identity = ("id", entry.external_id) if entry.external_id else ("hash", entry.content_hash)
            item = found.get(identity)
            created = item is None
            if created:
                item = found[identity] = Item(corpus=corpus, external_id=entry.external_id)
                new_items.append(item)
            elif item.pk is not None:
                existing_items[item.pk] = item
            item.kind = entry.kind
            item.title = entry.title
            item.text = entry.text
            item.content_hash = entry.content_hash
            item.source_name = entry.source.name
            item.metadata = {**item.metadata, **entry.metadata}
            for name, value in entry.fingerprint.items():
                setattr(item, name, value)
            if entry.data:
                _files_save(item=item, entry=entry, written=files_written)
            saved.append(_Saved(item=item, created=created))
        Item.objects.bulk_create(new_items)
        rows_update(list(existing_items.values()), ITEM_FIELDS_WRITTEN)
        for entry, outcome in zip(entries, saved):
            # An item that existed may have children to update or remove, even if it now has none.
            if entry.children or (not outcome.created and entry.kind in (Item.Kind.TEXT, *PARENT_KINDS)):
                outcome.children = _children_save(parent=outcome.item, children=entry.children, written=files_written)
    except BaseException:
        # The rows roll back; the files would stay behind, and saving again picks new names.
        for name in files_written:
            default_storage.delete(name)
        raise
    return saved


def _children_save(*, parent: Item, children: list[_Child], written: list[str]) -> list[Item]:
    """The parent's children, saved in order: the n-th child of a kind is keyed by its parent's
    content, its kind and n, so ingesting the same source again updates its children in place
    (same ids). Children left over (a shorter transcript, fewer pages read) are deleted, and their
    vectors and thumbnails go with them (see `multimodal.signals`). Adds the name of each file
    written to ``written``.
    """
    existing = {child.content_hash: child for child in parent.children.all()}
    positions: dict[str, int] = {}
    items, new_items, kept_items = [], [], []
    for child in children:
        position = positions[child.kind] = positions.get(child.kind, -1) + 1
        content_hash = hashlib.sha256(f"{parent.content_hash}/{child.kind}/{position}".encode()).hexdigest()
        item = existing.pop(content_hash, None)
        if item is None:
            item = Item(corpus=parent.corpus, parent=parent, content_hash=content_hash)
            new_items.append(item)
        else:
            kept_items.append(item)
        item.kind = child.kind
        item.title = child.title[:TITLE_MAX_CHARS]
        item.text = child.text
        item.source_name = parent.source_name
        item.start_s, item.end_s, item.page = child.start_s, child.end_s, child.page
        item.metadata = {"source": parent.source_name, **child.metadata}
        if child.image is not None:
            _thumbnail_save(field_file=item.thumbnail, name=f"{parent.corpus_id}/{content_hash[:2]}/{content_hash}.jpg",
                            image=child.image, written=written)
        items.append(item)
    Item.objects.bulk_create(new_items)
    rows_update(kept_items, CHILD_FIELDS_WRITTEN)
    for leftover in existing.values():
        leftover.delete()
    return items


def _files_save(*, item: Item, entry: _Decoded, written: list[str]) -> None:
    """Keep the original (and an image's thumbnail), named by content so unchanged files are not rewritten.

    The extension comes from the bytes (`media_type`), never from the uploader's name: a GIF uploaded
    as ``poly.js`` is kept as ``….gif``. Adds the name of each file it writes to ``written`` as it goes
    (a failure halfway leaves the caller a full list to remove). A file it replaces is deleted only
    once the transaction commits.
    """
    detected = media_type(entry.data[:MEDIA_HEAD_BYTES])
    extension = detected[1] if detected else (entry.file_extension or ".bin")
    base = f"{item.corpus_id}/{entry.content_hash[:2]}/{entry.content_hash}"
    _file_save(field_file=item.file, name=f"{base}{extension}", content=lambda: entry.data, written=written)
    if entry.image is not None:
        _thumbnail_save(field_file=item.thumbnail, name=f"{base}.jpg", image=entry.image, written=written)


def _thumbnail_save(*, field_file, name: str, image: Image.Image, written: list[str]) -> None:
    _file_save(field_file=field_file, name=name, content=lambda: thumbnail_jpeg(image), written=written)


def _file_save(*, field_file, name: str, content: Callable[[], bytes], written: list[str]) -> None:
    """Write ``content()`` as ``name`` unless the field already holds that file."""
    if field_file and field_file.name.endswith(name) and default_storage.exists(field_file.name):
        return
    if field_file:  # a product whose image changed: the row keeps pointing at the old file until commit
        transaction.on_commit(partial(default_storage.delete, field_file.name))
    field_file.save(name, ContentFile(content()), save=False)
    written.append(field_file.name)
