from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve

from multimodal.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    # The API's own namespace ("api"): its docs page reverses the schema URL by that name.
    path("api/", api.urls),
    path("", include("multimodal.urls")),
]

if settings.MULTIMODAL_SERVE_MEDIA:
    # Embedded default: Django serves media itself. Behind nginx, set MULTIMODAL_SERVE_MEDIA=0.
    urlpatterns.append(
        re_path(rf"^{settings.MEDIA_URL.strip('/')}/(?P<path>.*)$", serve, {"document_root": settings.MEDIA_ROOT})
    )
