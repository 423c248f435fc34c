"""Images and recordings a visitor adds to a query in the page, kept server-side for their session.

Each file is stored once under ``MULTIMODAL_UPLOAD_ROOT/query``, named by its content hash (outside
``MEDIA_ROOT``: it is never served as uploaded; images are shown through a re-encoded preview). The
session maps short random refs to the files, so a ref only resolves in the session that uploaded
it, and paging or refining a query sends the ref, not the file again. A recording's transcript is
remembered with its ref, so a voice query is transcribed once, not on every page.
"""
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.contrib.sessions.backends.base import SessionBase
from django.core.files.uploadedfile import UploadedFile

from ..errors import UserInputError
from ..query.parts import PARTS, UPLOAD_TYPES, UploadTooLarge
from ..readers.imaging import ImageTooLarge, query_image_open, thumbnail_jpeg
from ..readers.sniffing import HEAD_BYTES, is_audio

SESSION_KEY = "multimodal_query_uploads"
QUOTA_KEY = "multimodal_query_upload_times"  # [[unix time, bytes], ...] of the last hour
PREVIEW_SUFFIX = ".preview.jpg"


class UploadQuotaExceeded(UserInputError):
    """The session or the address has sent as many files or bytes this hour as it may."""


class UploadUnsupported(UserInputError):
    """The file is not an image (or not audio) that can be read."""


@dataclass(frozen=True)
class QueryUpload:
    ref: str
    type: str  # "image" or "voice"
    name: str
    size: int
    path: Path
    transcript: dict | None = None  # voice: what the speech model heard, once it has

    def read(self) -> bytes:
        return self.path.read_bytes()

    @property
    def preview_path(self) -> Path | None:
        """What the page may show of the file: a JPEG re-encoded from an image (recordings: none)."""
        return self.path.with_name(self.path.name + PREVIEW_SUFFIX) if self.type == "image" else None


def query_upload_store(*, session: SessionBase, client: str, part_type: str, upload: UploadedFile) -> QueryUpload:
    """Check ``upload`` as a query ``part_type`` (image or voice), keep it, and add a ref to the session.

    Each upload tried counts against the hourly quotas of the session and of the ``client`` address
    (``MULTIMODAL_QUERY_UPLOAD_SESSION_*``, ``MULTIMODAL_QUERY_UPLOAD_IP_*``), checked before the
    file is read. Raises UploadTooLarge, UploadUnsupported, UploadQuotaExceeded (all UserInputError)
    with a message for the visitor.
    """
    if part_type not in UPLOAD_TYPES:
        raise UserInputError(f"type must be one of {', '.join(UPLOAD_TYPES)}")
    name = Path(upload.name or part_type).name[:200]
    try:
        PARTS[part_type].size_check(upload.size)
    except UploadTooLarge as exc:
        raise UploadTooLarge(f"{name}: {exc}") from None
    _quota_take(session=session, client=client, size=upload.size)
    data = upload.read()
    if not data:
        raise UploadUnsupported(f"{name}: the file is empty")
    preview = None
    if part_type == "image":
        try:
            image = query_image_open(data, name=name)
        except ImageTooLarge as exc:
            raise UploadTooLarge(str(exc)) from None
        except UserInputError as exc:
            raise UploadUnsupported(f"{exc} (use a JPEG, PNG, WebP, GIF, BMP or TIFF image)") from None
        preview = thumbnail_jpeg(image)
    elif not is_audio(data[:HEAD_BYTES]):
        raise UploadUnsupported(f"{name}: not a recording that can be read "
                                "(use WAV, FLAC, MP3, Ogg/Opus, WebM or M4A audio)")
    path = _file_keep(data, preview)
    ref = secrets.token_urlsafe(12)
    entries = dict(session.get(SESSION_KEY, {}))
    entries[ref] = {"type": part_type, "name": name, "size": len(data), "file": path.name,
                    "added": time.time()}
    # The session keeps only the newest refs; older ones then say they have expired.
    newest = sorted(entries, key=lambda key: entries[key]["added"])[-settings.MULTIMODAL_QUERY_UPLOADS_PER_SESSION:]
    session[SESSION_KEY] = {key: entries[key] for key in newest}
    query_uploads_prune()
    return _upload(ref, entries[ref])


