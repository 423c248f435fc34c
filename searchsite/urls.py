from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from multimodal.api import api
from multimodal.media import media_serve

urlpatterns = [
    path("admin/", admin.site.urls),
    # The API's own namespace ("api"): its docs page reverses the schema URL by that name.
    path("api/", api.urls),
    path("", include("multimodal.urls")),
]

if settings.MULTIMODAL_SERVE_MEDIA:
    # Embedded default: Django serves media itself. Behind nginx, set MULTIMODAL_SERVE_MEDIA=0.
    urlpatterns.append(re_path(rf"^{settings.MEDIA_URL.strip('/')}/(?P<path>.*)$", media_serve, name="media"))
