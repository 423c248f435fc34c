"""The part-type registry is the one list of part types, and every client's query is read by query_parse."""
import base64
import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from multimodal.models import Corpus
from multimodal.query.parts import PARTS, UPLOAD_TYPES
from multimodal.web.forms import SearchForm

from ..conftest import image_bytes, ingest_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(deterministic_encoder):
    corpus = Corpus.objects.create(name="shop")
    ingest_files(corpus, {"red.png": image_bytes((255, 0, 0)), "blue.png": image_bytes((0, 0, 255)),
                          "bike.txt": b"red bicycle\nA red bicycle."})
    return corpus


def test_the_api_schema_lists_exactly_the_registered_part_types(client):
    components = client.get("/api/schema").json()["components"]["schemas"]
    assert components["PartIn"]["properties"]["type"]["enum"] == list(PARTS)
    params = components["SearchParams"]["properties"]
    assert {name.removesuffix("_weight") for name in params if name.endswith("_weight") and name != "keyword_weight"} \
        == set(PARTS)
    multipart, body = components["SearchMultipart"]["properties"], components["SearchRequest"]["properties"]
    for name in UPLOAD_TYPES:
        assert multipart[name]["format"] == "binary" and name in body


def test_one_query_reads_the_same_through_the_form_the_api_and_the_command(client, corpus, tmp_path):
    picture = image_bytes((0, 0, 250))
    (tmp_path / "q.png").write_bytes(picture)
    item = corpus.items.get(title="red")
    fields = {"kind": "image,text", "corpus": "shop", "fusion": "rrf", "top_k": 3, "hybrid": "false"}

    form = SearchForm({"q": "red bicycle", "image_weight": 0.5, "item": item.pk, "item_weight": -0.3, **fields},
                      {"image": SimpleUploadedFile("q.png", picture)})
    assert form.is_valid(), form.error_message()
    page = form.query.summary()

    parts = [{"type": "text", "value": "red bicycle"},
             {"type": "image", "value": base64.b64encode(picture).decode(), "name": "q.png", "weight": 0.5},
             {"type": "item", "value": item.pk, "weight": -0.3}]
    api_json = client.post("/api/search", json.dumps({"parts": parts, **fields, "kind": ["image", "text"],
                                                      "hybrid": False}), content_type="application/json")
    assert api_json.status_code == 200, api_json.content
    api_multipart = client.post("/api/search", {"q": "red bicycle", "image": SimpleUploadedFile("q.png", picture),
                                                "image_weight": 0.5, "item": item.pk, "item_weight": -0.3, **fields})
    assert api_multipart.status_code == 200, api_multipart.content

    out = io.StringIO()
    call_command("search", "red bicycle", "--image", str(tmp_path / "q.png"), "--image-weight", "0.5",
                 "--item", str(item.pk), "--item-weight", "-0.3", "--kind", "image,text", "--corpus", "shop",
                 "--fusion", "rrf", "--top-k", "3", "--no-keyword", "--json", stdout=out, stderr=io.StringIO())
    command = json.loads(out.getvalue())["query"]

    assert api_json.json()["query"] == api_multipart.json()["query"] == command == page
    assert [part["type"] for part in page["parts"]] == ["text", "image", "item"]
    assert page["image"]["width"] == 48 and page["filters"]["kind"] == ["image", "text"] and page["hybrid"] is False


def test_an_upload_over_its_limit_is_refused_in_the_same_words_everywhere(client, settings, corpus):
    settings.MULTIMODAL_MAX_QUERY_IMAGE_MB = 1
    big = b"\x89PNG" + b"\0" * (1024 * 1024)
    api = client.post("/api/search", {"image": SimpleUploadedFile("big.png", big)})
    kept = client.post("/query-uploads", {"type": "image", "file": SimpleUploadedFile("big.png", big)})
    assert api.status_code == 400 and api.json()["error"] == "image: the image is 1.0 MB; the limit is 1 MB"
    assert kept.status_code == 413 and kept.json()["error"] == "big.png: the image is 1.0 MB; the limit is 1 MB"


def test_the_api_declares_every_result_field_a_search_can_return_and_no_other(client):
    """A field the selectors add but the schema lacks is silently dropped from /api/search (it was, for pages)."""
    from multimodal.query.types import RESULT_FIELDS

    result = client.get("/api/schema").json()["components"]["schemas"]["Result"]
    assert set(result["properties"]) == set(RESULT_FIELDS)