def _quota_take(*, session: SessionBase, client: str, size: int) -> None:
    """Count one upload of ``size`` bytes against this hour's quotas, or raise UploadQuotaExceeded.

    The session's uploads of the last hour are listed in the session itself; an address's are two
    counters in the cache per clock hour (shared by every process when CACHE_URL is set).
    """
    now, megabyte = time.time(), 1024 * 1024
    recent = [entry for entry in session.get(QUOTA_KEY, []) if entry[0] > now - 3600]
    files_limit, mb_limit = settings.MULTIMODAL_QUERY_UPLOAD_SESSION_FILES, settings.MULTIMODAL_QUERY_UPLOAD_SESSION_MB
    if len(recent) + 1 > files_limit or sum(sent for _, sent in recent) + size > mb_limit * megabyte:
        raise UploadQuotaExceeded(f"this browser session has added {len(recent)} images or recordings in the last "
                                  f"hour; the limit is {files_limit} files and {mb_limit} MB an hour: try again later")
    hour = int(now // 3600)
    files_key, bytes_key = f"query-uploads:{client}:{hour}:files", f"query-uploads:{client}:{hour}:bytes"
    cache.add(files_key, 0, 3600)
    cache.add(bytes_key, 0, 3600)
    files_limit, mb_limit = settings.MULTIMODAL_QUERY_UPLOAD_IP_FILES, settings.MULTIMODAL_QUERY_UPLOAD_IP_MB
    if cache.get(files_key, 0) + 1 > files_limit or cache.get(bytes_key, 0) + size > mb_limit * megabyte:
        raise UploadQuotaExceeded(f"your address has added too many images or recordings this hour (the limit is "
                                  f"{files_limit} files and {mb_limit} MB an hour): try again later")
    cache.incr(files_key)
    cache.incr(bytes_key, size)
    session[QUOTA_KEY] = [*recent, [now, size]]


def query_upload_get(*, session: SessionBase, ref: str) -> QueryUpload:
    """The upload ``ref`` names in this session; UserInputError if it is unknown or expired."""
    entry = session.get(SESSION_KEY, {}).get(str(ref))
    upload = _upload(str(ref), entry) if entry else None
    if upload is None or not upload.path.is_file():
        raise UserInputError("an image or recording in this query is no longer kept on the server: add it again")
    return upload


def query_uploads_list(*, session: SessionBase) -> list[QueryUpload]:
    """This session's uploads, oldest first."""
    entries = session.get(SESSION_KEY, {})
    return [_upload(ref, entry) for ref, entry in sorted(entries.items(), key=lambda pair: pair[1]["added"])]


def query_upload_transcript_remember(*, session: SessionBase, ref: str, transcript: dict) -> None:
    entries = dict(session.get(SESSION_KEY, {}))
    if ref in entries and entries[ref].get("transcript") != transcript:
        entries[ref] = {**entries[ref], "transcript": transcript}
        session[SESSION_KEY] = entries


def _root() -> Path:
    return Path(settings.MULTIMODAL_UPLOAD_ROOT) / "query"


def _upload(ref: str, entry: dict) -> QueryUpload:
    return QueryUpload(ref=ref, type=entry["type"], name=entry["name"], size=entry["size"],
                       path=_root() / entry["file"], transcript=entry.get("transcript"))


def _file_keep(data: bytes, preview: bytes | None) -> Path:
    """Write ``data`` once under its hash (and the image preview beside it); touch it if already there."""
    root = _root()
    root.mkdir(parents=True, exist_ok=True)
    path = root / hashlib.sha256(data).hexdigest()
    for target, content in ((path, data), (path.with_name(path.name + PREVIEW_SUFFIX), preview)):
        if content is None:
            continue
        if target.exists():
            os.utime(target)  # kept alive by its newest use
            continue
        partial = target.with_name(f"{target.name}.{secrets.token_hex(4)}.part")
        partial.write_bytes(content)
        partial.replace(target)  # readers never see half a file
    return path


def query_uploads_prune() -> tuple[int, int]:
    """Delete kept files unused for ``MULTIMODAL_QUERY_UPLOAD_TTL_H`` hours, then the least recently
    used ones while the folder holds more than ``MULTIMODAL_QUERY_UPLOAD_TOTAL_MB`` (their refs then
    expire); returns (files, bytes) deleted."""
    oldest_kept = time.time() - settings.MULTIMODAL_QUERY_UPLOAD_TTL_H * 3600
    kept, deleted, freed = [], 0, 0
    for path in _root().iterdir() if _root().is_dir() else ():
        try:
            stat = path.stat()
            if stat.st_mtime < oldest_kept:
                path.unlink()
                deleted, freed = deleted + 1, freed + stat.st_size
            else:
                kept.append((stat.st_mtime, stat.st_size, path))
        except FileNotFoundError:  # pruned by another request at the same moment
            pass
    over = sum(size for _, size, _ in kept) - settings.MULTIMODAL_QUERY_UPLOAD_TOTAL_MB * 1024 * 1024
    for _, size, path in sorted(kept, key=lambda entry: entry[0]):
        if over <= 0:
            break
        path.unlink(missing_ok=True)
        deleted, freed, over = deleted + 1, freed + size, over - size
    return deleted, freed
