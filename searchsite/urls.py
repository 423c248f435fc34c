import re
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ImproperlyConfigured
from django.urls import include, path, re_path

from multimodal.web.api import api
from multimodal.web.media import media_serve

# A body too large, too many fields, unreadable multipart: JSON on the API, a page elsewhere.
handler400 = "searchsite.middleware.bad_request"

urlpatterns = [
    path("admin/", admin.site.urls),
    # The API's own namespace ("api"): its docs page reverses the schema URL by that name.
    path("api/", api.urls),
    path("", include("multimodal.urls")),
]

if settings.MULTIMODAL_SERVE_MEDIA:
    # Embedded default: Django serves media itself, with the headers of multimodal/web/media.py; behind a
    # front server that serves them, MULTIMODAL_SERVE_MEDIA=0. An absolute MEDIA_URL (a media origin of
    # its own) is answered at its path, on its host only.
    _media_path = urlsplit(str(settings.MEDIA_URL)).path.strip("/")
    if not _media_path:
        raise ImproperlyConfigured(
            f"MULTIMODAL_MEDIA_URL={settings.MEDIA_URL!r}: Django serves media under a path of their own "
            "(e.g. https://media.example.net/media/), or set MULTIMODAL_SERVE_MEDIA=0 and serve them elsewhere"
        )
    urlpatterns.append(re_path(rf"^{re.escape(_media_path)}/(?P<path>.*)$", media_serve, name="media"))
