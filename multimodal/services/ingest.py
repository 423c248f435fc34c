"""Turning files into items and vectors.

A run reads sources in batches: each source is checked and decoded on its own (a bad one fails
alone, with its reason), the good ones are encoded together, saved, and their vectors upserted in
bulk; the collection is flushed once at the end. Items are keyed by (corpus, content hash), so
ingesting the same bytes again updates the item and overwrites its vector instead of adding one.
"""
import hashlib
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from .. import encoders, store
from ..errors import IngestError, UserInputError
from ..imaging import IMAGE_EXTENSIONS, image_open, thumbnail_jpeg
from ..models import Corpus, Item
from .embedding import EmbedInput, inputs_encode, item_vector_record

logger = logging.getLogger(__name__)

TEXT_EXTENSIONS = {".txt", ".md", ".markdown"}
SUPPORTED_EXTENSIONS = IMAGE_EXTENSIONS | TEXT_EXTENSIONS
TITLE_MAX_CHARS = 200


@dataclass(frozen=True)
class Source:
    """One file to ingest: the name shown to people and a way to read its bytes."""

    name: str
    read: Callable[[], bytes]
    size: int | None = None

    @property
    def extension(self) -> str:
        return Path(self.name).suffix.lower()


@dataclass
class IngestFailure:
    name: str
    reason: str


@dataclass
class IngestReport:
    created: int = 0
    updated: int = 0
    failures: list[IngestFailure] = field(default_factory=list)

    @property
    def landed(self) -> int:
        return self.created + self.updated

    def as_dict(self) -> dict:
        return {
            "created": self.created,
            "updated": self.updated,
            "failed": len(self.failures),
            "failures": [{"name": failure.name, "reason": failure.reason} for failure in self.failures],
        }


ProgressCallback = Callable[[int, IngestReport], None]  # (sources processed so far, report so far)


@dataclass
class _Decoded:
    source: Source
    kind: str
    data: bytes
    content_hash: str
    title: str
    text: str = ""
    image: Image.Image | None = None
    metadata: dict = field(default_factory=dict)


def sources_from_paths(paths: Iterable[str | Path]) -> tuple[list[Source], list[IngestFailure]]:
    """Every file under ``paths`` (directories recursively, hidden files skipped), sorted.

    Paths that do not exist come back as failures rather than stopping the run.
    """
    sources, failures = [], []
    for raw_path in paths:
        path = Path(raw_path)
        if path.is_dir():
            files = sorted(
                candidate
                for candidate in path.rglob("*")
                if candidate.is_file()
                and not any(part.startswith(".") for part in candidate.relative_to(path).parts)
            )
        elif path.is_file():
            files = [path]
        else:
            failures.append(IngestFailure(str(path), "no such file or directory"))
            continue
        sources.extend(
            Source(name=str(file), read=file.read_bytes, size=file.stat().st_size) for file in files
        )
    return sources, failures


def items_ingest(
    *,
    corpus: Corpus,
    sources: list[Source],
    batch_size: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest ``sources`` into ``corpus``; every source either lands as an item or is a failure."""
    encoder = encoders.get()
    collection = store.collection_for(encoder)
    batch_size = batch_size or settings.MULTIMODAL_ENCODE_BATCH_SIZE
    report = IngestReport()
    processed = 0
    for batch in _batches(sources, batch_size):
        decoded = []
        for source in batch:
            try:
                decoded.append(_decode(source))
            except UserInputError as exc:
                report.failures.append(IngestFailure(source.name, str(exc).removeprefix(f"{source.name}: ")))
        _encode_save_index(corpus=corpus, decoded=decoded, encoder=encoder, collection=collection, report=report)
        processed += len(batch)
        if on_progress:
            on_progress(processed, report)
    collection.flush()
    return report


def _batches(sources: list[Source], size: int) -> Iterator[list[Source]]:
    for start in range(0, len(sources), size):
        yield sources[start:start + size]


def _decode(source: Source) -> _Decoded:
    extension = source.extension
    if extension not in SUPPORTED_EXTENSIONS:
        raise IngestError(f"unsupported file type '{extension or '(none)'}'")
    max_bytes = settings.MULTIMODAL_MAX_FILE_MB * 1024 * 1024
    if source.size is not None and source.size > max_bytes:
        raise IngestError(f"too large: {source.size:,} bytes, the limit is {settings.MULTIMODAL_MAX_FILE_MB} MB")
    try:
        data = source.read()
    except OSError as exc:
        raise IngestError(f"could not be read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise IngestError(f"too large: {len(data):,} bytes, the limit is {settings.MULTIMODAL_MAX_FILE_MB} MB")
    content_hash = hashlib.sha256(data).hexdigest()
    stem = Path(source.name).stem
    if extension in IMAGE_EXTENSIONS:
        image = image_open(data, name=source.name)
        return _Decoded(
            source=source, kind=Item.Kind.IMAGE, data=data, content_hash=content_hash, title=stem, image=image,
            metadata={"source": source.name, "width": image.width, "height": image.height, "bytes": len(data)},
        )
    text = _text_decode(data).strip()
    if not text:
        raise IngestError("the text file is empty")
    return _Decoded(
        source=source, kind=Item.Kind.TEXT, data=data, content_hash=content_hash, title=_text_title(text, stem),
        text=text, metadata={"source": source.name, "bytes": len(data), "characters": len(text)},
    )


def _text_decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise IngestError("binary data in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _text_title(text: str, fallback: str) -> str:
    """The first line, without markdown heading marks, or the file name when that line is too long."""
    first_line = re.sub(r"^#+\s*", "", text.splitlines()[0]).strip()
    return first_line if 0 < len(first_line) <= TITLE_MAX_CHARS else fallback


def _encode_save_index(*, corpus, decoded, encoder, collection, report) -> None:
    vectors, errors = inputs_encode(
        [EmbedInput(key=index, image=entry.image, text=entry.text) for index, entry in enumerate(decoded)],
        encoder=encoder,
    )
    records = []
    for index, entry in enumerate(decoded):
        if index in errors:
            report.failures.append(IngestFailure(entry.source.name, errors[index]))
            continue
        try:
            item, created = _item_save(corpus=corpus, entry=entry)
        except Exception as exc:  # a storage or database problem with one item must not sink the batch
            logger.exception("saving %s failed", entry.source.name)
            report.failures.append(IngestFailure(entry.source.name, f"could not be saved ({exc})"))
            continue
        if created:
            report.created += 1
        else:
            report.updated += 1
        records.append(item_vector_record(item, vectors[index]))
    collection.upsert(records)


def _item_save(*, corpus: Corpus, entry: _Decoded) -> tuple[Item, bool]:
    with transaction.atomic():
        item, created = Item.objects.select_for_update().get_or_create(
            corpus=corpus, content_hash=entry.content_hash,
            defaults={"kind": entry.kind, "title": entry.title},
        )
        item.kind = entry.kind
        item.title = entry.title
        item.text = entry.text
        item.source_name = entry.source.name
        item.metadata = {**item.metadata, **entry.metadata}
        if entry.image is not None:
            base = f"{corpus.pk}/{entry.content_hash[:2]}/{entry.content_hash}"
            if not item.file or not default_storage.exists(item.file.name):
                item.file.save(f"{base}{entry.source.extension}", ContentFile(entry.data), save=False)
            if not item.thumbnail or not default_storage.exists(item.thumbnail.name):
                item.thumbnail.save(f"{base}.jpg", ContentFile(thumbnail_jpeg(entry.image)), save=False)
        item.save()
    return item, created
