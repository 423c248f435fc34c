"""A strict Content-Security-Policy on every page: scripts come only from this site's static files.

No page of ours has an inline script, style or event handler, so an injected one would not run
even if escaping ever failed. The admin and the API's interactive docs get the same script rule
(neither needs an inline script: Django's admin and django-ninja's Swagger page load theirs from
static files), but may use inline styles (``style=`` attributes in the admin's and our admin's
markup). Media responses set their own, stricter, sandboxing policy (multimodal/media.py), which
this leaves in place. Images and recordings on a media origin of their own (an absolute MEDIA_URL)
are allowed where pages show them.
"""
from multimodal.media import media_origin

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
