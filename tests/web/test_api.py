"""POST/GET /api/search: every query shape, and a clear 400 for every bad input."""
import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from multimodal.models import Corpus

from ..conftest import image_bytes, ingest_files

pytestmark = pytest.mark.django_db
URL = "/api/search"


@pytest.fixture
def corpus(deterministic_encoder):
    corpus = Corpus.objects.create(name="shop")
    files = {
        "red.png": image_bytes((255, 0, 0)),
        "blue.png": image_bytes((0, 0, 255)),
        "bike.txt": b"red bicycle\nA red bicycle.",
        "chair.txt": b"green chair",
    }
    report = ingest_files(corpus, files)
    assert report.landed == 4
    return corpus


def _upload(data: bytes, name="query.png"):
    return SimpleUploadedFile(name, data, content_type="image/png")


def test_get_text_query_returns_ranked_results_with_every_field(client, corpus):
    response = client.get(URL, {"q": "bicycle", "top_k": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["query"]["text"] == "bicycle" and body["query"]["top_k"] == 2
    first = body["results"][0]
    assert first["title"] == "red bicycle" and first["kind"] == "text"
    assert set(first) >= {"id", "kind", "title", "score", "thumbnail_url", "snippet", "detail_url"}
    assert first["snippet"] == "red bicycle A red bicycle."
    assert first["detail_url"] == f"/items/{first['id']}"
    assert len(body["results"]) == 2
    assert set(body["timings_ms"]) >= {"encode", "search", "keyword", "fusion", "hydrate", "total"}
    assert body["timings_ms"]["total"] >= body["timings_ms"]["search"]


def test_json_text_query(client, corpus):
    response = client.post(URL, json.dumps({"text": "green chair", "top_k": 1}), content_type="application/json")
    assert response.status_code == 200
    assert [r["title"] for r in response.json()["results"]] == ["green chair"]


def test_multipart_image_only_query_returns_the_matching_image_with_a_thumbnail(client, corpus):
    response = client.post(URL, {"image": _upload(image_bytes((0, 0, 250))), "top_k": 1})
    assert response.status_code == 200
    body = response.json()
    assert body["query"]["image"]["name"] == "query.png" and body["query"]["text"] is None
    assert body["results"][0]["title"] == "blue"
    assert body["results"][0]["thumbnail_url"].startswith("/media/thumbnails/")
    assert client.get(body["results"][0]["thumbnail_url"]).status_code == 200


def test_text_plus_image_query_fuses_both(client, corpus):
    response = client.post(URL, {"text": "bicycle", "image": _upload(image_bytes((255, 0, 0))), "top_k": 2})
    titles = [r["title"] for r in response.json()["results"]]
    assert titles == ["red bicycle", "red"]


def test_json_body_with_base64_image(client, corpus):
    payload = {"image": "data:image/png;base64," + base64.b64encode(image_bytes((255, 0, 0))).decode(), "top_k": 1}
    response = client.post(URL, json.dumps(payload), content_type="application/json")
    assert response.status_code == 200
    assert response.json()["results"][0]["title"] == "red"


def test_corpus_filter(client, corpus, deterministic_encoder):
    other = Corpus.objects.create(name="other")
    ingest_files(other, {"crimson.png": image_bytes((250, 0, 0))})
    body = client.get(URL, {"q": "red", "corpus": "other"}).json()
    assert [r["title"] for r in body["results"]] == ["crimson"]
    assert body["query"]["corpus"] == "other"


@pytest.mark.parametrize(
    "request_kwargs, message",
    [
        ({"data": {}}, "nothing to search for"),
        ({"data": {"q": "   "}}, "nothing to search for"),
        ({"data": {"q": "red", "top_k": 0}}, "top_k: Ensure this value is greater than or equal to 1."),
        ({"data": {"q": "red", "top_k": 1000}}, "top_k: Ensure this value is less than or equal to 100."),
        ({"data": {"q": "red", "top_k": "ten"}}, "top_k: Input should be a valid integer"),
        ({"data": {"q": "red", "corpus": "nope"}}, "corpus: no corpus named 'nope'"),
        ({"data": {"q": "x" * 1001}}, "q: Ensure this value has at most 1000 characters"),
    ],
)
def test_bad_query_fields_get_400_naming_the_problem(client, corpus, request_kwargs, message):
    response = client.get(URL, **request_kwargs)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_unreadable_image_gets_400(client, corpus):
    response = client.post(URL, {"image": _upload(b"this is not an image", "photo.jpg")})
    assert response.status_code == 400
    assert response.json()["error"] == "image: photo.jpg: not an image, or an image format that cannot be read"


def test_truncated_image_gets_400(client, corpus):
    response = client.post(URL, {"image": _upload(image_bytes(fmt="JPEG")[:80], "cut.jpg")})
    assert response.status_code == 400
    assert "cut.jpg: the image is corrupt or truncated" in response.json()["error"]


def test_oversized_query_image_gets_400(client, corpus, settings):
    settings.MULTIMODAL_MAX_QUERY_IMAGE_MB = 0
    response = client.post(URL, {"image": _upload(image_bytes())})
    assert response.status_code == 400
    assert "the limit is 0 MB" in response.json()["error"]


@pytest.mark.parametrize(
    "body, message",
    [("{not json", "the body is not valid JSON"), ("[1, 2]", "the JSON body must be an object"),
     ('{"image": "***"}', "image: not valid base64")],
)
def test_malformed_json_gets_400(client, corpus, body, message):
    response = client.post(URL, body, content_type="application/json")
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_other_methods_are_refused(client, corpus):
    assert client.delete(URL).status_code == 405
