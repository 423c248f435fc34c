"""A strict Content-Security-Policy on every page: scripts come only from this site's static files.

No page of ours has an inline script, style or event handler, so an injected one would not run
even if escaping ever failed. The admin and the API's interactive docs get the same script rule
(neither needs an inline script: Django's admin and django-ninja's Swagger page load theirs from
static files), but may use inline styles (``style=`` attributes in the admin's and our admin's
markup). Media responses set their own, stricter, sandboxing policy (multimodal/web/media.py), which
this leaves in place. Images and recordings on a media origin of their own (an absolute MEDIA_URL)
are allowed where pages show them.
"""
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.template import loader

from multimodal.readers.imaging import DecodeBusy
from multimodal.web.media import media_origin

THIRD_PARTY_PATH_PREFIXES = ("/admin/", "/api/docs")


def content_security_policy(*, inline_styles: bool = False) -> str:
    """The policy for a page; ``inline_styles`` for the third-party pages that need them."""
    media = media_origin()
    media_source = f" {media}" if media else ""
    return "; ".join((
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'" if inline_styles else "style-src 'self'",
        f"img-src 'self' data: blob:{media_source}",
        f"media-src 'self' blob:{media_source}",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        inline_styles = request.path.startswith(THIRD_PARTY_PATH_PREFIXES)
        response.headers.setdefault("Content-Security-Policy", content_security_policy(inline_styles=inline_styles))
        return response


# --- Errors a request causes before or outside a view's own error handling ---
# The API (and the page's JSON endpoints) answer {"error": ...}; pages show the message on an error page.
JSON_PATH_PREFIXES = ("/api/",)
JSON_VIEW_NAMES = {"multimodal:query-uploads"}
RETRY_AFTER_BUSY_S = 5
ERROR_HEADINGS = {400: "The request cannot be used", 413: "The request is too large", 503: "Busy: try again shortly"}


def request_error_response(request, message: str, status: int) -> HttpResponse:
    """``message`` with ``status``: JSON for the API, the error page for people."""
    match = getattr(request, "resolver_match", None)
    if request.path_info.startswith(JSON_PATH_PREFIXES) or (match is not None and match.view_name in JSON_VIEW_NAMES):
        return JsonResponse({"error": message}, status=status)
    # Rendered without the request: the failure may come before the middleware that sets request.user.
    page = loader.render_to_string("request_error.html", {"message": message, "heading": ERROR_HEADINGS[status]})
    return HttpResponse(page, status=status)


def bad_request(request, exception=None):
    """handler400: what Django raises on reading a request body (too large, too many fields or files,
    unreadable multipart) says so, wherever it was read: in a view or in a middleware (CSRF reads POST).

    Django checks a body's declared length before reading it, so a body over the limit is never read.
    """
    if isinstance(exception, RequestDataTooBig):
        limit_mb = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1024 / 1024
        return request_error_response(
            request, f"the request body is over {limit_mb:g} MB (files sent as multipart uploads do not count): "
                     f"send images and recordings as files, not in JSON or form fields", 413)
    if isinstance(exception, TooManyFieldsSent):
        message = f"the request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields"
    elif isinstance(exception, TooManyFilesSent):
        message = f"the request has more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES:,} files"
    elif isinstance(exception, MultiPartParserError):
        message = f"the multipart body cannot be read ({exception})"
    else:  # other SuspiciousOperations and BadRequests: their text may echo what was sent (hosts, names)
        message = "the request is malformed"
    return request_error_response(request, message, 400)


class ApiErrorsJsonMiddleware:
    """Every error under /api/ is ``{"error": ...}``, also those answered outside the API's own operations:
    a path no endpoint serves (Django's 404 page), a method an endpoint does not take (a plain-text 405,
    whose Allow header is kept) and a server error (the 500 page)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (response.status_code < 400 or not request.path_info.startswith(JSON_PATH_PREFIXES)
                or response.get("Content-Type", "").startswith("application/json")):
            return response
        if response.status_code == 404:
            message = f"no API endpoint at {request.path}: the endpoints are listed at /api/docs"
        elif response.status_code == 405:
            allowed = response.get("Allow", "another method")
            message = f"{request.method} is not allowed at {request.path}: use {allowed}"
        else:
            message = f"the request failed ({response.status_code} {response.reason_phrase})"
        json_response = JsonResponse({"error": message}, status=response.status_code)
        for header in ("Allow", "Retry-After"):
            if header in response:
                json_response[header] = response[header]
        return json_response


class RequestErrorMiddleware:
    """A query image that cannot get a decode slot in time (multimodal/readers/imaging.py) answers 503, not 500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DecodeBusy):
            return None
        response = request_error_response(request, str(exception), 503)
        response["Retry-After"] = str(RETRY_AFTER_BUSY_S)
        return response
