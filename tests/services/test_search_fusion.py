"""Fused queries through the API and the real store: parts, modes, keyword channel, filters, pages."""
import base64
import datetime as dt
import json
import math

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from multimodal.models import Corpus, Item
from multimodal.services.jobs import job_create_from_paths, job_run

from ..conftest import image_bytes, ingest_files

# Lite and a real server; IVF_FLAT's ranking is tested in tests/store/test_store_ranking.py.
pytestmark = [pytest.mark.django_db, pytest.mark.engines("lite", "server-hnsw")]
URL = "/api/search"
MODES = ("vector", "rrf", "weighted")


@pytest.fixture
def shop(deterministic_encoder):
    corpus = Corpus.objects.create(name="shop")
    # Order matters: "green chair" is older, so it wins a tie with "red chair" (ties go to lower ids).
    report = ingest_files(corpus, {
        "green chair.txt": b"green chair",
        "red chair.txt": b"red chair",
        "red.png": image_bytes((255, 0, 0)),
        "blue.png": image_bytes((0, 0, 255)),
        "bike.txt": b"blue bicycle",
        # Unknown words all land on one axis of the deterministic encoder, so these three are the
        # vector channel's best answer to any unknown word, and "ZX81" alone is the keyword's.
        "lamp.txt": b"lamp lamp lamp",
        "desk.txt": b"desk desk",
        "code.txt": b"red chair model ZX81",
    })
    assert report.landed == 8
    return corpus


def _post(client, body: dict):
    return client.post(URL, json.dumps(body), content_type="application/json")


