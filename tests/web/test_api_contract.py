"""What the README promises programs: every /api/ error is JSON naming the problem, credentials are asked
for before anything else, nothing a client sends is silently ignored, and every kind can be searched."""
import base64
import json

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from multimodal.models import Corpus, Item

from ..browser.conftest import segment_add, tone_wav
from ..conftest import UPLOADER_PERMISSIONS, image_bytes, ingest_files, noise_png, permissions_grant
from ..document_making import pdf_bytes

pytestmark = pytest.mark.django_db
SEARCH = "/api/search"


@pytest.fixture
def corpus(deterministic_encoder):
    corpus = Corpus.objects.create(name="shop")
    assert ingest_files(corpus, {"red.png": image_bytes((255, 0, 0)), "bike.txt": b"red bicycle"}).landed == 2
    return corpus


def _upload():
    return {"corpus": "shop", "files": [SimpleUploadedFile("a.png", noise_png(1), content_type="image/png")]}


def test_staff_endpoints_ask_for_credentials_before_a_csrf_token(corpus, django_user_model):
    """A program (or curl) with neither a session nor a token gets 401 'log in or send a token', not the CSRF
    check it has no reason to know about; a logged-in browser session without the token is told about CSRF."""
    anonymous = Client(enforce_csrf_checks=True)
    for response in (anonymous.post("/api/uploads", _upload()), anonymous.post("/api/jobs/1/retry"),
                     anonymous.get("/api/jobs/1")):
        assert response.status_code == 401, response.content
        assert response.json()["error"].startswith("log in or send a token")
        assert "/admin/login/" in response.json()["error"]
    staff = permissions_grant(django_user_model.objects.create_user("staff", password="pw-staff-123", is_staff=True),
                              *UPLOADER_PERMISSIONS)
    session = Client(enforce_csrf_checks=True)
    session.force_login(staff)
    response = session.post("/api/uploads", _upload())
    assert response.status_code == 403 and "CSRF" in response.json()["error"]


def test_unknown_paths_methods_and_server_errors_answer_json(client, corpus, monkeypatch):
    missing = client.get("/api/nothing")
    assert missing.status_code == 404 and missing["Content-Type"] == "application/json"
    assert missing.json() == {"error": "no API endpoint at /api/nothing: the endpoints are listed at /api/docs"}
    refused = client.delete(SEARCH)
    assert refused.status_code == 405 and refused["Content-Type"] == "application/json"
    assert set(refused["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert refused.json()["error"].startswith("DELETE is not allowed at /api/search: use ")
    assert client.put("/api/jobs/1").json()["error"].startswith("PUT is not allowed at /api/jobs/1")

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("multimodal.web.api.search_response", broken)
    failed = Client(raise_request_exception=False).get(SEARCH, {"q": "red"})
    assert failed.status_code == 500 and failed.json() == {"error": "the request failed (500 Internal Server Error)"}


@pytest.mark.parametrize("how, data, unknown", [
    ("get", {"q": "red", "topk": "3", "kinds": "image"}, "unknown parameters kinds, topk; the known ones are q, text,"),
    ("json", {"query": "red"}, "unknown parameter query; the known ones are q, text,"),
    ("form", {"q": "red", "topk": "3"}, "unknown parameter topk; the known ones are q, text,"),
    ("json", {"parts": [{"type": "text", "valu": "red"}]},
     "part 0: unknown key valu; the known ones are type, value, file, name, weight"),
    ("form", {"parts": json.dumps([{"type": "text", "value": "red", "wieght": 2}])},
     "part 0: unknown key wieght; the known ones are type, value, file, name, weight, ref"),
])
def test_unknown_parameters_are_refused_naming_the_known_ones(client, corpus, how, data, unknown):
    if how == "get":
        response = client.get(SEARCH, data)
    elif how == "json":
        response = client.post(SEARCH, json.dumps(data), content_type="application/json")
    else:
        response = client.post(SEARCH, data)
    assert response.status_code == 400, response.content
    assert unknown in response.json()["error"]
    assert "top_k" in response.json()["error"] or "weight" in response.json()["error"]


def test_a_file_field_no_part_names_is_refused_and_named_ones_are_read(client, corpus):
    photo = image_bytes((250, 0, 0))
    stray = client.post(SEARCH, {"q": "red", "photo": SimpleUploadedFile("p.png", photo, content_type="image/png")})
    assert stray.status_code == 400 and "unknown parameter photo" in stray.json()["error"]
    named = client.post(SEARCH, {"parts": json.dumps([{"type": "image", "file": "photo"}]),
                                 "photo": SimpleUploadedFile("p.png", photo, content_type="image/png")})
    assert named.status_code == 200 and named.json()["results"][0]["title"] == "red"
    spec = client.get(SEARCH, {"q": "red", "spec.colour": "red", "utm_source": "x"})
    assert spec.status_code == 400 and "unknown parameter utm_source" in spec.json()["error"]


def test_recordings_and_documents_are_searched_through_their_parts(client, corpus):
    """kind=audio once matched nothing (a recording owns no vector): it now means its speech segments, and
    kind=document its pages and passages."""
    recording = Item.objects.create(corpus=corpus, kind=Item.Kind.AUDIO, title="Design podcast", content_hash="rec")
    recording.file.save("podcast.wav", ContentFile(tone_wav(3.0)))
    segment_add(recording, start_s=0.0, end_s=3.0, text="a red bicycle in the rain")
    assert ingest_files(corpus, {"manual.pdf": pdf_bytes(["The red bicycle manual: brakes and gears."])}).landed == 1

    audio = client.get(SEARCH, {"q": "red bicycle", "kind": "audio"}).json()
    assert [result["kind"] for result in audio["results"]] == ["segment"]
    assert audio["results"][0]["parent"]["id"] == recording.pk
    assert audio["query"]["filters"]["kind"] == ["segment"]
    document = client.get(SEARCH, {"q": "red bicycle", "kind": "document", "group": "false"}).json()
    assert {result["kind"] for result in document["results"]} == {"page", "passage"}
    assert document["query"]["filters"]["kind"] == ["page", "passage"]
    video = client.get(SEARCH, {"q": "red bicycle", "kind": "video"}).json()
    assert video["query"]["filters"]["kind"] == ["scene", "segment"]


def test_a_picture_sent_as_voice_is_called_a_picture(client, corpus):
    jpeg = image_bytes((10, 200, 10), fmt="JPEG")
    form = client.post(SEARCH, {"voice": SimpleUploadedFile("question.webm", jpeg, content_type="audio/webm")})
    assert form.status_code == 400
    assert form.json()["error"] == "voice: question.webm: this is an image (JPG), not a recording: send it as image"
    body = client.post(SEARCH, json.dumps({"voice": base64.b64encode(jpeg).decode()}), content_type="application/json")
    assert body.status_code == 400 and "this is an image (JPG), not a recording" in body.json()["error"]
