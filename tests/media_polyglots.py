"""Files that are valid images and, read another way, a script or a page: what an attacker uploads."""
import io

from PIL import Image


def gif_with_comment(comment: bytes, size=(10799, 1)) -> bytes:
    """A valid GIF89a whose last block is a comment extension holding ``comment`` (at most 255 bytes).

    The default width, 10799, is ``/*`` in little-endian bytes: right after the ``GIF89a`` header it opens
    a JavaScript comment that the GIF comment can close (see `gif_js_polyglot`).
    """
    buffer = io.BytesIO()
    Image.new("P", size, 0).save(buffer, format="GIF")
    data = buffer.getvalue()
    assert data.endswith(b";") and len(comment) < 256
    return b"GIF89a" + data[6:-1] + b"\x21\xfe" + bytes([len(comment)]) + comment + b"\x00;"


def gif_js_polyglot(script: str) -> bytes:
    """A GIF that is also JavaScript: ``GIF89a/* …image… */=1;SCRIPT;//`` runs SCRIPT when loaded as a script."""
    data = gif_with_comment(f"*/=1;{script};//".encode())
    assert data[6:8] == b"/*" and b"*/" not in data[8:-len(script) - 20]
    return data


def gif_html_polyglot(html: str) -> bytes:
    """A GIF that a browser parses as a page holding ``html`` when it is served as text/html."""
    return gif_with_comment(html.encode(), size=(8, 8))
