"""Bad input answers a clear 4xx naming the problem: JSON ``{"error": ...}`` on the API, a message on the page.

Every input here once answered a 500 (OverflowError, RecursionError, ValueError, an unusable file
name), Django's bare "Bad Request (400)" page, or a silent 200 (NaN weights, NUL characters and lone
surrogates that PostgreSQL then refuses with a 500).
"""
import base64
import json
import socket

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from multimodal.models import Corpus, IngestJob, Item

from ..conftest import image_bytes, ingest_files, noise_png

pytestmark = pytest.mark.django_db
SEARCH = "/api/search"
DEEP = "[" * 100_000 + "]" * 100_000
MANY_FIELDS = {**{f"field{number}": "x" for number in range(5000)}, "q": "red"}


@pytest.fixture
def corpus(deterministic_encoder):
    corpus = Corpus.objects.create(name="shop")
    assert ingest_files(corpus, {"red.png": image_bytes((255, 0, 0)), "bike.txt": b"red bicycle"}).landed == 2
    return corpus


def _send(client, how: str, url: str, data):
    if how == "get":
        return client.get(url, data)
    if how == "form":
        return client.post(url, data)
    if how == "json":
        return client.post(url, json.dumps(data), content_type="application/json")
    return client.post(url, data, content_type="application/json")  # "body": sent as it is


API_CASES = [
    # (what, how, data, status, words of the error)
    ("100k-deep nested JSON body", "body", DEEP, 400, "the body is not valid JSON (nested too deeply)"),
    ("100k-deep parts in a form", "form", {"parts": DEEP}, 400, "parts: not valid JSON (nested too deeply)"),
    ("JSON body over 10 MB", "json", {"q": "red", "image": "A" * (11 * 1024 * 1024)}, 413, "body is over 10 MB"),
    ("50 MB base64 image", "json", {"image": base64.b64encode(b"\0" * (37 * 1024 * 1024)).decode()}, 413,
     "body is over 10 MB"),
    ("5,000 form fields", "form", MANY_FIELDS, 400, "the request has more than 1,000 fields"),
    ("5,000 query-string fields", "get", MANY_FIELDS, 400, "the request has more than 1,000 fields"),
    ("NaN weight in form parts", "form", {"parts": '[{"type": "text", "value": "red", "weight": NaN}]'}, 400,
     "parts: not valid JSON (NaN is not a JSON number)"),
    ("Infinity weight in a JSON body", "body", '{"parts": [{"type": "text", "value": "red", "weight": Infinity}]}',
     400, "Infinity is not a JSON number"),
    ("NaN min_score in a JSON body", "body", '{"q": "red", "min_score": NaN}', 400, "NaN is not a JSON number"),
    ("a 5,000-digit top_k", "body", '{"q": "red", "top_k": ' + "9" * 5000 + "}", 400,
     "a number has more than 100 digits"),
    ("a superscript digit as item id", "json", {"parts": [{"type": "item", "value": "²"}]}, 400,
     "part 0: an item part's value is an item id"),
    ("NUL in a spec value", "get", {"q": "red", "spec.colour": "re\x00d"}, 400,
     "the value of 'colour' holds a NUL character"),
    ("NUL in a JSON spec value", "json", {"q": "red", "specs": {"colour": "re\x00d"}}, 400,
     "a string holds a NUL character"),
    ("NUL in a JSON text part", "json", {"parts": [{"type": "text", "value": "red\x00"}]}, 400,
     "a string holds a NUL character"),
    ("lone surrogate in q", "body", '{"q": "red \\ud800"}', 400, "a string holds a lone surrogate"),
    ("lone surrogate in a form's parts", "form", {"parts": '[{"type": "text", "value": "\\udfff"}]'}, 400,
     "parts: not valid JSON (a string holds a lone surrogate"),
    ("created_from after created_to", "get", {"q": "red", "created_from": "2025-02-01", "created_to": "2025-01-01"},
     400, "created_from (2025-02-01) is after created_to (2025-01-01)"),
]


