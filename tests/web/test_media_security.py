"""Uploaded files never run as this site's script or page (issue 17, point 1: stored XSS to the superuser).

The attack, as it was done: staff upload a GIF that is also JavaScript as ``poly.js``, then a GIF that is
also HTML as ``catalog.html`` whose ``<script src>`` loads the first; a superuser opening the second ran the
script on the site's origin. Now originals are named by their bytes and every media response is inert.
tests/browser/test_untrusted_media.py opens the same files in Chromium.
"""
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from multimodal.models import Item

from ..conftest import image_bytes, page_upload
from ..media_polyglots import gif_html_polyglot, gif_js_polyglot

pytestmark = pytest.mark.django_db

SCRIPT = "window.__xss=1;fetch('/admin/auth/user/')"
MP3_HEAD = b"ID3\x04\x00\x00\x00\x00\x00\x00"


def _upload(client, captured, name: str, data: bytes) -> Item:
    job = page_upload(client, captured, {name: data}, corpus="catalogue")
    job.refresh_from_db()
    assert job.status == "done", job.units.values_list("name", "reason")
    return Item.objects.get(source_name=name)


def _assert_inert(response, *, content_type: str, attachment: bool) -> None:
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"
    policy = [part.strip() for part in response["Content-Security-Policy"].split(";")]
    # A recording keeps its origin so the browser's own player may load it; no script runs either way.
    sandbox = "sandbox allow-same-origin" if content_type.startswith(("audio/", "video/")) else "sandbox"
    assert policy[0] == sandbox and "default-src 'none'" in policy
    assert not any(part.startswith("script-src") or "allow-scripts" in part for part in policy)
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment") if attachment else disposition == "inline"


def test_polyglots_uploaded_as_js_and_html_are_kept_as_gifs_and_served_as_inert_images(
        superuser_client, django_capture_on_commit_callbacks, settings):
    poly = gif_js_polyglot(SCRIPT)
    script_item = _upload(superuser_client, django_capture_on_commit_callbacks, "poly.js", poly)
    page = gif_html_polyglot(f'<script src="{script_item.file.url}"></script>')
    page_item = _upload(superuser_client, django_capture_on_commit_callbacks, "catalog.html", page)

    for item, data in ((script_item, poly), (page_item, page)):
        assert Path(item.file.name).suffix == ".gif", item.file.name
        response = superuser_client.get(item.file.url)
        assert response.status_code == 200
        _assert_inert(response, content_type="image/gif", attachment=False)
        assert b"".join(response.streaming_content) == data
    kept = [path.name for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file()]
    assert kept and not [name for name in kept if Path(name).suffix in {".js", ".html", ".htm", ".svg"}], kept


@pytest.mark.parametrize(("name", "data", "content_type", "attachment"), [
    # Kept before names came from the bytes: still served, by what they are.
    ("items/1/ab/ab01.js", gif_js_polyglot(SCRIPT), "image/gif", False),
    ("items/1/cd/cd02.html", gif_html_polyglot('<script src="/media/items/1/ab/ab01.js"></script>'), "image/gif", False),
    ("items/1/ef/page.html", b"<!doctype html><script>window.__xss=1</script>", "application/octet-stream", True),
    ("items/1/ef/logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>window.__xss=1</script></svg>',
     "application/octet-stream", True),
    ("items/1/ef/photo.png", image_bytes(), "image/png", False),
    ("items/1/ef/talk.bin", MP3_HEAD + b"\x00" * 100, "audio/mpeg", False),
    ("thumbnails/1/ef/photo.jpg", image_bytes(fmt="JPEG"), "image/jpeg", False),
])
def test_a_media_file_is_served_by_its_bytes_never_by_its_name(client, settings, name, data, content_type, attachment):
    path = Path(settings.MEDIA_ROOT) / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    response = client.get(f"/media/{name}")
    assert response.status_code == 200
    _assert_inert(response, content_type=content_type, attachment=attachment)
    if attachment:  # a download named so that opening it locally does not make it a page either
        assert response["Content-Disposition"] == f'attachment; filename="{Path(name).stem}.bin"'


def test_ranges_heads_and_refusals_carry_the_same_headers(client, settings):
    path = Path(settings.MEDIA_ROOT) / "items" / "page.html"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"<!doctype html><script>window.__xss=1</script>")
    for response in (client.get("/media/items/page.html", HTTP_RANGE="bytes=0-9"),
                     client.head("/media/items/page.html"),
                     client.get("/media/items/page.html", HTTP_RANGE="bytes=999-")):
        expected = "text/plain; charset=utf-8" if response.status_code == 416 else "application/octet-stream"
        _assert_inert(response, content_type=expected, attachment=True)


def test_media_on_an_origin_of_their_own_are_not_served_on_the_site(client, settings):
    """MULTIMODAL_MEDIA_URL=https://media.example.net/media/: the links point there and only that host answers."""
    settings.MEDIA_URL = "https://media.example.net/media/"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver", "media.example.net"]
    path = Path(settings.MEDIA_ROOT) / "items" / "photo.gif"
    path.parent.mkdir(parents=True)
    path.write_bytes(gif_js_polyglot(SCRIPT))

    assert default_storage.url("items/photo.gif") == "https://media.example.net/media/items/photo.gif"
    assert client.get("/media/items/photo.gif").status_code == 404  # not on the site's own origin
    response = client.get("/media/items/photo.gif", HTTP_HOST="media.example.net", secure=True)
    assert response.status_code == 200
    _assert_inert(response, content_type="image/gif", attachment=False)
    # The site's pages may show them: images and recordings from that origin, scripts still from 'self' only.
    policy = client.get("/")["Content-Security-Policy"]
    assert "img-src 'self' data: blob: https://media.example.net" in policy
    assert "media-src 'self' blob: https://media.example.net" in policy
    assert "script-src 'self';" in policy
