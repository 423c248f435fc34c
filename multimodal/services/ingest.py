"""Turning sources (files, archive entries, table rows) into items and vectors.

A batch of sources is checked and decoded one by one (a bad source fails alone, with its reason),
the good ones are encoded together, saved together, and their vectors upserted in bulk. Items are
keyed by (corpus, content hash), or by (corpus, external id) for table rows that carry one, so
ingesting the same source again updates its item and overwrites its vectors instead of adding new
ones. Saving together means a batch costs a few statements however many rows it has (one lookup,
one insert, one round of updates); a batch the database refuses is saved again one item at a time,
so a source whose save fails still fails alone.

Stored text is bounded: a text file's or a product's text keeps ``MULTIMODAL_MAX_TEXT_CHARS``
characters, a title ``TITLE_MAX_CHARS``; what was cut is said in the report's ``warnings`` (the
item still lands), as is a text file read in an encoding other than UTF-8.

Some sources become an item with children (``Item.parent``): a recording is transcribed while it
is decoded and becomes an item that owns no vector, plus one segment per passage of its transcript,
each with the text vector of its words. Children are keyed by their parent's content, their kind
and their position, so ingesting the source again updates them in place, and those left over go.
"""
import dataclasses
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable, Hashable, Iterable

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from .. import encoders
from ..errors import IngestError, UserInputError
from ..models import PARENT_KINDS, Corpus, Item
from ..readers.audio import clock
from ..readers.imaging import image_open, thumbnail_jpeg
from ..readers.sniffing import HEAD_BYTES, MEDIA_HEAD_BYTES, content_kind, is_image, media_type
from ..readers.tabular import TextLimits, encoding_detect, text_decode
from ..retrieval import indexes
from ..row_updates import rows_update
from ..speech.segmenting import Passage
from .embedding import EmbedInput, inputs_encode, item_vector_record, product_text
from .vectors import vectors_write
from .voice import recording_transcribe

logger = logging.getLogger(__name__)

TITLE_MAX_CHARS = 200
# What ingesting a source again rewrites in its item (its identity, corpus and parent stay).
ITEM_FIELDS_WRITTEN = ["kind", "title", "text", "content_hash", "source_name", "metadata", "file", "thumbnail",
                       "updated_at"]
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
    warnings: list[str] = field(default_factory=list)  # what was changed on the way in, for people


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
    for start in range(0, len(sources), batch_size):
        sources_ingest_batch(corpus=corpus, sources=sources[start:start + batch_size], report=report)
        if on_progress:
            on_progress(min(start + batch_size, len(sources)), report)
    indexes.indexes_flush([corpus.pk])
    return report


def sources_ingest_batch(*, corpus: Corpus, sources: list[Source], report: IngestReport,
                         heartbeat: Heartbeat | None = None, encode_batch_size: int | None = None) -> None:
    """Decode, encode, save together and upsert one batch, adding its outcomes to ``report``.

    The model encodes ``encode_batch_size`` inputs at a time (None: the whole batch at once).
    Vectors go to every index the corpus may be searched in (`vectors_write`). They are not flushed:
    callers flush once after their last batch.
    """
    encoder = encoders.get()
    decoded = []
    for source in sources:
        try:
            decoded.append(_decode(source, corpus=corpus, heartbeat=heartbeat))
        except UserInputError as exc:
            report.fail(source, str(exc))
    inputs = []
    for index, entry in enumerate(decoded):
        if entry.image is not None and entry.kind not in PARENT_KINDS:
            inputs.append(EmbedInput(key=(index, "image"), image=entry.image))
        if entry.kind in (Item.Kind.TEXT, Item.Kind.PRODUCT):
            inputs.append(EmbedInput(key=(index, "text"), text=entry.encoder_text or entry.text))
        inputs += [EmbedInput(key=(index, "child", number), image=child.image, text=child.text)
                   for number, child in enumerate(entry.children)]
    vectors, errors = inputs_encode(inputs, encoder=encoder, batch_size=encode_batch_size)
    encoded = []
    for index, entry in enumerate(decoded):
        error = next((reason for key, reason in errors.items() if key[0] == index), None)
        if error:
            report.fail(entry.source, error)
        else:
            encoded.append((index, entry))
    records = []
    for (index, entry), saved in zip(encoded, _items_save(corpus=corpus, entries=[entry for _, entry in encoded])):
        if isinstance(saved, Exception):
            report.fail(entry.source, f"could not be saved ({saved})")
            continue
        report.created += saved.created
        report.updated += not saved.created
        report.items[entry.source.key] = (saved.item.pk, saved.created)
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
    limit_mb = settings.MULTIMODAL_MAX_RECORDING_MB if kind == "audio" else settings.MULTIMODAL_MAX_FILE_MB
    if len(data) > limit_mb * 1024 * 1024:
        raise IngestError(_too_large(len(data), limit_mb))
    content_hash = hashlib.sha256(data).hexdigest()
    stem = Path(source.name).stem
    if kind == "audio":
        return (_recording_reuse(source, data, corpus=corpus, content_hash=content_hash, title=stem)
                or _decode_recording(source, data, content_hash=content_hash, title=stem, heartbeat=heartbeat))
    if kind == "image":
        if not is_image(data[:HEAD_BYTES]):
            raise IngestError(f"not an image: the content does not match the '{source.extension}' extension")
        image = image_open(data, name=source.name)
        width, height = image.info["source_size"]
        return _Decoded(
            source=source, kind=Item.Kind.IMAGE, content_hash=content_hash, title=stem, data=data, image=image,
            metadata={"source": source.name, "width": width, "height": height, "bytes": len(data)},
        )
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
    return _Decoded(
        source=source, kind=Item.Kind.TEXT, content_hash=content_hash, title=_text_title(text, stem),
        text=text, metadata={"source": source.name, "bytes": len(data), "characters": characters},
        warnings=warnings,
    )


def _decode_recording(source: Source, data: bytes, *, content_hash: str, title: str,
                      heartbeat: Heartbeat | None) -> _Decoded:
    recording = recording_transcribe(data, on_progress=(lambda done_s, total_s: heartbeat()) if heartbeat else None)
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
        _Child(kind=Item.Kind.SEGMENT, title=f"{title} {clock(passage.start_s)}–{clock(passage.end_s)}",
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


def _text_title(text: str, fallback: str) -> str:
    """The first line, without markdown heading marks, or the file name when that line is too long."""
    first_line = re.sub(r"^#+\s*", "", text.splitlines()[0]).strip()
    return first_line if 0 < len(first_line) <= TITLE_MAX_CHARS else fallback


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
