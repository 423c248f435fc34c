"""What a file really is, judged by its bytes rather than its name.

libmagic (python-magic) names container formats a magic-number table can not: an OOXML document,
an EPUB or an OpenDocument file is a zip by its first bytes, but a document to read, not an archive
to expand. Without libmagic (a machine without libmagic1) the hand-written table below still
decides, with a warning logged once: documents are then told from archives by their extension.
"""
import logging
import re
from pathlib import Path

from .imaging import IMAGE_EXTENSIONS

logger = logging.getLogger(__name__)

try:
    import magic
except ImportError as exc:  # python-magic raises ImportError when libmagic itself is missing
    magic = None
    logger.warning("libmagic is not available (%s): file types are judged by a built-in table of magic "
                   "numbers and by extension", exc)

TEXT_EXTENSIONS = {".txt", ".md", ".markdown"}
TABLE_EXTENSIONS = {".csv", ".tsv", ".xlsx"}
# Recordings, and videos whose audio track is what gets indexed.
AUDIO_EXTENSIONS = {
    ".wav", ".wave", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".weba", ".mka",
    ".aif", ".aiff", ".wma", ".amr",
}
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".wmv", ".mpg", ".mpeg", ".3gp"}
ZIP_MAGIC = b"PK\x03\x04"
PDF_MAGIC = b"%PDF-"
# libmagic recognises OOXML by the names of a zip's first entries and HTML by its first tags: it
# needs the first few KB, not just a magic number.
HEAD_BYTES = 8192

# Document formats read by multimodal.readers.documents, by the media type libmagic gives them.
DOCUMENT_MIME_TYPES = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/epub+zip": "epub",
    "text/html": "html",
    "application/xhtml+xml": "html",
}
DOCUMENT_EXTENSIONS = {".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".epub": "epub", ".html": "html",
                       ".htm": "html", ".xhtml": "html"}
# Documents that are recognised but not read: named, so the user learns what to convert them to.
UNSUPPORTED_DOCUMENT_MIME_TYPES = {
    "application/vnd.oasis.opendocument.text": "OpenDocument text (.odt)",
    "application/vnd.oasis.opendocument.presentation": "OpenDocument presentation (.odp)",
    "application/msword": "Word 97-2003 (.doc)",
    "application/vnd.ms-powerpoint": "PowerPoint 97-2003 (.ppt)",
    "text/rtf": "Rich Text Format (.rtf)",
}
UNSUPPORTED_DOCUMENT_EXTENSIONS = {".odt": "OpenDocument text (.odt)", ".odp": "OpenDocument presentation (.odp)"}
XLSX_MIME_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_GENERIC_ZIP_MIME_TYPES = {"application/zip", "application/octet-stream", None}


def mime_sniff(head: bytes) -> str | None:
    """The media type libmagic gives the file whose first bytes (``HEAD_BYTES``) are ``head``; None without libmagic."""
    if magic is None or not head:
        return None
    try:
        return magic.from_buffer(head[:HEAD_BYTES], mime=True)
    except magic.MagicException as exc:  # libmagic gave up on these bytes: the table and the name decide
        logger.warning("libmagic could not judge a file: %s", exc)
        return None


def document_format(data: bytes, name: str) -> str | None:
    """Which document format ("pdf", "docx", "pptx", "html", "epub") the file is, from its bytes; None when none.

    Only ``data[:HEAD_BYTES]`` is looked at. The content decides; the name only tells a document
    from a plain zip when libmagic can not (no libmagic, or a writer that put the zip's entries in an
    unusual order), and an .html file from other text.
    """
    head = data[:HEAD_BYTES]
    return _document_format(head, Path(name).suffix.lower(), mime_sniff(head))


def unsupported_document(data: bytes, name: str) -> str | None:
    """What kind of document the file is when it is one that is recognised but not read (an .odt...), else None."""
    head = data[:HEAD_BYTES]
    return _unsupported_document(head, Path(name).suffix.lower(), mime_sniff(head))


