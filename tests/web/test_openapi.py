"""The generated OpenAPI schema is valid, lists every endpoint, and every error it documents happens."""
import json
from contextlib import contextmanager

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from openapi_spec_validator import validate

from multimodal.models import ApiToken, Corpus, IngestJob, SavedSearch
from multimodal.services.saved_searches import saved_search_create

from ..conftest import ingest_files, permissions_grant
from ..live_services import free_port

pytestmark = pytest.mark.django_db
ENDPOINTS = {
    ("/api/search", "get"), ("/api/search", "post"), ("/api/uploads", "post"),
    ("/api/jobs/{pk}", "get"), ("/api/jobs/{pk}/retry", "post"), ("/api/jobs/{pk}/cancel", "post"),
    ("/api/duplicates", "get"), ("/api/duplicates/resolve", "post"),
    ("/api/saved-searches", "get"), ("/api/saved-searches", "post"), ("/api/saved-searches/{pk}", "get"),
    ("/api/saved-searches/{pk}", "delete"), ("/api/saved-searches/{pk}/new", "get"),
    ("/api/saved-searches/{pk}/seen", "post"),
}


@pytest.fixture
def schema(client):
    response = client.get("/api/schema")
    assert response.status_code == 200
    return response.json()


def test_the_schema_validates_and_lists_every_endpoint(schema):
    validate(schema)
    listed = {(path, method) for path, operations in schema["paths"].items() for method in operations}
    assert listed == ENDPOINTS
    search_body = schema["paths"]["/api/search"]["post"]["requestBody"]["content"]
    assert set(search_body) == {"application/json", "multipart/form-data"}
    parts = schema["components"]["schemas"]["SearchRequest"]["properties"]["parts"]
    assert "PartIn" in json.dumps(parts) and "PartIn" in schema["components"]["schemas"]


def test_the_docs_page_loads_its_assets_from_this_site(client):
    page = client.get("/api/docs").content.decode()
    assert "swagger-ui" in page and "/api/schema" in page
    assert "cdn." not in page and "unpkg" not in page


@pytest.fixture
def world(deterministic_encoder, settings):
    ingest_files(Corpus.objects.create(name="shop"), {"a.txt": b"red chair"})
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    User.objects.create_user("visitor", password="pw")
    job = IngestJob.objects.create(corpus=Corpus.objects.get(name="shop"), created_by=staff)
    return {"staff_key": ApiToken.issue(user=staff)[1], "job": job}


def _as(client, username):
    client.force_login(User.objects.get(username=username))  # login() has no request, which django-axes needs
    return client


