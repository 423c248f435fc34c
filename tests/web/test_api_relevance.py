"""/api/search says how good each match is, whether any was good, and how many results there are."""
import pytest

from multimodal.models import Corpus
from multimodal.services.backgrounds import backgrounds_forget

from ..conftest import image_bytes, ingest_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(deterministic_encoder):
    """Pictures and notes; as in any collection of writing, most of the notes' words are far from a query's."""
    backgrounds_forget()
    corpus = Corpus.objects.create(name="shop")
    ingest_files(corpus, {
        "red.png": image_bytes((230, 20, 20)),
        "green.png": image_bytes((20, 200, 40)),
        "blue.png": image_bytes((20, 40, 220)),
        "sand.png": image_bytes((220, 200, 120)),
        "walk.txt": b"A long walk along the river on a grey afternoon, stopping for tea at the old mill.",
        "notes.txt": b"Remember to water the plants and to call the plumber about the kitchen sink on Monday.",
        "letter.txt": b"Thank you for the lovely evening; the soup was wonderful and the company even better.",
        "trip.txt": b"The ferry leaves at seven, so pack the night before and leave the keys with the neighbour.",
    })
    return corpus


@pytest.mark.parametrize("fusion", ["rrf", "vector"])
def test_results_carry_a_relevance_label_and_level_and_the_response_counts_good_matches(client, corpus, fusion):
    body = client.get("/api/search", {"q": "red", "fusion": fusion, "hybrid": "false"}).json()
    first = body["results"][0]
    assert first["relevance"] == {"label": "strong", "level": 1.0}
    assert isinstance(first["score"], float)
    assert first["explanation"]["summary"] == ["Matches your words “red” strongly."]
    assert first["explanation"]["calibration"]["z"] > first["explanation"]["calibration"]["strong_z"]
    assert body["match"]["good"] >= 1 and body["match"]["good"] + body["match"]["weak"] == len(body["results"])
    assert body["page"]["total"] == 8 and body["page"]["total_is_lower_bound"] is False

    nonsense = client.get("/api/search", {"q": "xqzv blorp", "fusion": fusion}).json()
    assert nonsense["match"] == {"good": 0, "weak": len(nonsense["results"])} and nonsense["results"]
    assert {result["relevance"]["label"] for result in nonsense["results"]} == {"weak"}


def test_relevance_may_be_asked_for_alone(client, corpus):
    body = client.get("/api/search", {"q": "red", "fields": "id,relevance"}).json()
    assert set(body["results"][0]) == {"id", "relevance"}
    assert body["match"]["good"] >= 1
