"""What a file really is, judged by its first bytes rather than its name."""
from pathlib import Path

from .imaging import IMAGE_EXTENSIONS

TEXT_EXTENSIONS = {".txt", ".md", ".markdown"}
TABLE_EXTENSIONS = {".csv", ".tsv", ".xlsx"}
# Recordings, and videos whose audio track is what gets indexed.
AUDIO_EXTENSIONS = {
    ".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".webm", ".weba", ".mka",
    ".aif", ".aiff", ".wma", ".amr", ".3gp",
    ".mp4", ".m4v", ".mov", ".mkv", ".avi", ".wmv", ".mpg", ".mpeg",
}
ZIP_MAGIC = b"PK\x03\x04"
HEAD_BYTES = 16


def is_image(head: bytes) -> bool:
    return _media_family(head) == "image"


def is_audio(head: bytes) -> bool:
    """A container that may hold sound: audio formats and the video formats that carry a track."""
    return _media_family(head) in ("audio", "video")


def _media_family(head: bytes) -> str:
    """The family of the file's media type from its first bytes (see `media_type`): image, audio, video,
    application (PDF); empty when it is none of those."""
    detected = media_type(head)
    return detected[0].partition("/")[0] if detected else ""


def content_kind(name: str, head: bytes) -> str:
    """One of "zip", "table", "image", "audio", "text" or "unknown", from the content first, then the name.

    An .xlsx file is a zip by content; its extension tells it apart from an archive.
    """
    extension = Path(name).suffix.lower()
    if head.startswith(ZIP_MAGIC):
        return "table" if extension == ".xlsx" else "zip"
    if is_image(head):
        return "image"
    if is_audio(head):
        return "audio"
    if extension in TABLE_EXTENSIONS - {".xlsx"}:
        return "table"
    if extension in TEXT_EXTENSIONS:
        return "text"
    if extension in IMAGE_EXTENSIONS:
        return "image"  # claims to be an image; decoding will say what is wrong with it
    if extension in AUDIO_EXTENSIONS:
        return "audio"  # likewise
    return "unknown"


def file_head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(HEAD_BYTES)


# What a kept original may be served as, and the extension it is stored under: decided by its bytes only,
# never by the uploader's name (a GIF named poly.js must not come back as a script). The same table says
# whether a file is an image or a recording (`is_image`, `is_audio`).
MEDIA_HEAD_BYTES = 64
_MEDIA_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
    (b"BM", "image/bmp", ".bmp"),
    (b"II*\x00", "image/tiff", ".tif"),
    (b"MM\x00*", "image/tiff", ".tif"),
    (b"%PDF-", "application/pdf", ".pdf"),
    (b"fLaC", "audio/flac", ".flac"),
    (b"ID3", "audio/mpeg", ".mp3"),
    (b"OggS", "audio/ogg", ".ogg"),
    (b"0&\xb2u\x8ef\xcf\x11", "video/x-ms-asf", ".asf"),
    (b"#!AMR", "audio/amr", ".amr"),
)
_RIFF_TYPES = {b"WEBP": ("image/webp", ".webp"), b"WAVE": ("audio/wav", ".wav"), b"AVI ": ("video/x-msvideo", ".avi")}


def media_type(head: bytes) -> tuple[str, str] | None:
    """(Content-Type, extension) of a file from its first ``MEDIA_HEAD_BYTES``; None when it is none we serve.

    Only raster images, audio and video containers and PDF are recognised: nothing a browser would run
    as a page or a script (no HTML, SVG, XML or JavaScript), whatever else the file's bytes also hold.
    """
    for magic, content_type, extension in _MEDIA_MAGIC:
        if head.startswith(magic):
            return content_type, extension
    if head[:4] == b"RIFF" and head[8:12] in _RIFF_TYPES:
        return _RIFF_TYPES[head[8:12]]
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio/aiff", ".aiff"
    if head[:4] == b"\x1aE\xdf\xa3":  # EBML: WebM names its DocType in the header, anything else is Matroska
        return ("video/webm", ".webm") if b"webm" in head else ("video/x-matroska", ".mkv")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4", ".m4a"
        if brand == b"qt  ":
            return "video/quicktime", ".mov"
        if brand.startswith(b"3g"):
            return "video/3gpp", ".3gp"
        return "video/mp4", ".mp4"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # An MPEG audio frame; layer bits 00 are ADTS (AAC), the others MP3.
        return ("audio/aac", ".aac") if head[1] & 0x06 == 0 else ("audio/mpeg", ".mp3")
    return None
