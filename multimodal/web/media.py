"""Serving media (originals, thumbnails, recordings) from Django on the embedded default.

Unlike ``django.views.static.serve`` this answers HTTP Range requests (206 Partial Content), which
browsers need to seek in audio and video, so a hit can play from its second; and it reads
``MEDIA_ROOT`` per request, so the setting in force is the one served. Behind nginx set
``MULTIMODAL_SERVE_MEDIA=0`` and let nginx serve media instead (with the headers below).

Media are files people uploaded, so they are served as inert data whatever their name says: the
Content-Type comes from the file's bytes (`sniffing.media_type`: raster images, audio, video, PDF,
shown inline), anything else is ``application/octet-stream`` as a download; every response carries
``X-Content-Type-Options: nosniff`` and a sandboxing Content-Security-Policy, so even a file that is
also valid HTML or JavaScript (a GIF/HTML polyglot) never runs as a page or script of this site.
Files kept under an uploader's extension before names came from content (``….js``, ``….html``) are
served the same way, by their bytes. With an absolute ``MEDIA_URL`` (``MULTIMODAL_MEDIA_URL``, a
separate origin, as Django's docs advise) Django answers media only on that origin's host.
"""
import re
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.http import FileResponse, Http404, HttpResponse
from django.utils._os import safe_join
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_safe

from ..readers.sniffing import MEDIA_HEAD_BYTES, media_type

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK_BYTES = 64 * 1024
# No script, plugin, form or same-origin access even if a browser did parse the file as a document;
# images and media (a browser's own viewer of an image, a recording) still display.
MEDIA_CONTENT_SECURITY_POLICY = "; ".join((
    "sandbox",
    "default-src 'none'",
    "img-src 'self' data:",
    "media-src 'self'",
    "style-src 'unsafe-inline'",
    "frame-ancestors 'none'",
))
# A recording opened on its own: the browser's player loads the file from the document's origin, which a bare
# sandbox makes opaque (Chromium then refuses the load as cross-origin). allow-same-origin without
# allow-scripts still runs no script at all.
PLAYER_CONTENT_SECURITY_POLICY = MEDIA_CONTENT_SECURITY_POLICY.replace("sandbox", "sandbox allow-same-origin", 1)
DOWNLOAD_CONTENT_TYPE = "application/octet-stream"


def media_origin() -> str:
    """``scheme://host[:port]`` of ``MEDIA_URL`` when media live on an origin of their own, else ""."""
    parts = urlsplit(str(settings.MEDIA_URL))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def media_headers(response, *, content_type: str | None, name: str) -> None:
    """The headers every media response carries; a download (no displayable type) gets ``attachment``."""
    response["X-Content-Type-Options"] = "nosniff"
    player = content_type is not None and content_type.startswith(("audio/", "video/"))
    response["Content-Security-Policy"] = PLAYER_CONTENT_SECURITY_POLICY if player else MEDIA_CONTENT_SECURITY_POLICY
    if content_type is None:
        response["Content-Disposition"] = content_disposition_header(True, f"{Path(name).stem}.bin")
    else:
        response["Content-Disposition"] = "inline"


@require_safe
def media_serve(request, path: str):
    origin = media_origin()
    if origin and request.get_host().lower() != urlsplit(origin).netloc.lower():
        raise Http404("media are served from their own origin")  # never from the site's
    try:
        full_path = Path(safe_join(settings.MEDIA_ROOT, path))
    except Exception:  # SuspiciousFileOperation: a path escaping MEDIA_ROOT
        raise Http404("no such file") from None
    if not full_path.is_file():
        raise Http404("no such file")
    size = full_path.stat().st_size
    with full_path.open("rb") as handle:
        detected = media_type(handle.read(MEDIA_HEAD_BYTES))
    content_type = detected[0] if detected else None
    requested = _byte_range(request.headers.get("Range", ""), size)
    if requested is None:
        response = FileResponse(full_path.open("rb"), content_type=content_type or DOWNLOAD_CONTENT_TYPE)
    elif requested == "unsatisfiable":
        response = HttpResponse(status=416, content_type="text/plain; charset=utf-8")
        response["Content-Range"] = f"bytes */{size}"
        media_headers(response, content_type=content_type, name=full_path.name)
        return response
    else:
        start, end = requested
        handle = full_path.open("rb")
        handle.seek(start)
        response = FileResponse(_read_span(handle, end - start + 1), status=206,
                                content_type=content_type or DOWNLOAD_CONTENT_TYPE)
        response["Content-Length"] = str(end - start + 1)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Accept-Ranges"] = "bytes"
    media_headers(response, content_type=content_type, name=full_path.name)
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