@pytest.mark.parametrize("what, how, data, status, words", API_CASES, ids=[case[0] for case in API_CASES])
def test_bad_api_input_answers_json_naming_the_problem(client, corpus, what, how, data, status, words):
    response = _send(client, how, SEARCH, data)
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    assert words in response.json()["error"]


PAGE_CASES = [  # the page says it in words for people (multimodal/query/plain_errors.py)
    ("100k-deep parts", {"parts": DEEP}, 400, "The search link is damaged"),
    ("5,000 fields", MANY_FIELDS, 400, "the request has more than 1,000 fields"),
    ("NUL in a spec value", {"q": "red", "spec.colour": "re\x00d"}, 400, "holds a NUL character"),
    ("created_from after created_to", {"q": "red", "created_from": "2025-02-01", "created_to": "2025-01-01"}, 400,
     "The “Added from” date (1 Feb 2025) is after the “to” date (1 Jan 2025), so nothing can match"),
]


@pytest.mark.parametrize("what, data, status, words", PAGE_CASES, ids=[case[0] for case in PAGE_CASES])
def test_bad_page_input_shows_the_problem_on_the_page(client, corpus, what, data, status, words):
    response = client.get("/", data)
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert words in response.content.decode()


def test_the_last_day_there_is_as_created_to_finds_everything(client, corpus):
    """9999-12-31 + 1 day overflowed: the last day has no day after it, so nothing is cut."""
    api = client.get(SEARCH, {"q": "red", "created_to": "9999-12-31"})
    assert api.status_code == 200 and len(api.json()["results"]) == 2
    posted = client.post(SEARCH, json.dumps({"q": "red", "created_to": "9999-12-31", "created_from": "0001-01-01"}),
                         content_type="application/json")
    assert posted.status_code == 200 and len(posted.json()["results"]) == 2
    page = client.get("/", {"q": "red", "created_to": "9999-12-31"})
    assert page.status_code == 200 and "red bicycle" in page.content.decode()


def test_too_many_fields_for_the_query_upload_endpoint_answers_json(client):
    response = client.post("/query-uploads", MANY_FIELDS)
    assert response.status_code == 400
    assert response.json() == {"error": "the request has more than 1,000 fields"}


def test_an_oversized_body_is_refused_from_its_length_without_being_read(live_server):
    """Only a few bytes of a declared 50 MB body are sent: the answer comes anyway (nothing waits for the rest)."""
    host, port = live_server.thread.host, live_server.thread.port
    with socket.create_connection((host, port), timeout=10) as connection:
        connection.sendall(f"POST {SEARCH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {50 * 1024 * 1024}\r\n\r\n{{\"image\": \"AAAA".encode())
        received = b""
        while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"application/json" in head
    assert "body is over 10 MB" in json.loads(body)["error"]


@pytest.mark.parametrize("url", ["/api/uploads", "/upload"])
def test_a_file_name_over_255_bytes_is_stored_shortened_and_lands(superuser_client, settings, deterministic_encoder,
                                                                 django_capture_on_commit_callbacks, url):
    """200 CJK characters (a name Windows allows) are 600 bytes in UTF-8, past Linux's 255-byte file names."""
    name = "写真" * 100 + ".png"
    with django_capture_on_commit_callbacks() as job_start:
        response = superuser_client.post(url, {"corpus": "shop", "files": [
            SimpleUploadedFile(name, noise_png(3), content_type="image/png")]})
    assert response.status_code in (202, 302), response.content[:300]
    stored = [path for path in settings.MULTIMODAL_UPLOAD_ROOT.rglob("*") if path.is_file()]
    assert len(stored) == 1 and len(stored[0].name.encode()) <= 255 and stored[0].name.endswith(".png")
    for callback in job_start:
        callback()
    job = IngestJob.objects.get()
    assert job.status == "done" and job.inputs[0]["name"] == name
    assert Item.objects.filter(corpus__name="shop").count() == 1
