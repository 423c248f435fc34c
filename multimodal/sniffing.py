"""What a file really is, judged by its first bytes rather than its name."""
from pathlib import Path

from .imaging import IMAGE_EXTENSIONS

TEXT_EXTENSIONS = {".txt", ".md", ".markdown"}
TABLE_EXTENSIONS = {".csv", ".tsv", ".xlsx"}
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
HEAD_BYTES = 16


def is_image(head: bytes) -> bool:
    return head.startswith(IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def content_kind(name: str, head: bytes) -> str:
    """One of "zip", "table", "image", "text" or "unknown", from the content first, then the name.

    An .xlsx file is a zip by content; its extension tells it apart from an archive.
    """
    extension = Path(name).suffix.lower()
    if head.startswith(ZIP_MAGIC):
        return "table" if extension == ".xlsx" else "zip"
    if is_image(head):
        return "image"
    if extension in TABLE_EXTENSIONS - {".xlsx"}:
        return "table"
    if extension in TEXT_EXTENSIONS:
        return "text"
    if extension in IMAGE_EXTENSIONS:
        return "image"  # claims to be an image; decoding will say what is wrong with it
    return "unknown"


def file_head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(HEAD_BYTES)