def _trigger(client, settings, world, path: str, method: str, status: int):
    """Make the request that should answer ``status``; returns the response."""
    if path.startswith("/api/saved-searches"):
        return _saved_trigger(client, settings, world, path, method, status)
    job_path = path.replace("{pk}", str(world["job"].pk))
    missing_job_path = path.replace("{pk}", "999999")
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {world['staff_key']}"}
    if path == "/api/search":
        send = client.get if method == "get" else client.post
        if status == 400:
            return send(path, {"q": "red", "top_k": 0})
        if status == 429:
            settings.MULTIMODAL_SEARCH_RATE = "2/min"
            for _ in range(2):
                assert send(path, {"q": "red"}).status_code == 200
            return send(path, {"q": "red"})
        if status == 503:
            settings.MULTIMODAL_CLIP_MODEL = "no-such-model:nowhere"
            return send(path, {"q": "red"})
        if status == 413:  # answered from the declared length by handler400 (searchsite/middleware.py)
            return client.post(path, json.dumps({"q": "x" * (11 * 1024 * 1024)}), content_type="application/json")
    send = getattr(client, method)
    if status == 401:
        return send(job_path)
    if status == 403:
        return getattr(_as(client, "visitor"), method)(job_path)
    if status == 404:
        return send(missing_job_path, **bearer)
    if status == 429:
        settings.MULTIMODAL_TOKEN_FAILURE_LIMIT = 1
        assert send(job_path, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        return send(job_path, **bearer)
    if status == 400 and path == "/api/uploads":
        return client.post(path, {"corpus": "bad name!", "files": SimpleUploadedFile("a.txt", b"x")}, **bearer)
    if status == 503 and path == "/api/uploads":
        permissions_grant(User.objects.get(username="staff"), "add_item")
        with _broker_down(settings):
            return client.post(path, {"corpus": "shop", "files": SimpleUploadedFile("a.txt", b"x")}, **bearer)
    if status == 503 and path == "/api/jobs/{pk}/retry":
        with _job_status(world["job"], "failed"), _broker_down(settings):
            return send(job_path, **bearer)
    if status == 409 and path == "/api/jobs/{pk}/cancel":
        with _job_status(world["job"], "done"):
            return send(job_path, **bearer)
    if status == 400 and path == "/api/duplicates":
        return client.get(path, {"corpus": "no-such-corpus"}, **bearer)
    if status == 400 and path == "/api/duplicates/resolve":
        return client.post(path, {"level": "same", "group": 1, "keep": []}, content_type="application/json", **bearer)
    raise AssertionError(f"no way to trigger {status} for {method.upper()} {path}: add one")


def _saved_trigger(client, settings, world, path: str, method: str, status: int):
    """The same for the saved searches' operations; ``{pk}`` is a search the staff user shared."""
    staff = User.objects.get(username="staff")
    saved = (SavedSearch.objects.filter(name="Chairs").first()
             or saved_search_create(owner=staff, name="Chairs", params={"q": "chair"}, shared=True))
    url = path.replace("{pk}", str(saved.pk))
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {world['staff_key']}"}
    send = getattr(client, method)
    new_search = {"name": "Red", "params": {"q": "red"}, "shared": True}
    if status == 401:
        return send(url)
    if status == 404:
        return send(path.replace("{pk}", "999999"), **bearer)
    if status == 429:
        settings.MULTIMODAL_TOKEN_FAILURE_LIMIT = 1
        assert send(url, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
        return send(url, **bearer)
    if status == 403 and method == "post":  # sharing is for staff
        return _as(client, "visitor").post(url, json.dumps(new_search), content_type="application/json")
    if status == 403 and method == "delete":  # a shared search is its owner's to delete
        return _as(client, "visitor").delete(url)
    if status == 400 and method == "post":
        nothing = {"name": "Nothing", "params": {}}
        return client.post(url, json.dumps(nothing), content_type="application/json", **bearer)
    if status == 400 and path.endswith("/new"):  # its corpus was deleted since
        gone = saved_search_create(owner=staff, name="Gone", params={"q": "red", "corpus": Corpus.objects.create(
            name="gone").name})
        Corpus.objects.filter(name="gone").delete()
        return send(path.replace("{pk}", str(gone.pk)), **bearer)
    if status == 503 and path.endswith("/new"):
        settings.MULTIMODAL_CLIP_MODEL = "no-such-model:nowhere"
        return send(url, **bearer)
    raise AssertionError(f"no way to trigger {status} for {method.upper()} {path}: add one")


@contextmanager
def _broker_down(settings):
    """Tasks go to a broker on a port nothing listens on."""
    from searchsite.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False
    previous = app.conf.broker_url
    app.conf.broker_url, app._pool = f"redis://127.0.0.1:{free_port()}/0", None
    try:
        yield
    finally:
        app.conf.broker_url, app._pool = previous, None


@contextmanager
def _job_status(job: IngestJob, status: str):
    previous = IngestJob.objects.get(pk=job.pk).status
    IngestJob.objects.filter(pk=job.pk).update(status=status)
    try:
        yield
    finally:
        IngestJob.objects.filter(pk=job.pk).update(status=previous)


def test_every_documented_error_is_returned_with_its_message(client, settings, schema, world):
    documented = [
        (path, method, int(status))
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        for status in operation["responses"]
        if int(status) >= 400
    ]
    assert len(documented) >= 12
    for path, method, status in documented:
        client.logout()
        settings.MULTIMODAL_SEARCH_RATE = ""
        settings.MULTIMODAL_CLIP_MODEL = "test-deterministic"
        from django.core.cache import cache

        cache.clear()
        response = _trigger(client, settings, world, path, method, status)
        assert response.status_code == status, (path, method, status, response.content)
        assert response.json()["error"], (path, method, status)


def test_the_search_rate_limit_is_per_client(client, settings, world):
    settings.MULTIMODAL_SEARCH_RATE = "1/min"
    assert client.get("/api/search", {"q": "red"}).status_code == 200
    assert client.get("/api/search", {"q": "red"}).status_code == 429
    other = client.__class__(REMOTE_ADDR="10.0.0.9")
    assert other.get("/api/search", {"q": "red"}).status_code == 200


def test_search_can_require_login(client, settings, world):
    settings.MULTIMODAL_SEARCH_REQUIRES_LOGIN = True
    response = client.get("/api/search", {"q": "red"})
    assert response.status_code == 401 and "requires login" in response.json()["error"]
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {world['staff_key']}"}
    assert client.get("/api/search", {"q": "red"}, **bearer).status_code == 200
    assert _as(client, "visitor").get("/api/search", {"q": "red"}).status_code == 200
