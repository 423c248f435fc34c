"""Saved searches through the JSON API, the Atom feed and the pages (Django's test client)."""
import json
import xml.etree.ElementTree as ElementTree

from urllib.parse import urlencode

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile

from multimodal.models import ApiToken, Corpus, Item, SavedSearch

from ..conftest import image_bytes, ingest_files

pytestmark = pytest.mark.django_db
ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def shop(deterministic_encoder):
    corpus = Corpus.objects.create(name="shop")
    ingest_files(corpus, {"red bicycle.txt": b"red bicycle", "blue.txt": b"blue"})
    return corpus


@pytest.fixture
def ann():
    """A signed-in person who is not staff, with an API token."""
    user = User.objects.create_user("ann")
    return {"user": user, "auth": {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(user=user)[1]}"}}


def _create(client, auth, **body):
    return client.post("/api/saved-searches", json.dumps(body), content_type="application/json", **auth)


def test_the_api_lists_creates_gets_and_deletes_a_persons_saved_searches(client, shop, ann, django_user_model):
    item = Item.objects.get(title="blue")
    created = _create(client, ann["auth"], name="Bikes", params={
        "q": "red bicycle", "parts": [{"type": "item", "value": item.pk, "weight": -0.5}], "corpus": ["shop"]})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["params"] == {"q": "red bicycle", "parts": f'[{{"type":"item","value":{item.pk},"weight":-0.5}}]',
                              "corpus": "shop"}
    assert body["new_count"] == 0 and body["mine"] is True and body["owner"] == "ann" and body["shared"] is False
    assert body["search_url"].startswith("/?q=red+bicycle&parts=")
    assert body["feed_url"].startswith(f"http://testserver/saved/{body['id']}/feed.atom?token=")
    assert [entry["name"] for entry in client.get("/api/saved-searches", **ann["auth"]).json()] == ["Bikes"]
    assert client.get(f"/api/saved-searches/{body['id']}", **ann["auth"]).json()["name"] == "Bikes"

    # Another person neither sees nor deletes it; nobody without a session or a token gets anything.
    client.force_login(django_user_model.objects.create_user("bob"))
    assert client.get("/api/saved-searches").json() == []
    assert client.get(f"/api/saved-searches/{body['id']}").status_code == 404
    assert client.delete(f"/api/saved-searches/{body['id']}").status_code == 404
    client.logout()
    refused = client.get("/api/saved-searches")
    assert refused.status_code == 401 and "log in or send a token" in refused.json()["error"]

    assert client.delete(f"/api/saved-searches/{body['id']}", **ann["auth"]).status_code == 204
    assert client.get(f"/api/saved-searches/{body['id']}", **ann["auth"]).status_code == 404


def test_the_api_refuses_a_search_it_could_not_run_again(client, shop, ann):
    image = _create(client, ann["auth"], name="Photo", params={"parts": [{"type": "image", "value": "AAAA"}]})
    assert image.status_code == 400 and "cannot hold them" in image.json()["error"]
    empty = _create(client, ann["auth"], name="Empty", params={"kind": "text"})
    assert empty.status_code == 400 and "nothing to search for" in empty.json()["error"]
    shared = _create(client, ann["auth"], name="For all", params={"q": "red"}, shared=True)
    assert shared.status_code == 403 and "only staff" in shared.json()["error"]
    assert not SavedSearch.objects.exists()


def test_whats_new_in_the_api_has_the_search_shape_and_seen_clears_it(client, shop, ann, settings):
    settings.MULTIMODAL_SAVED_SEARCH_TOP_N = 2
    saved = _create(client, ann["auth"], name="Bikes", params={"q": "red bicycle"}).json()
    ingest_files(shop, {"bicycle.txt": b"bicycle", "green chair.txt": b"green chair"})
    listed = client.get("/api/saved-searches", **ann["auth"]).json()[0]
    assert listed["new_count"] == 2

    new = client.get(f"/api/saved-searches/{saved['id']}/new", **ann["auth"])
    assert new.status_code == 200, new.content
    body = new.json()
    assert [result["title"] for result in body["results"]] == ["bicycle"]  # "green chair" is outside the top 2
    searched = client.get("/api/search", {"q": "red bicycle"}).json()
    assert set(body) == set(searched) | {"saved_search", "since"}
    assert set(body["results"][0]) == set(searched["results"][0])
    assert body["since"] == listed["last_opened_at"] and body["saved_search"]["name"] == "Bikes"

    seen = client.post(f"/api/saved-searches/{saved['id']}/seen", **ann["auth"])
    assert seen.status_code == 200 and seen.json()["new_count"] == 0
    assert client.get(f"/api/saved-searches/{saved['id']}/new", **ann["auth"]).json()["results"] == []


def _feed(client, saved: SavedSearch, token: str | None):
    return client.get(f"/saved/{saved.pk}/feed.atom", {"token": token} if token is not None else {})


def test_the_feed_is_atom_of_new_items_that_rank_and_opens_only_with_its_token(client, shop, ann, settings):
    settings.MULTIMODAL_SAVED_SEARCH_TOP_N = 2
    client.force_login(ann["user"])
    client.post("/saved/new", {"name": "Bikes <&>", "search": "q=red+bicycle"})
    saved = SavedSearch.objects.get()
    ingest_files(shop, {"bicycle.txt": b"bicycle", "green chair.txt": b"green chair"})
    client.logout()  # a feed reader has no session

    response = _feed(client, saved, saved.feed_token)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/atom+xml")
    feed = ElementTree.fromstring(response.content)
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated", "author/" f"{ATOM}name"):
        assert feed.find(f"{ATOM}{required}") is not None, required
    assert feed.findtext(f"{ATOM}title") == "New in “Bikes <&>” — Multimodal search"
    entries = feed.findall(f"{ATOM}entry")
    new_item = Item.objects.get(title="bicycle")
    assert [entry.findtext(f"{ATOM}title") for entry in entries] == ["bicycle"]
    entry = entries[0]
    assert entry.find(f"{ATOM}link").get("href") == f"http://testserver/items/{new_item.pk}"
    assert entry.findtext(f"{ATOM}published") == new_item.created_at.isoformat()
    assert entry.findtext(f"{ATOM}id") and entry.findtext(f"{ATOM}updated") and entry.findtext(f"{ATOM}summary")

    assert _feed(client, saved, None).status_code == 404
    wrong = ("y" if saved.feed_token[0] == "x" else "x") + saved.feed_token[1:]  # one character off, never equal
    assert _feed(client, saved, wrong).status_code == 404
    SavedSearch.objects.filter(pk=saved.pk).update(shared=True)  # shared with signed-in people, not the world
    assert _feed(client, saved, None).status_code == 404

    old_token = saved.feed_token
    client.force_login(ann["user"])
    client.post(f"/saved/{saved.pk}/feed-token")
    saved.refresh_from_db()
    assert _feed(client, saved, old_token).status_code == 404
    assert _feed(client, saved, saved.feed_token).status_code == 200


def test_pages_send_visitors_to_log_in_and_refuse_a_search_with_a_session_image(client, shop, ann):
    assert client.get("/saved/")["Location"].startswith("/admin/login/?next=/saved/")
    assert 'id="save-search-name"' not in client.get("/", {"q": "red bicycle"}).content.decode()

    client.force_login(ann["user"])
    picture = SimpleUploadedFile("red.png", image_bytes((255, 0, 0)), content_type="image/png")
    ref = client.post("/query-uploads", {"type": "image", "file": picture}).json()["ref"]
    with_image = json.dumps([{"type": "image", "ref": ref}])
    page = client.get("/", {"q": "red bicycle", "parts": with_image}).content.decode()
    assert "cannot be saved" in page and 'id="save-search-name"' not in page
    refused = client.post("/saved/new", {"name": "Photo", "search": urlencode({"q": "red", "parts": with_image})},
                          follow=True)
    assert "The search was not saved: part 0 is an image" in refused.content.decode()
    assert not SavedSearch.objects.exists()

    page = client.get("/", {"q": "red bicycle", "utm_source": "mail", "page": "1"}).content.decode()
    assert 'id="save-search-name"' in page
    saved_page = client.post("/saved/new", {"name": "Bikes", "search": "q=red+bicycle&utm_source=mail&page=2"},
                             follow=True)
    assert "Saved “Bikes”" in saved_page.content.decode()
    assert SavedSearch.objects.get().params == {"q": "red bicycle"}


def test_staff_share_from_the_list_and_only_the_owner_renames_or_deletes(client, shop, ann, django_user_model):
    boss = django_user_model.objects.create_user("boss", is_staff=True)
    client.force_login(boss)
    client.post("/saved/new", {"name": "Team bikes", "search": "q=bicycle"})
    saved = SavedSearch.objects.get()
    client.post(f"/saved/{saved.pk}/share", {"shared": "true"})
    client.post(f"/saved/{saved.pk}/rename", {"name": "Bikes for all"})

    client.force_login(ann["user"])
    listed = client.get("/saved/").content.decode()
    assert "Bikes for all" in listed and "Shared by boss" in listed and "Manage" not in listed
    assert client.post(f"/saved/{saved.pk}/rename", {"name": "Mine now"}).status_code == 403
    assert client.post(f"/saved/{saved.pk}/delete").status_code == 403
    assert client.post(f"/saved/{saved.pk}/share", {"shared": "false"}).status_code == 403

    client.force_login(boss)
    client.post(f"/saved/{saved.pk}/delete")
    assert not SavedSearch.objects.exists()
