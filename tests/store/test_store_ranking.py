"""Known vectors in, known order and scores out, through the real Milvus Lite store."""
import math

import pytest

from multimodal import encoders, store
from multimodal.models import Corpus
from multimodal.query.types import SearchQuery
from multimodal.selectors import search_response

from ..conftest import image_bytes, ingest_files

pytestmark = [pytest.mark.django_db, pytest.mark.engines]


@pytest.fixture
def colour_corpus(deterministic_encoder):
    corpus = Corpus.objects.create(name="colours")
    report = ingest_files(corpus, {
        "red.png": image_bytes((255, 0, 0)),
        "yellow.png": image_bytes((255, 255, 0)),
        "blue.png": image_bytes((0, 0, 255)),
        "bike.txt": b"red bicycle",
        "chair.txt": b"a chair",
    })
    assert report.landed == 5 and not report.failures
    return corpus


def _titles_scores(query: SearchQuery):
    response = search_response(query=query)
    return [(result["title"], result["score"]) for result in response["results"]]


def test_text_query_ranks_by_cosine_with_exact_scores(colour_corpus):
    ranked = _titles_scores(SearchQuery(hybrid=False, text="red", top_k=3))
    # "red" = e0. red.png = e0 (1.0); "red bicycle" = (e0+e3)/√2 (0.7071); yellow = (e0+e1)/√2 (0.7071).
    assert ranked[0] == ("red", pytest.approx(1.0, abs=1e-5))
    assert {title for title, _ in ranked[1:]} == {"red bicycle", "yellow"}
    assert all(score == pytest.approx(1 / math.sqrt(2), abs=1e-5) for _, score in ranked[1:])


def test_text_and_image_query_ranks_the_item_matching_both_first(colour_corpus):
    from PIL import Image

    ranked = _titles_scores(SearchQuery(hybrid=False, text="bicycle", image=Image.new("RGB", (8, 8), (255, 0, 0)), top_k=5))
    # Query = normalise(e3 + e0): "red bicycle" matches both parts and scores 1.0; red.png only one.
    assert ranked[0] == ("red bicycle", pytest.approx(1.0, abs=1e-5))
    assert ranked[1] == ("red", pytest.approx(1 / math.sqrt(2), abs=1e-5))
    assert ("chair", pytest.approx(0.0, abs=1e-5)) not in ranked[:2]


def test_corpus_filter_never_lets_another_corpus_through(colour_corpus, deterministic_encoder):
    other = Corpus.objects.create(name="other")
    ingest_files(other, {"crimson.png": image_bytes((250, 0, 0))})
    query = SearchQuery(hybrid=False, text="red", top_k=10, corpus=colour_corpus)
    results = search_response(query=query)["results"]
    assert results and all(result["corpus"] == "colours" for result in results)
    assert len(results) == 5  # every item of the corpus, none of the other
    unfiltered = search_response(query=SearchQuery(hybrid=False, text="red", top_k=10))["results"]
    assert "crimson" in [result["title"] for result in unfiltered]


@pytest.mark.parametrize("index_type", ["HNSW", "IVF_FLAT", "FLAT"])
def test_each_supported_index_type_returns_the_exact_neighbour(settings, index_type, deterministic_encoder):
    settings.MILVUS_INDEX_TYPE = index_type
    settings.MILVUS_COLLECTION_PREFIX = f"idx{index_type.lower()}"
    corpus = Corpus.objects.create(name="idx")
    ingest_files(corpus, {"blue.png": image_bytes((0, 0, 255)), "red.png": image_bytes((255, 0, 0))})
    assert store.collection_for(deterministic_encoder).describe()["index_type"] == index_type
    assert _titles_scores(SearchQuery(hybrid=False, text="blue", top_k=1)) == [("blue", pytest.approx(1.0, abs=1e-5))]


def test_collections_are_per_encoder_and_refuse_vectors_of_another_dimension(deterministic_encoder):
    tiny = encoders.get("tiny-random")
    assert store.collection_for(tiny).name != store.collection_for(deterministic_encoder).name
    store.collection_for(deterministic_encoder).ensure()
    wrong = store.collection(store.collection_for(deterministic_encoder).name, dim=16)
    with pytest.raises(store.StoreError, match="8-d vectors, not 16-d"):
        wrong.ensure()
