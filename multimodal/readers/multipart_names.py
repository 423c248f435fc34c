"""Keeping uploaded files whose names are not UTF-8.

Django decodes each part header of a multipart body as UTF-8 and skips a header it cannot decode:
a file sent as ``filename="<Shift-JIS bytes>"`` (curl from a Japanese Windows share does that) loses
its Content-Disposition and is dropped without a word. ``MultipartNamesStream`` sits between the
request body and Django's parser and rewrites such a header line in UTF-8, decoding its bytes in the
encoding detected for them (`multimodal.readers.tabular.encoding_detect`), and marks the part's Content-Type
with ``NOTE_PARAMETER`` so the upload can say what was done (`upload_name_note`).
"""
from .tabular import encoding_detect

NOTE_PARAMETER = "x-name-encoding"
HEADERS_END = b"\r\n\r\n"
# A part's headers are a few hundred bytes; past this the part is passed on as it is.
MAX_HEADER_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024


class MultipartNamesStream:
    """A read-only stream over ``source`` (a multipart body with ``boundary``) with part headers in UTF-8."""

    def __init__(self, source, boundary: bytes):
        self._source = source
        self._delimiter = b"--" + boundary
        self._pending = b""  # read from the source, not yet given out
        self._ready = b""  # transformed, ready to give out
        self._in_headers = False  # the pending bytes start with a part's headers
        self._exhausted = False

    def read(self, size: int = -1) -> bytes:
        whole = size is None or size < 0
        while not self._exhausted and (whole or len(self._ready) < size):
            self._step()
        end = len(self._ready) if whole else size
        chunk, self._ready = self._ready[:end], self._ready[end:]
        return chunk

    def readline(self, size: int = -1) -> bytes:
        whole = size is None or size < 0
        while not self._exhausted and b"\n" not in self._ready and (whole or len(self._ready) < size):
            self._step()
        end = self._ready.find(b"\n") + 1 or len(self._ready)
        if not whole:
            end = min(end, size)
        line, self._ready = self._ready[:end], self._ready[end:]
        return line

    def _step(self) -> None:
        chunk = self._source.read(CHUNK_BYTES)
        if not chunk:
            self._exhausted = True
            self._ready += self._pending
            self._pending = b""
            return
        self._pending += chunk
        while self._advance():
            pass

    def _advance(self) -> bool:
        """Move what can be decided from pending to ready; False when more input is needed."""
        if self._in_headers:
            end = self._pending.find(HEADERS_END)
            if end < 0:
                if len(self._pending) > MAX_HEADER_BYTES:
                    self._in_headers = False  # not headers we can mend: pass them on untouched
                    return True
                return False
            self._ready += headers_mend(self._pending[:end]) + HEADERS_END
            self._pending = self._pending[end + len(HEADERS_END):]
            self._in_headers = False
            return True
        start = self._pending.find(self._delimiter)
        if start < 0:
            # Keep a tail that could be the start of a delimiter split across reads.
            keep = len(self._delimiter) - 1
            if len(self._pending) > keep:
                self._ready += self._pending[:-keep] if keep else self._pending
                self._pending = self._pending[-keep:] if keep else b""
            return False
        line_end = self._pending.find(b"\r\n", start)
        if line_end < 0:
            return False
        self._ready += self._pending[:line_end + 2]
        self._pending = self._pending[line_end + 2:]
        self._in_headers = True
        return True


def headers_mend(block: bytes) -> bytes:
    """A part's header lines with each line that is not UTF-8 decoded as detected and written in UTF-8."""
    lines = block.split(b"\r\n")
    encoding = ""
    for index, line in enumerate(lines):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            encoding = encoding_detect(line) or "latin-1"  # latin-1: every byte is some character
            lines[index] = line.decode(encoding, errors="replace").encode("utf-8")
    if not encoding:
        return block
    parameter = f"; {NOTE_PARAMETER}={encoding}".encode()
    for index, line in enumerate(lines):
        if line.lower().startswith(b"content-type:"):
            lines[index] = line + parameter
            break
    else:
        lines.append(b"Content-Type: application/octet-stream" + parameter)
    return b"\r\n".join(lines)


def upload_name_note(upload) -> str:
    """What was done to an uploaded file's name on the way in, or ''."""
    encoding = (getattr(upload, "content_type_extra", None) or {}).get(NOTE_PARAMETER)
    if not encoding:
        return ""
    encoding = encoding.decode("ascii", "replace") if isinstance(encoding, bytes) else str(encoding)
    return f"the name it was sent with is not UTF-8: read as {encoding}"


class MultipartNamesMiddleware:
    """Puts ``MultipartNamesStream`` under Django's parser for multipart POSTs (before anything reads them)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        from django.utils.http import parse_header_parameters

        content_type, parameters = parse_header_parameters(request.META.get("CONTENT_TYPE", ""))
        boundary = parameters.get("boundary", "")
        if request.method == "POST" and content_type == "multipart/form-data" and boundary:
            # The body is read through request._stream (by request.read() and so by the parser).
            request._stream = MultipartNamesStream(request._stream, boundary.encode("ascii", "replace"))
        return self.get_response(request)
