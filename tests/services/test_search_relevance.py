"""How good a match each result is, judged the same way in every fusion mode, on the real store."""
import pytest

from multimodal.models import Corpus
from multimodal.query.types import QueryPart, SearchQuery
from multimodal.selectors import search_response
from multimodal.services.backgrounds import backgrounds_forget

from ..conftest import image_bytes, ingest_files

pytestmark = pytest.mark.django_db
MODES = ("vector", "rrf", "weighted")


@pytest.fixture
def gallery(deterministic_encoder):
    """Pictures of a few colours and notes written as people write them (most of their words unknown to the
    deterministic encoder, as most words of a sentence are far from any one query)."""
    backgrounds_forget()  # the server's collections outlive the previous test's database, and ids repeat
    corpus = Corpus.objects.create(name="gallery")
    ingest_files(corpus, {
        "poppy.png": image_bytes((230, 20, 30)),
        "brick.png": image_bytes((150, 60, 50)),
        "meadow.png": image_bytes((40, 160, 60)),
        "sea.png": image_bytes((20, 60, 200)),
        "sand.png": image_bytes((220, 200, 120)),
        "bicycle note.txt": b"We rode the old bicycle along the canal until the light went out of the evening sky.",
        "chair note.txt": b"The chair by the window is where the cat sleeps through most of the afternoon.",
        "wall note.txt": b"Someone painted the garden wall again this spring and now it peels in long strips.",
        "recipe.txt": b"Simmer the onions slowly, add the stock, and season it only at the very end.",
        "train.txt": b"The morning train was late again, so we waited on the platform drinking coffee.",
    })
    return corpus


def _search(text="", mode="vector", **options):
    return search_response(query=SearchQuery(text=text, fusion=mode, **options))


def _labels(response) -> dict[str, str]:
    return {result["title"]: result["relevance"]["label"] for result in response["results"]}


@pytest.mark.engines("lite", "server-hnsw")
def test_a_query_naming_what_the_corpus_holds_matches_well_nonsense_does_not_in_every_mode(gallery):
    named = {mode: _search("red", mode, hybrid=False) for mode in MODES}
    nonsense = {mode: _search("xqzv blorp", mode) for mode in MODES}
    # The raw scores live on different scales per mode; the judgement of each item does not.
    assert named["rrf"]["results"][0]["score"] < 0.1 < named["vector"]["results"][0]["score"]
    assert _labels(named["vector"]) == _labels(named["rrf"]) == _labels(named["weighted"])
    assert _labels(nonsense["vector"]) == _labels(nonsense["rrf"]) == _labels(nonsense["weighted"])

    first = named["vector"]["results"][0]
    assert first["title"] == "poppy" and first["relevance"]["label"] == "strong"
    assert first["explanation"]["summary"][0] == "Matches your words “red” strongly."
    assert _labels(named["vector"])["sea"] == "weak"
    assert named["vector"]["match"]["good"] >= 2
    assert nonsense["vector"]["results"], "weak matches are still listed"
    assert set(_labels(nonsense["vector"]).values()) == {"weak"}
    assert nonsense["vector"]["match"] == {"good": 0, "weak": len(nonsense["vector"]["results"])}
    assert max(result["relevance"]["level"] for result in nonsense["vector"]["results"]) < 0.5
    assert "hardly closer to your query" in nonsense["vector"]["results"][0]["explanation"]["summary"][-1]


def test_a_keyword_match_counts_where_the_vectors_do_not_and_says_where_the_word_is(gallery):
    response = _search("canal", "rrf")
    note = next(result for result in response["results"] if result["title"].startswith("We rode"))
    assert note["relevance"]["label"] == "fair"
    assert any(sentence.startswith("The word ‘canal’ is in the ") for sentence in note["explanation"]["summary"])
    others = [result for result in response["results"] if result is not note]
    assert {result["relevance"]["label"] for result in others} == {"weak"}


def test_a_negative_part_is_explained_and_does_not_make_a_result_a_better_match(gallery):
    from multimodal.models import Item

    sea = Item.objects.get(title="sea")
    response = search_response(query=SearchQuery(
        parts=[QueryPart(type="text", text="red"), QueryPart(type="item", item=sea, weight=-0.5)], hybrid=False))
    first = response["results"][0]
    assert first["title"] == "poppy" and first["relevance"]["label"] == "strong"
    assert "Looks unlike “sea”, which you marked “less like this”." in first["explanation"]["summary"]


def test_total_counts_the_results_found_and_says_when_the_candidate_depth_capped_it(gallery, settings):
    everything = _search("red", hybrid=False, top_k=3)
    assert everything["page"]["total"] == 10 and not everything["page"]["total_is_lower_bound"]
    assert len(everything["results"]) == 3
    settings.MULTIMODAL_FUSION_CANDIDATES = 4
    capped = _search("red", hybrid=False, top_k=3)
    assert capped["page"]["total"] == 4 and capped["page"]["total_is_lower_bound"]
    assert _search("red", hybrid=False, min_score=0.5)["page"]["total"] == 3
