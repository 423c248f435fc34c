"""Saved searches: what is new since each person last opened one, what's new in its top N, who sees and changes it."""
import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied

from multimodal.errors import UserInputError
from multimodal.models import Corpus, Item
from multimodal.services.saved_searches import (
    SavedSearchInvalid, saved_search_create, saved_search_delete, saved_search_last_visit, saved_search_new_count,
    saved_search_open, saved_search_summary, saved_search_whats_new, saved_searches_visible,
)

from ..conftest import image_bytes, ingest_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(deterministic_encoder):
    corpus = Corpus.objects.create(name="shop")
    ingest_files(corpus, {"red bicycle.txt": b"red bicycle", "blue.txt": b"blue", "red.png": image_bytes((255, 0, 0))})
    return corpus


@pytest.fixture
def people():
    return {"staff": User.objects.create_user("staff", is_staff=True), "ann": User.objects.create_user("ann"),
            "bob": User.objects.create_user("bob")}


def test_the_count_is_of_items_its_filters_let_through_ingested_since_the_last_opening(shop, people):
    saved = saved_search_create(owner=people["ann"], name="Red in the shop", params={"q": "red", "corpus": "shop"})
    assert saved_search_new_count(saved=saved, user=people["ann"]) == 0
    ingest_files(shop, {"new red.txt": b"red door", "new chair.txt": b"green chair"})
    ingest_files(Corpus.objects.create(name="elsewhere"), {"red elsewhere.txt": b"red"})
    assert saved_search_new_count(saved=saved, user=people["ann"]) == 2  # the other corpus is filtered out
    saved_search_open(saved=saved, user=people["ann"])
    assert saved_search_new_count(saved=saved, user=people["ann"]) == 0
    ingest_files(shop, {"later.txt": b"red cup"})
    summary = saved_search_summary(saved=saved, user=people["ann"])
    assert summary["new_count"] == 1 and summary["last_opened_at"] and summary["error"] is None


def test_whats_new_lists_only_items_ingested_since_then_that_rank_in_its_top_n(shop, people, settings):
    settings.MULTIMODAL_SAVED_SEARCH_TOP_N = 2
    saved = saved_search_create(owner=people["ann"], name="Bikes", params={"q": "red bicycle", "kind": "text"})
    since, _ = saved_search_last_visit(saved=saved, user=people["ann"])
    ingest_files(shop, {"bicycle.txt": b"bicycle", "green chair.txt": b"green chair"})
    new_ids = dict(Item.objects.filter(pk__gt=since).values_list("title", "pk"))

    response = saved_search_whats_new(saved=saved, since_item_id=since)

    # The old "red bicycle" ranks first but is not new; the new "green chair" is new but ranks below the top 2.
    assert [result["id"] for result in response["results"]] == [new_ids["bicycle"]]
    assert response["page"]["total"] == 1 and response["match"]["good"] + response["match"]["weak"] == 1
    assert set(response) >= {"query", "results", "page", "match", "timings_ms"}
    everything = saved_search_whats_new(saved=saved, since_item_id=0)["results"]
    assert [result["title"] for result in everything] == ["red bicycle", "bicycle"]


def test_a_shared_search_is_listed_for_every_signed_in_person_and_only_staff_share(shop, people):
    shared = saved_search_create(owner=people["staff"], name="Team bikes", params={"q": "bicycle"}, shared=True)
    private = saved_search_create(owner=people["bob"], name="Bob's", params={"q": "blue"})
    assert set(saved_searches_visible(user=people["ann"])) == {shared}
    assert set(saved_searches_visible(user=people["bob"])) == {shared, private}
    assert not saved_searches_visible(user=AnonymousUser()).exists()
    with pytest.raises(PermissionDenied, match="only staff"):
        saved_search_create(owner=people["ann"], name="Mine for all", params={"q": "red"}, shared=True)
    with pytest.raises(PermissionDenied, match="only its owner"):
        saved_search_delete(saved=shared, user=people["ann"])
    # Each person's visits are their own: the staff member opening it leaves Ann's count alone.
    ingest_files(shop, {"tandem.txt": b"bicycle for two"})
    saved_search_open(saved=shared, user=people["staff"])
    assert saved_search_new_count(saved=shared, user=people["staff"]) == 0
    assert saved_search_new_count(saved=shared, user=people["ann"]) == 1
    assert saved_search_summary(saved=shared, user=people["ann"])["last_opened_at"] is None


def test_a_search_with_an_uploaded_image_or_that_cannot_run_is_not_saved(shop, people):
    owner = people["ann"]
    with pytest.raises(SavedSearchInvalid, match="part 0 is an image.*browser session"):
        saved_search_create(owner=owner, name="Photo", params={"q": "red", "parts": '[{"type":"image","ref":"abc"}]'})
    with pytest.raises(SavedSearchInvalid, match="part 0 is a recording"):
        saved_search_create(owner=owner, name="Voice", params={"parts": [{"type": "voice", "value": "AAAA"}]})
    with pytest.raises(UserInputError, match="nothing to search for"):
        saved_search_create(owner=owner, name="Empty", params={"corpus": "shop"})
    with pytest.raises(UserInputError, match="no corpus named 'gone'"):
        saved_search_create(owner=owner, name="Gone", params={"q": "red", "corpus": "gone"})
    with pytest.raises(SavedSearchInvalid, match="unknown parameter colour"):
        saved_search_create(owner=owner, name="Odd", params={"q": "red", "colour": "red"})
    with pytest.raises(SavedSearchInvalid, match="give the saved search a name"):
        saved_search_create(owner=owner, name="  ", params={"q": "red"})
    saved_search_create(owner=owner, name="Red", params={"q": "red"})
    with pytest.raises(SavedSearchInvalid, match="already have a saved search named “Red”"):
        saved_search_create(owner=owner, name="Red", params={"q": "blue"})
    assert list(saved_searches_visible(user=owner).values_list("name", flat=True)) == ["Red"]


def test_a_saved_search_whose_example_item_is_gone_says_why_it_cannot_run(shop, people):
    item = Item.objects.get(title="blue")
    saved = saved_search_create(owner=people["ann"], name="Like blue", params={"item": str(item.pk)})
    item_id = item.pk
    item.delete()
    summary = saved_search_summary(saved=saved, user=people["ann"])
    assert summary["new_count"] is None and f"no item with id {item_id}" in summary["error"]