def _titles(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [result["title"] for result in response.json()["results"]]


@pytest.mark.parametrize("mode", MODES)
def test_text_plus_image_ranks_the_item_matching_both_first(client, shop, mode):
    image = base64.b64encode(image_bytes((255, 0, 0))).decode()
    parts = [{"type": "text", "value": "chair"}, {"type": "image", "value": image, "name": "red.png"}]
    titles = _titles(_post(client, {"parts": parts, "fusion": mode, "hybrid": False, "top_k": 3}))
    assert titles[0] == "red chair"
    assert set(titles[1:]) <= {"red", "green chair", "red chair model ZX81"}


@pytest.mark.parametrize("mode", MODES)
def test_a_negative_part_demotes_and_a_zero_weight_part_changes_nothing(client, shop, mode):
    chair = {"type": "text", "value": "chair"}
    alone = _titles(_post(client, {"parts": [chair], "fusion": mode, "hybrid": False, "kind": "text", "top_k": 2}))
    assert alone == ["green chair", "red chair"]  # equal scores: the older item first
    demoted = _post(client, {"parts": [chair, {"type": "text", "value": "green", "weight": -0.5}],
                             "fusion": mode, "hybrid": False, "kind": "text", "top_k": 8})
    titles = _titles(demoted)
    assert titles.index("red chair") < titles.index("green chair")
    zero = _post(client, {"parts": [chair, {"type": "text", "value": "green", "weight": 0}],
                          "fusion": mode, "hybrid": False, "kind": "text", "top_k": 2})
    assert _titles(zero) == alone


def test_vector_mode_scores_are_the_cosine_of_the_weighted_sum(client, shop):
    # q = (e_chair + 0.5·e_red)/‖…‖ ; "red chair" = (e_red + e_chair)/√2 -> cos = 1.5/(√1.25·√2)
    body = _post(client, {"parts": [{"type": "text", "value": "chair"}, {"type": "text", "value": "red", "weight": 0.5}],
                          "hybrid": False, "top_k": 1}).json()
    first = body["results"][0]
    assert first["title"] == "red chair"
    assert first["score"] == pytest.approx(1.5 / (math.sqrt(1.25) * math.sqrt(2)), abs=1e-5)
    shares = first["explanation"]["contributions"]
    assert [share["label"] for share in shares] == ['text "chair"', 'text "red"']
    assert sum(share["contribution"] for share in shares) == pytest.approx(first["score"], abs=1e-5)
    assert shares[0]["contribution"] == pytest.approx(2 * shares[1]["contribution"], abs=1e-5)


def test_the_keyword_channel_finds_a_rare_code_the_vector_channel_misses(client, shop):
    vector_only = _titles(client.get(URL, {"q": "ZX81", "top_k": 2, "hybrid": "false"}))
    assert "red chair model ZX81" not in vector_only
    for mode in MODES:
        hybrid = client.get(URL, {"q": "ZX81", "top_k": 2, "fusion": mode}).json()
        first = hybrid["results"][0]
        assert first["title"] == "red chair model ZX81", mode
        keyword = [share for share in first["explanation"]["contributions"] if share["channel"] == "keyword"]
        assert keyword[0]["rank"] == 1 and keyword[0]["contribution"] > 0
        assert hybrid["query"]["hybrid"] is True


def test_an_item_only_the_keyword_channel_reached_gets_its_real_similarity(client, shop, settings):
    """In vector fusion a keyword hit beyond the vector list's depth is scored by the store against the
    query, so its score is the one it has when the vector list reaches it too."""
    def code_item(depth):
        settings.MULTIMODAL_FUSION_CANDIDATES = depth
        results = client.get(URL, {"q": "ZX81", "fusion": "vector", "top_k": 2}).json()["results"]
        return next(result for result in results if result["title"] == "red chair model ZX81")

    settings.MULTIMODAL_FUSION_CANDIDATES = 1  # the vector list then holds top_k (2) items
    assert "red chair model ZX81" not in _titles(client.get(URL, {"q": "ZX81", "top_k": 2, "hybrid": "false"}))
    reached, backfilled = code_item(200), code_item(1)
    assert backfilled["score"] == pytest.approx(reached["score"], abs=1e-5)
    assert backfilled["explanation"]["contributions"] == reached["explanation"]["contributions"]


@pytest.mark.parametrize("mode", MODES)
def test_contributions_add_up_to_the_score(client, shop, mode):
    body = client.get(URL, {"q": "red chair", "fusion": mode, "top_k": 5}).json()
    for result in body["results"]:
        total = sum(share["contribution"] for share in result["explanation"]["contributions"])
        assert total == pytest.approx(result["score"], abs=1e-5)


def test_filters_never_let_other_items_through_and_still_fill_top_k(client, shop, deterministic_encoder):
    other = Corpus.objects.create(name="other")
    ingest_files(other, {f"red{index}.png": image_bytes((250 - index, index, 0)) for index in range(6)})
    for mode in MODES:
        images = client.get(URL, {"q": "red", "kind": "image", "fusion": mode, "top_k": 5}).json()["results"]
        assert len(images) == 5 and {result["kind"] for result in images} == {"image"}
        in_shop = client.get(URL, {"q": "red", "corpus": "shop", "fusion": mode, "top_k": 8}).json()["results"]
        assert len(in_shop) == 8 and {result["corpus"] for result in in_shop} == {"shop"}
        both = client.get(URL, {"q": "red", "corpus": "shop,other", "kind": "image", "top_k": 20}).json()["results"]
        assert len(both) == 8


def test_date_filters_use_the_items_creation_day(client, shop):
    old = Item.objects.filter(title__in=["red", "red chair"])
    old.update(created_at=dt.datetime(2020, 5, 17, 12, tzinfo=dt.timezone.utc))
    call_command("reindex", stdout=open("/dev/null", "w"), stderr=open("/dev/null", "w"))
    for mode in MODES:
        before = _titles(client.get(URL, {"q": "red", "created_to": "2020-05-17", "fusion": mode}))
        assert sorted(before) == ["red", "red chair"]
        after = _titles(client.get(URL, {"q": "red", "created_from": "2020-05-18", "fusion": mode}))
        assert "red" not in after and "red chair" not in after and len(after) == 6


def test_min_score_cuts_and_scores_are_returned(client, shop):
    everything = client.get(URL, {"q": "red", "hybrid": "false", "top_k": 20}).json()["results"]
    cut = client.get(URL, {"q": "red", "hybrid": "false", "top_k": 20, "min_score": 0.6}).json()["results"]
    assert [result["score"] for result in cut] == [result["score"] for result in everything if result["score"] >= 0.6]
    assert 0 < len(cut) < len(everything)


@pytest.mark.parametrize("mode", MODES)
def test_pages_have_no_duplicates_or_gaps(client, shop, mode):
    whole = client.get(URL, {"q": "red chair", "fusion": mode, "top_k": 8}).json()
    pages, number = [], 1
    while True:
        body = client.get(URL, {"q": "red chair", "fusion": mode, "top_k": 3, "page": number}).json()
        pages += [result["id"] for result in body["results"]]
        if not body["page"]["has_more"]:
            break
        number += 1
    assert pages == [result["id"] for result in whole["results"]] and len(set(pages)) == len(pages) == 8
    assert number == 3


def test_more_like_an_item_excludes_the_item_itself(client, shop):
    red_chair = Item.objects.get(title="red chair")
    body = client.get(URL, {"item": red_chair.pk, "top_k": 3}).json()
    titles = [result["title"] for result in body["results"]]
    # red chair = (e_red + e_chair)/√2: red.png 0.707, "red chair model ZX81" 0.577, green chair 0.5
    assert "red chair" not in titles and titles == ["red", "red chair model ZX81", "green chair"]
    assert body["query"]["parts"] == [{"type": "item", "weight": 1.0, "value": red_chair.pk, "title": "red chair"}]


def test_product_knowledge_base_search_returns_just_the_asked_fields(client, deterministic_encoder, tmp_path):
    corpus = Corpus.objects.create(name="kb")
    table = tmp_path / "kb.csv"
    table.write_text("sku,name,description,specs\n"
                     "C-1,Red chair,a red chair,colour: red; legs: 4; max__load: 120\n"
                     "C-2,Green chair,a green chair,colour: green; legs: 3; max__load: 90\n"
                     "C-3,Blue chair,a blue chair,colour: blue; legs: 4\n")
    job_run(job_id=job_create_from_paths(corpus=corpus, paths=[str(table)]).pk)
    response = client.get(URL, {"q": "chair", "corpus": "kb", "spec.legs": "4", "fields": "id,description,specs,score"})
    results = response.json()["results"]
    assert {tuple(sorted(result)) for result in results} == {("description", "id", "score", "specs")}
    assert sorted(result["specs"]["colour"] for result in results) == ["blue", "red"]
    red = _post(client, {"text": "chair", "specs": {"colour": "RED"}, "fields": ["description"]}).json()
    assert red["results"] == [{"description": "a red chair"}]
    # A spec name is only ever a name: "__" in it is neither a nested key nor an operator.
    load = client.get(URL, {"q": "chair", "corpus": "kb", "spec.max__load": "90", "fields": "description"})
    assert load.json()["results"] == [{"description": "a green chair"}]
    operator = client.get(URL, {"q": "chair", "corpus": "kb", "spec.colour__regex": ".*"})
    assert operator.status_code == 200 and operator.json()["results"] == []


def test_multipart_parts_reference_their_uploaded_files(client, shop):
    parts = [{"type": "image", "file": "photo", "weight": 1}, {"type": "text", "value": "chair", "weight": 1}]
    response = client.post(URL, {"parts": json.dumps(parts), "hybrid": "false", "top_k": 1,
                                 "photo": SimpleUploadedFile("photo.png", image_bytes((255, 0, 0)))})
    assert _titles(response) == ["red chair"]
    assert response.json()["query"]["parts"][0]["name"] == "photo.png"


@pytest.mark.parametrize(
    "body, message",
    [
        ({"parts": [{"type": "smell", "value": "x"}]}, "parts.0.type"),
        ({"parts": [{"type": "text", "value": "  "}]}, "part 0: a text part needs a non-empty string value"),
        ({"parts": [{"type": "text", "value": "red", "weight": 99}]}, "parts.0.weight"),
        ({"parts": [{"type": "image", "file": "nope"}]}, "part 0: no uploaded file field named 'nope'"),
        ({"parts": [{"type": "image", "value": "%%%"}]}, "part 0: not valid base64"),
        ({"parts": [{"type": "item", "value": 999999}]}, "part 0: no item with id 999999"),
        ({"parts": [{"type": "text", "value": "red", "weight": 0}]}, "every part has weight 0"),
        ({"parts": [{"type": "text", "value": "red"}, {"type": "text", "value": "red", "weight": -1}]}, "cancel"),
        ({"text": "red", "fusion": "magic"}, "fusion"),
        ({"text": "red", "kind": "sculpture"}, "kind"),
        ({"text": "red", "fields": "id,secret"}, "fields: unknown field secret"),
        ({"text": "red", "specs": {"bad name!": "x"}}, "is not a spec name"),
        ({"text": "red", "page": 0}, "page"),
    ],
)
def test_bad_parts_and_options_get_400_naming_the_problem(client, shop, body, message):
    response = _post(client, body)
    assert response.status_code == 400
    assert message in response.json()["error"]
