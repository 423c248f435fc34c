"""Near-duplicate groups made at ingest, at two levels, measured on a labelled set of generated photos.

The deterministic encoder sees only a picture's mean colour, so every copy of a picture would pass any
CLIP check there and unrelated pictures of like colours would too. These tests use an encoder whose vectors
stand in for CLIP's where it matters: a picture is its palette (hue and saturation, weighted; exposure moves
neither much), so copies and other shots of a scene are close and other scenes are not. "Same" is decided by
the perceptual hash (CLIP confirms with a lenient cut); "similar" by these vectors.
"""
import base64
import io

import numpy as np
import pytest
from PIL import Image

from multimodal import encoders
from multimodal.benchmarks.duplicates import duplicates_measure, labelled_set, scene_draw
from multimodal.models import Corpus, Item

from ..conftest import ingest_files

pytestmark = pytest.mark.django_db

PALETTE = "test-palette"
HUE_BINS = 18


class PaletteEncoder:
    """A picture is its colours: a histogram of hue (weighted by saturation) plus one bin for greys, square-rooted
    and L2-normalised. Texts are their bag of words over a small vocabulary (the last axis for the rest)."""

    name = PALETTE
    dim = HUE_BINS + 1 + 8
    words = ("oak", "chair", "green", "red", "bicycle", "steel", "lamp")

    def encode_image(self, images):
        vectors = np.zeros((len(images), self.dim), dtype=np.float32)
        for row, image in enumerate(images):
            hsv = np.asarray(image.convert("RGB").resize((64, 48)).convert("HSV"), dtype=np.float32).reshape(-1, 3) / 255
            saturation = hsv[:, 1] * (hsv[:, 2] > 0.1)
            hue_bins = np.minimum((hsv[:, 0] * HUE_BINS).astype(int), HUE_BINS - 1)
            np.add.at(vectors[row], hue_bins, saturation)
            vectors[row, HUE_BINS] = (1 - saturation).sum() * 0.5
        return encoders.l2_normalise(np.sqrt(vectors))

    def encode_text(self, texts):
        vectors = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().replace(".", " ").replace(";", " ").replace(":", " ").split():
                index = self.words.index(word) if word in self.words else len(self.words)
                vectors[row, HUE_BINS + 1 + index] += 1
        return encoders.l2_normalise(vectors)


@pytest.fixture
def palette_encoder(settings):
    encoders.register(PALETTE, PaletteEncoder)
    settings.MULTIMODAL_CLIP_MODEL = PALETTE
    yield encoders.get(PALETTE)
    encoders.unregister(PALETTE)


@pytest.fixture(scope="module")
def labelled():
    return labelled_set(scenes=20, unrelated=20, seed=0)


def test_groups_found_at_ingest_reach_the_precision_and_recall_targets(palette_encoder, labelled):
    figures = {figure.level: figure for figure in duplicates_measure(corpus=Corpus.objects.create(name="photos"),
                                                                     pictures=labelled)}
    for figure in figures.values():
        print(f"{figure.level:8} precision {figure.precision:.3f} recall {figure.recall:.3f} "
              f"({figure.right_pairs} of {figure.found_pairs} pairs found right, {figure.true_pairs} true pairs)")
    assert figures["same"].precision >= 0.95 and figures["same"].recall >= 0.9
    assert figures["similar"].precision >= 0.9 and figures["similar"].recall >= 0.8


