"""Activating an adapter re-embeds a corpus beside the live index and switches at once; rollback is one step.

Everything runs through the real Milvus Lite store. The build's progress callback is where a
build pauses half-way: searches made there must still see the old vectors, complete.
"""
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from multimodal import encoders, store
from multimodal.learning.adaptation import TrainingConfig
from multimodal.models import Corpus, CorpusIndex, IndexBuild
from multimodal.query.types import SearchFilters, SearchQuery
from multimodal.retrieval import indexes
from multimodal.selectors import search_response
from multimodal.services.adapter_activation import adapter_activate, index_build_run, index_rollback, index_switch
from multimodal.services.adapter_training import adapter_create, adapter_train

from ..adapter_domain import caption, catalogue_write, image_png
from ..conftest import DeterministicEncoder

pytestmark = [pytest.mark.django_db, pytest.mark.engines]
PRODUCTS = 120
QUERIES = list(range(0, PRODUCTS, 8))  # 15 captions


def _ingest(folder, numbers, corpus: str) -> Corpus:
    catalogue_write(folder, numbers)
    call_command("ingest", str(folder), "--corpus", corpus, stdout=io.StringIO(), stderr=io.StringIO())
    return Corpus.objects.get(name=corpus)


@pytest.fixture
def shop(domain_encoder, tmp_path):
    return _ingest(tmp_path / "shop", range(PRODUCTS), "shop")


@pytest.fixture
def adapter(shop):
    created = adapter_create(corpus=shop, config=TrainingConfig(), holdout=0.2)
    return adapter_train(adapter_id=created.pk)


class _Score(float):
    """A score as the API rounds it (6 decimals), equal to one within 2e-6: the engine's float32 distance
    for the same pair can differ in the 6th decimal from one search to the next."""

    def __eq__(self, other):
        if not isinstance(other, (int, float)):
            return NotImplemented
        return abs(float(self) - float(other)) <= 2e-6

    def __ne__(self, other):
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = float.__hash__


def _search(text: str, *corpora: Corpus, top_k: int = 10) -> list[tuple[str, float]]:
    query = SearchQuery(text=text, hybrid=False, top_k=top_k, filters=SearchFilters(corpora=list(corpora), modalities=["image"]))
    return [(result["external_id"], _Score(result["score"])) for result in search_response(query=query)["results"]]


def _firsts(corpus: Corpus) -> int:
    """How many caption queries find their own product first."""
    return sum(_search(caption(number), corpus)[0][0] == f"SKU-{number}" for number in QUERIES)


def _vectors(collection: store.VectorCollection, corpus: Corpus) -> int:
    return collection.count(store.VectorFilter(corpus_ids=[corpus.pk]))


def test_search_uses_the_old_vectors_during_the_build_the_new_after_the_switch_and_the_old_after_rollback(
        shop, adapter, domain_encoder):
    old = {number: _search(caption(number), shop) for number in QUERIES}
    base = store.collection_for(domain_encoder)
    build = adapter_activate(adapter=adapter)
    building = store.collection(build.collection_name, domain_encoder.dim)
    paused_at = []

    def pause(current: IndexBuild) -> None:
        paused_at.append(_vectors(building, shop))
        assert {number: _search(caption(number), shop) for number in QUERIES} == old

    index_build_run(build_id=build.pk, batch_size=25, on_progress=pause)
    # Searched at every batch, while the new collection held 50, 100, ... of the 240 vectors.
    assert paused_at[:-1] == [50, 100, 150, 200] and paused_at[-1] == 2 * PRODUCTS
    new = {number: _search(caption(number), shop) for number in QUERIES}
    assert new != old
    assert _vectors(building, shop) == _vectors(base, shop) == 2 * PRODUCTS
    before_firsts = sum(old[number][0][0] == f"SKU-{number}" for number in QUERIES)
    after_firsts = sum(new[number][0][0] == f"SKU-{number}" for number in QUERIES)
    assert before_firsts <= 2 and after_firsts >= 13

    index_rollback(corpus=shop)
    assert {number: _search(caption(number), shop) for number in QUERIES} == old
    index_rollback(corpus=shop)  # again: forward, to the same collection, not rebuilt
    assert {number: _search(caption(number), shop) for number in QUERIES} == new
    assert IndexBuild.objects.get().status == "ready"
    index_switch(corpus=shop, build=None)
    assert {number: _search(caption(number), shop) for number in QUERIES} == old


def test_items_ingested_while_the_build_runs_land_in_both_indexes(shop, adapter, domain_encoder, tmp_path):
    build = adapter_activate(adapter=adapter)
    late = range(900, 910)

    def ingest_once(current: IndexBuild) -> None:
        if current.done == 50:
            _ingest(tmp_path / "late", late, "shop")

    index_build_run(build_id=build.pk, batch_size=50, on_progress=ingest_once)
    building = store.collection(build.collection_name, domain_encoder.dim)
    assert _vectors(building, shop) == _vectors(store.collection_for(domain_encoder), shop) == 2 * (PRODUCTS + 10)
    found_first = sum(_search(caption(number), shop)[0][0] == f"SKU-{number}" for number in late)
    assert found_first >= 8  # adapted like the rest, though they never took part in training


