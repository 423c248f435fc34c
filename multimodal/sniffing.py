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
IMAGE_MAGIC = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",  # TIFF, little-endian
    b"MM\x00*",  # TIFF, big-endian
)
AUDIO_MAGIC = (
    b"fLaC",
    b"ID3",  # MP3 with tags
    b"OggS",  # Ogg Vorbis / Opus
    b"\x1aE\xdf\xa3",  # EBML: WebM (browser recordings), Matroska
    b"0&\xb2u\x8ef\xcf\x11",  # ASF: WMA, WMV
    b"#!AMR",
)
HEAD_BYTES = 16


def is_image(head: bytes) -> bool:
    return head.startswith(IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def is_audio(head: bytes) -> bool:
    """A container that may hold sound: audio formats and the video formats that carry a track."""
    if head.startswith(AUDIO_MAGIC):
        return True
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"AVI "):
        return True
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return True
    if head[4:8] == b"ftyp":  # MP4 family: m4a, mp4, mov, 3gp
        return True
    # An MPEG audio frame (MP3, or AAC in ADTS) starts with 11 set sync bits.
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


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
