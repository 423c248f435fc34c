"""The stored-XSS attack of issue 17 (point 1) replayed in Chromium, and the admin and API docs under their CSP.

A superuser uploads, through the upload page, a GIF that is also JavaScript (``poly.js``) and a GIF that is
also HTML (``catalog.html``) whose ``<script src>`` loads the first, then opens the second's media URL:
the script must not run (it would set ``window.__xss`` and fetch the admin's user list).
"""
from pathlib import Path

import pytest

from multimodal.models import IngestJob, Item

from ..media_polyglots import gif_html_polyglot, gif_js_polyglot
from .conftest import page_open, picture, screenshot, tone_wav

pytestmark = pytest.mark.django_db(transaction=True)
SCRIPT = "window.__xss=1;fetch('/admin/auth/user/').then(r=>{window.__xss=r.status})"


@pytest.fixture
def superuser_page(browser, live_server, django_user_model, client, settings):
    user = django_user_model.objects.create_superuser("root", password="pw-root-123")
    client.force_login(user)
    context, page = page_open(browser, live_server)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                          "url": live_server.url}])
    admin_fetches = []
    page.on("request", lambda request: admin_fetches.append(request.url) if "/admin/auth/user" in request.url else None)
    page.admin_fetches = admin_fetches
    yield page
    problems = page.problems.errors
    context.close()
    assert not problems, problems


def _upload_in_the_page(page, name: str, data: bytes) -> Item:
    page.goto("/upload")
    page.fill("#id_corpus", "catalogue")
    page.set_input_files("#id_files", files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}])
    page.click(".upload-form button[type=submit]")
    page.wait_for_url("**/jobs/*")
    job = IngestJob.objects.get(pk=int(page.url.rstrip("/").split("/")[-1]))
    assert job.status == "done" and job.done == 1, list(job.units.values_list("name", "reason"))
    return Item.objects.get(source_name=name)


def _assert_no_script_ran(page, url: str) -> None:
    response = page.goto(url)
    assert response.status == 200
    page.wait_for_timeout(500)  # time for a script and its fetch, had one started
    assert page.evaluate("() => window.__xss") is None
    assert page.admin_fetches == []
    assert "javascript" not in response.headers["content-type"] and "html" not in response.headers["content-type"]


def test_a_polyglot_uploaded_as_html_never_runs_script_as_the_superuser(superuser_page, settings, deterministic_encoder):
    page = superuser_page
    script = _upload_in_the_page(page, "poly.js", gif_js_polyglot(SCRIPT))
    catalogue = _upload_in_the_page(
        page, "catalog.html", gif_html_polyglot(f'<p id="catalogue">Catalogue</p><script src="{script.file.url}"></script>'))
    _assert_no_script_ran(page, catalogue.file.url)
    assert Path(script.file.name).suffix == Path(catalogue.file.name).suffix == ".gif"
    # The GIF it is, shown as an image.
    assert page.evaluate("() => document.images.length === 1 && document.images[0].naturalWidth") == 8
    _assert_no_script_ran(page, script.file.url)

    # The same files as they were kept before names came from their bytes.
    legacy = Path(settings.MEDIA_ROOT) / "items" / "legacy"
    legacy.mkdir(parents=True)
    (legacy / "poly.js").write_bytes(gif_js_polyglot(SCRIPT))
    (legacy / "catalog.html").write_bytes(gif_html_polyglot('<script src="/media/items/legacy/poly.js"></script>'))
    (legacy / "page.html").write_bytes(b"<!doctype html><script src='/media/items/legacy/poly.js'></script>")
    _assert_no_script_ran(page, "/media/items/legacy/catalog.html")
    # A recording opened on its own still plays in the browser's player, under the same policy.
    (legacy / "talk.wav").write_bytes(tone_wav(2.0))
    _assert_no_script_ran(page, "/media/items/legacy/talk.wav")
    page.wait_for_function("() => { const m = document.querySelector('video, audio'); return m && m.readyState >= 1; }")
    assert page.evaluate("() => document.querySelector('video, audio').error") is None

    page.goto("/")  # from a page of the site (a sandboxed media document may not start downloads)
    with page.expect_download() as download:  # not an image: a download, never a page of this site
        page.evaluate("() => { location.href = '/media/items/legacy/page.html'; }")
    assert download.value.suggested_filename == "page.bin"
    assert page.evaluate("() => window.__xss") is None and page.admin_fetches == []


def test_the_admin_and_the_api_docs_work_under_their_content_security_policy(superuser_page, deterministic_encoder):
    """Login, index, the item list with thumbnails, an item's form and /api/docs: rendered, no CSP console errors."""
    page = superuser_page
    _upload_in_the_page(page, "red bicycle.png", picture((200, 30, 40), (255, 230, 230), "wheels"))
    item = Item.objects.get(source_name="red bicycle.png")
    for path, ready in (("/admin/", "#content-main"), ("/admin/multimodal/item/", "#result_list img"),
                        (f"/admin/multimodal/item/{item.pk}/change/", "#item_form"),
                        ("/api/docs", ".swagger-ui .info .title")):
        response = page.goto(path)
        assert response.status == 200, path
        policy = response.headers.get("content-security-policy", "")
        assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
        page.wait_for_selector(ready)
    assert page.locator(".swagger-ui .opblock").count() > 3  # the operations, from /api/schema
    screenshot(page, "30-api-docs-under-csp")
    page.context.clear_cookies()
    response = page.goto("/admin/login/")
    assert "script-src 'self'" in response.headers.get("content-security-policy", "")
    page.fill("#id_username", "root")
    page.fill("#id_password", "pw-root-123")
    page.click("input[type=submit]")
    page.wait_for_selector("#content-main")