def _document_format(head: bytes, extension: str, mime: str | None) -> str | None:
    if head.startswith(PDF_MAGIC):
        return "pdf"
    if mime in DOCUMENT_MIME_TYPES and not (mime == "text/html" and extension in TEXT_EXTENSIONS):
        return DOCUMENT_MIME_TYPES[mime]
    by_name = DOCUMENT_EXTENSIONS.get(extension)
    if head.startswith(ZIP_MAGIC):
        return by_name if by_name in ("docx", "pptx", "epub") and mime in _GENERIC_ZIP_MIME_TYPES else None
    if by_name == "html" and (mime is None or mime.startswith("text/")) and b"\x00" not in head:
        return "html"
    return None


def _unsupported_document(head: bytes, extension: str, mime: str | None) -> str | None:
    if mime in UNSUPPORTED_DOCUMENT_MIME_TYPES:
        return UNSUPPORTED_DOCUMENT_MIME_TYPES[mime]
    if head.startswith(ZIP_MAGIC) and mime in _GENERIC_ZIP_MIME_TYPES:
        return UNSUPPORTED_DOCUMENT_EXTENSIONS.get(extension)
    return None


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
    """One of "zip", "table", "document", "image", "audio", "video", "text" or "unknown".

    ``head`` is the file's first ``HEAD_BYTES`` (fewer only when the file is shorter). The content
    decides first, the name after. "document" is a PDF, Word, PowerPoint, EPUB or HTML file, and also
    one recognised but not read (.odt, .doc...: reading it says so); "zip" is an archive to expand,
    never a document or an .xlsx (a "table"). "video" is a video container (mp4, mov, mkv, webm,
    avi...) unless its first bytes show only sound tracks (a browser's WebM voice recording is
    "audio"); where the tracks are listed past the head (an mp4 whose index is at its end), it stays
    "video" and may still turn out to hold only sound.
    """
    extension = Path(name).suffix.lower()
    if head.startswith(PDF_MAGIC):
        return "document"
    if is_image(head):
        return "image"
    if (family := _media_family(head)) in ("audio", "video"):
        return _recording_kind(family, head)
    if extension in TEXT_EXTENSIONS | TABLE_EXTENSIONS - {".xlsx"} and not head.startswith(ZIP_MAGIC):
        # Named as text or a table and not a zip: libmagic would not change the answer (its reader says
        # what is wrong with it), and its text tests take milliseconds a file.
        return "text" if extension in TEXT_EXTENSIONS else "table"
    mime = mime_sniff(head)
    if _document_format(head, extension, mime) or _unsupported_document(head, extension, mime):
        return "document"
    if head.startswith(ZIP_MAGIC):
        return "table" if extension == ".xlsx" or mime == XLSX_MIME_TYPE else "zip"
    if (family := (mime or "").partition("/")[0]) in ("audio", "video"):
        return _recording_kind(family, head)
    if extension in IMAGE_EXTENSIONS:
        return "image"  # claims to be an image; decoding will say what is wrong with it
    if extension in AUDIO_EXTENSIONS:
        return "audio"  # likewise
    if extension in VIDEO_EXTENSIONS:
        return "video"  # likewise
    return "unknown"


def _recording_kind(family: str, head: bytes) -> str:
    """ "video" for a video container unless ``head`` lists only sound tracks; "audio" for anything else."""
    return "video" if family == "video" and _has_video_track(head) is not False else "audio"


# Track types as containers list them near their start: Matroska/WebM CodecIDs ("V_VP9", "A_OPUS"),
# MP4/QuickTime handler types, AVI stream headers.
_VIDEO_TRACK = re.compile(rb"\x86[\x81-\xbf]V_|hdlr.{8}vide|strh.{4}vids", re.DOTALL)
_AUDIO_TRACK = re.compile(rb"\x86[\x81-\xbf]A_|hdlr.{8}soun|strh.{4}auds", re.DOTALL)


def _has_video_track(head: bytes) -> bool | None:
    """Whether the container's track list in ``head`` has a picture track; None when ``head`` lists no tracks."""
    if _VIDEO_TRACK.search(head):
        return True
    return False if _AUDIO_TRACK.search(head) else None


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