def test_an_active_adapter_adapts_queries_like_its_vectors_scores_each_index_in_its_own_and_serves_only_its_encoder(
        shop, adapter, domain_encoder, tmp_path, settings):
    """Three promises of one active adapter, checked on one build (each engine pays for one catalogue, one
    training and one build instead of three): a search over corpora in different indexes scores each in its own;
    a query is adapted exactly like the vectors it is compared with; a build made for another encoder is never
    searched."""
    from PIL import Image

    from multimodal.query.types import QueryPart

    archive = _ingest(tmp_path / "archive", range(500, 540), "archive")
    build = adapter_activate(adapter=adapter)
    index_build_run(build_id=build.pk)

    # Corpora in different indexes: the archive in base vectors, the shop in the adapter's.
    routes = indexes.search_routes(None)
    assert [(route.index.adapter is None, route.corpus_ids) for route in routes] == [(True, [archive.pk]), (False, [shop.pk])]
    for number in (8, 16, 520):
        both = _search(caption(number), top_k=100)
        alone = {**dict(_search(caption(number), shop, top_k=100)), **dict(_search(caption(number), archive, top_k=100))}
        assert {sku for sku, _ in both} & {f"SKU-{n}" for n in range(500, 540)}  # the archive is searched too
        assert {sku for sku, _ in both} & {f"SKU-{n}" for n in range(PRODUCTS)}
        for sku, score in both:
            # The same score as in its own corpus's search. Scores are shown to 6 decimals, and Milvus's
            # float32 distances for the same pair can differ in the 7th between the two searches, so
            # equal scores may show one unit apart (0.161899 vs 0.161898); a merged search that
            # rescaled one index's scores would move them by far more.
            assert score == pytest.approx(alone[sku], abs=2e-6)
    assert _search(caption(8))[0][0] == "SKU-8"

    # A query is adapted exactly like the vectors it is compared with.
    own_image = Image.open(io.BytesIO(image_png(7)))
    query = SearchQuery(image=own_image, hybrid=False, top_k=1, corpus=shop)
    top = search_response(query=query)["results"][0]
    # The product's stored image vector went through the adapter; so did the query image: cosine 1.
    assert (top["external_id"], top["score"]) == ("SKU-7", pytest.approx(1.0, abs=1e-5))
    like = SearchQuery(parts=[], top_k=1, hybrid=False, corpus=shop)
    like.parts.append(QueryPart(type="item", item=shop.items.get(external_id="SKU-7")))
    first = search_response(query=like)["results"][0]
    # More like SKU-7: its own vectors, adapted, sum to a direction its nearest neighbour shares best.
    assert first["external_id"] != "SKU-7" and first["score"] > 0

    # Builds made for another encoder are never searched, nor can its adapters be activated for it.
    assert indexes.search_routes([shop.pk])[0].index.adapter is not None
    encoders.register("other-encoder", DeterministicEncoder)
    try:
        settings.MULTIMODAL_CLIP_MODEL = "other-encoder"
        assert [route.index.adapter for route in indexes.search_routes([shop.pk])] == [None]
        with pytest.raises(Exception, match="adapts test-rotated-domain; the configured encoder is"):
            adapter_activate(adapter=adapter)
    finally:
        encoders.unregister("other-encoder")


def test_retired_and_deleted_builds_lose_their_collections(shop, adapter, domain_encoder,
                                                           django_capture_on_commit_callbacks):
    first = adapter_activate(adapter=adapter)
    index_build_run(build_id=first.pk)
    second_adapter = adapter_train(adapter_id=adapter_create(corpus=shop, config=TrainingConfig(epochs=2), holdout=0.2).pk)
    second = adapter_activate(adapter=second_adapter)
    index_build_run(build_id=second.pk)
    with django_capture_on_commit_callbacks(execute=True):
        index_switch(corpus=shop, build=None)  # live: base; previous: second; first is retired
    assert IndexBuild.objects.get(pk=first.pk).status == "retired"
    assert not store.collection(first.collection_name).exists()
    assert store.collection(second.collection_name).exists()
    with django_capture_on_commit_callbacks(execute=True):
        shop.delete()
    assert not store.collection(second.collection_name).exists()
    assert not CorpusIndex.objects.exists()


def _activate(*args) -> str:
    out = io.StringIO()
    call_command("activate_adapter", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_activate_adapter_command_switches_rolls_back_and_lists(shop, adapter):
    with pytest.raises(CommandError, match="has never switched index: there is nothing to roll back to"):
        _activate("--corpus", "shop", "--rollback")
    assert "corpus 'shop' is now searched in adapter v1 (240 vectors; a rollback returns to base vectors)" in \
        _activate("--corpus", "shop", "1")
    assert _firsts(shop) >= 13
    with pytest.raises(CommandError, match="already the live index"):
        _activate("--corpus", "shop", "1")
    assert "now searched in base vectors (240 vectors; a rollback returns to adapter v1)" in \
        _activate("--corpus", "shop", "--rollback")
    assert _firsts(shop) <= 2
    listing = _activate("--corpus", "shop")
    assert "is searched in base vectors" in listing and "ready" in listing.splitlines()[2]
    with pytest.raises(CommandError, match="no adapter version 9"):
        _activate("--corpus", "shop", "9")