def _png(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


@pytest.fixture
def bursts(palette_encoder):
    """Corpus "trip": a harbour photo, two copies of it (smaller; recompressed), another shot of the harbour
    (the view shifted), and an unrelated photo."""
    harbour, market = scene_draw(7, (160, 120)), scene_draw(8, (160, 120))
    corpus = Corpus.objects.create(name="trip")
    report = ingest_files(corpus, {
        "harbour.png": _png(harbour),
        "harbour small.png": _png(harbour.resize((112, 84))),
        "harbour recompressed.jpg": _png(harbour, "JPEG", quality=40),
        "harbour later.jpg": _png(harbour.crop((0, 0, 104, 78)).resize((160, 120)), "JPEG", quality=90),
        "market.png": _png(market),
    })
    assert report.failures == [] and report.created == 5
    return {item.title: item for item in Item.objects.filter(corpus=corpus)}


def test_search_shows_copies_once_by_default_and_similar_shots_once_when_asked(bursts, client):
    harbour = bursts["harbour"]
    assert harbour.same_group is not None and harbour.similar_group is not None
    copies = {bursts[title].pk for title in ("harbour", "harbour small", "harbour recompressed")}
    picture = base64.b64encode(harbour.file.open("rb").read()).decode()

    def search(**options):
        response = client.post("/api/search", {"image": picture, "corpus": "trip", **options},
                               content_type="application/json")
        return response.status_code, response.json()

    _, every = search(collapse="none")
    assert every["query"]["collapse"] == "none"
    assert len(every["results"]) == 5 and not any(result.get("duplicates") for result in every["results"])

    _, same = search()
    assert same["query"]["collapse"] == "same"  # the default
    assert len(same["results"]) == 3 and same["page"]["total"] == 3
    top = same["results"][0]
    assert top["id"] == harbour.pk and [duplicate["level"] for duplicate in top["duplicates"]] == ["same", "same"]
    assert {top["id"]} | {duplicate["id"] for duplicate in top["duplicates"]} == copies
    assert [result["title"] for result in same["results"][1:]] == ["harbour later", "market"]

    _, similar = search(collapse="similar")
    assert [result["title"] for result in similar["results"]] == ["harbour", "market"]
    folded = similar["results"][0]["duplicates"]
    assert sorted(duplicate["level"] for duplicate in folded) == ["same", "same", "similar"]
    assert [duplicate["id"] for duplicate in folded if duplicate["level"] == "similar"] == [bursts["harbour later"].pk]

    status, refused = search(collapse="all")
    assert status == 400 and "collapse" in refused["error"]


def test_the_page_folds_near_duplicates_under_their_best_member_with_each_one_linked(bursts, client):
    # More like the harbour photo: the item itself is left out, its copies and the other shot fold into one card.
    page = client.get("/", {"item": bursts["harbour"].pk, "corpus": "trip", "collapse": "similar"}).content.decode()
    assert page.count('<details class="duplicates">') == 1 and "+2 similar" in page
    for title in ("harbour recompressed", "harbour later"):
        assert f'href="/items/{bursts[title].pk}' in page
    assert "similar shot" in page and "same picture" in page
    default = client.get("/", {"item": bursts["harbour"].pk, "corpus": "trip"}).content.decode()
    assert "+1 copy" in default and 'name="collapse"' in default


def test_staff_delete_a_groups_unticked_members_with_their_vectors(bursts, client, django_user_model,
                                                                   django_capture_on_commit_callbacks):
    from django.test import Client

    from multimodal import store

    harbour = bursts["harbour"]
    assert client.get("/duplicates").status_code == 302  # staff only: to the login page
    staff = django_user_model.objects.create_user("editor", password="pw-editor-123456", is_staff=True)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(staff)
    page = browser.get("/duplicates?level=similar").content.decode()
    assert "4 items · " in page and "Delete the unticked" not in page  # may not delete yet
    refused = browser.post("/duplicates/resolve", {"level": "same", "group": harbour.same_group, "keep": [harbour.pk],
                                                   "csrfmiddlewaretoken": browser.cookies["csrftoken"].value})
    assert refused.status_code == 403 and Item.objects.count() == 5

    from ..conftest import permissions_grant
    permissions_grant(staff, "delete_item")
    staff = django_user_model.objects.get(pk=staff.pk)
    browser.force_login(staff)
    page = browser.get("/duplicates").content.decode()
    assert "1 group of copies" in page and "3 items · " in page and "Delete the unticked" in page
    token = browser.cookies["csrftoken"].value
    members = list(Item.objects.filter(same_group=harbour.same_group).values_list("pk", flat=True))
    keep = members[0]
    assert browser.post("/duplicates/resolve", {"level": "same", "group": harbour.same_group,
                                                "keep": [keep]}).status_code == 403  # no CSRF token
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post("/duplicates/resolve", {"level": "same", "group": harbour.same_group, "keep": [keep],
                                                         "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    gone = set(members) - {keep}
    assert not Item.objects.filter(pk__in=gone).exists() and Item.objects.filter(pk=keep).exists()
    assert set(store.collection_for(encoders.get()).vectors(members)) == {keep}
    assert "No groups" in browser.get("/duplicates").content.decode()


def test_near_identical_product_rows_share_a_group_and_show_once(palette_encoder, client, tmp_path):
    from multimodal.services.jobs import job_create_from_paths, job_run

    corpus = Corpus.objects.create(name="shop")
    table = tmp_path / "catalogue.csv"
    table.write_text(
        "id,title,description,specs\n"
        'SKU-1,Oak chair,A solid oak chair with a green cushion.,"colour: green; material: oak"\n'
        'SKU-2,OAK  CHAIR,"A solid oak chair, with a green cushion","material: Oak; colour: Green"\n'
        'SKU-3,Steel lamp,A red steel lamp,"colour: red; material: steel"\n'
    )
    job_run(job_id=job_create_from_paths(corpus=corpus, paths=[str(table)]).pk)
    rows = {item.external_id: item for item in Item.objects.filter(corpus=corpus)}
    assert rows["SKU-1"].same_group == rows["SKU-2"].same_group is not None and rows["SKU-3"].same_group is None
    found = client.get("/api/search", {"q": "oak chair", "corpus": "shop"}).json()["results"]
    chairs = [result for result in found if result["title"].lower().startswith("oak")]
    assert len(chairs) == 1 and [duplicate["level"] for duplicate in chairs[0]["duplicates"]] == ["same"]


def test_find_duplicates_groups_items_ingested_before_fingerprints(palette_encoder, settings):
    from django.core.management import call_command

    settings.MULTIMODAL_DUPLICATES = False
    harbour = scene_draw(7, (160, 120))
    corpus = Corpus.objects.create(name="old")
    ingest_files(corpus, {"a.png": _png(harbour), "b.jpg": _png(harbour, "JPEG", quality=50),
                          "c.png": _png(scene_draw(9, (160, 120)))})
    assert not Item.objects.exclude(same_group=None).exists() and not Item.objects.exclude(fingerprint=None).exists()
    settings.MULTIMODAL_DUPLICATES = True
    out = io.StringIO()
    call_command("find_duplicates", "--corpus", "old", stdout=out, stderr=io.StringIO())
    groups = dict(Item.objects.values_list("title", "same_group"))
    assert groups["a"] == groups["b"] is not None and groups["c"] is None
    assert "3 items fingerprinted" in out.getvalue() and "1 group of copies" in out.getvalue()


def test_the_api_lists_groups_biggest_first_and_resolves_one_for_a_token_that_may_delete(
        bursts, client, django_user_model, django_capture_on_commit_callbacks):
    from multimodal.models import ApiToken

    from ..conftest import permissions_grant

    staff = django_user_model.objects.create_user("robot", password="pw-robot-123456", is_staff=True)
    _, key = ApiToken.issue(user=staff)
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    assert client.get("/api/duplicates").status_code == 401
    listed = client.get("/api/duplicates", {"level": "similar", "corpus": "trip"}, **auth).json()
    assert listed["total"] == 1 and [group["size"] for group in listed["groups"]] == [4]
    assert listed["groups"][0]["items"][0]["title"] == "harbour"  # the largest picture, then the oldest
    same = client.get("/api/duplicates", **auth).json()["groups"][0]
    ask = {"level": "same", "group": same["group"], "keep": [same["items"][0]["id"]]}
    refused = client.post("/api/duplicates/resolve", ask, content_type="application/json", **auth)
    assert refused.status_code == 403 and "delete_item" in refused.json()["error"]
    permissions_grant(staff, "delete_item")
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/api/duplicates/resolve", ask, content_type="application/json", **auth)
    assert done.json() == {"deleted": 2}
    assert Item.objects.filter(corpus__name="trip").count() == 3
    empty = client.post("/api/duplicates/resolve", {**ask, "keep": [bursts["market"].pk]},
                        content_type="application/json", **auth)
    assert empty.status_code == 400 and "keep at least one" in empty.json()["error"]
