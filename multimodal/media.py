"""Serving media (originals, thumbnails, recordings) from Django on the embedded default.

Unlike ``django.views.static.serve`` this answers HTTP Range requests (206 Partial Content), which
browsers need to seek in audio and video, so a hit can play from its second; and it reads
``MEDIA_ROOT`` per request, so the setting in force is the one served. Behind nginx set
``MULTIMODAL_SERVE_MEDIA=0`` and let nginx serve media instead.
"""
import mimetypes
import re
from pathlib import Path

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.utils._os import safe_join
from django.views.decorators.http import require_safe

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK_BYTES = 64 * 1024


@require_safe
def media_serve(request, path: str):
    try:
        full_path = Path(safe_join(settings.MEDIA_ROOT, path))
    except Exception:  # SuspiciousFileOperation: a path escaping MEDIA_ROOT
        raise Http404("no such file") from None
    if not full_path.is_file():
        raise Http404("no such file")
    size = full_path.stat().st_size
    content_type = mimetypes.guess_type(full_path.name)[0] or "application/octet-stream"
    requested = _byte_range(request.headers.get("Range", ""), size)
    if requested is None:
        response = FileResponse(full_path.open("rb"), content_type=content_type)
    elif requested == "unsatisfiable":
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    else:
        start, end = requested
        handle = full_path.open("rb")
        handle.seek(start)
        response = FileResponse(_read_span(handle, end - start + 1), status=206, content_type=content_type)
        response["Content-Length"] = str(end - start + 1)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _byte_range(header: str, size: int):
    """(first, last) byte of a single ``bytes=`` range; None to send it all; "unsatisfiable"."""
    match = _RANGE_RE.match(header.strip())
    if not match or not any(match.groups()):
        return None  # no header, or a form we do not serve partially (several ranges): send it all
    first, last = match.groups()
    if not first:  # the last N bytes
        length = int(last)
        return (max(size - length, 0), size - 1) if length and size else "unsatisfiable"
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return "unsatisfiable"
    return start, end


def _read_span(handle, length: int):
    with handle:
        while length > 0:
            chunk = handle.read(min(_CHUNK_BYTES, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk
