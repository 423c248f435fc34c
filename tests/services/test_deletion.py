"""Deleting items or corpora removes their vectors (in one batch), and a rolled-back delete keeps them."""
import pytest
from django.db import transaction

from multimodal import encoders, store
from multimodal.models import Corpus, Item

from ..conftest import image_bytes, ingest_files

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.engines]


def _vector_count() -> int:
    return store.collection_for(encoders.get()).count()


@pytest.fixture
def two_corpora(deterministic_encoder):
    shop, notes = Corpus.objects.create(name="shop"), Corpus.objects.create(name="notes")
    ingest_files(shop, {f"{index}.txt": f"red chair {index}".encode() for index in range(30)}
                 | {"red.png": image_bytes((255, 0, 0))})
    ingest_files(notes, {"cat.txt": b"a cat", "wall.txt": b"a wall"})
    store.collection_for(encoders.get()).flush()
    return shop, notes


def test_deleting_a_corpus_removes_all_its_vectors_and_files_in_one_batch(two_corpora, monkeypatch):
    shop, notes = two_corpora
    assert _vector_count() == 33
    thumbnail = shop.items.get(title="red").thumbnail
    assert thumbnail.storage.exists(thumbnail.name)
    calls = []
    original = store.items_delete_everywhere
    monkeypatch.setattr(store, "items_delete_everywhere", lambda ids: calls.append(len(ids)) or original(ids))
    shop.delete()
    assert calls == [31]
    assert _vector_count() == 2
    assert not thumbnail.storage.exists(thumbnail.name)
    assert [hit.item_id for hit in store.collection_for(encoders.get()).search(
        encoders.get().encode_text(["red chair"])[0], limit=10)] == sorted(notes.items.values_list("pk", flat=True))


def test_a_rolled_back_delete_keeps_the_vectors_and_a_later_delete_still_works(two_corpora):
    shop, notes = two_corpora
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            Item.objects.filter(corpus=notes).delete()
            raise RuntimeError("changed my mind")
    assert _vector_count() == 33
    with transaction.atomic():
        with pytest.raises(RuntimeError):
            with transaction.atomic():  # a savepoint that rolls back inside a transaction that commits
                notes.items.get(title="a cat").delete()
                raise RuntimeError("not this one")
        notes.items.get(title="a wall").delete()
    assert _vector_count() == 32
    assert notes.items.filter(title="a cat").exists()
