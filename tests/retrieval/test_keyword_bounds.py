"""The keyword channel's cost bound on SQLite FTS5: a query of common words ranks a bounded number of
matches, yet still finds the items that hold all of its words, however old they are."""
import hashlib

import pytest

from multimodal.models import Corpus, Item
from multimodal.retrieval import keyword

pytestmark = pytest.mark.django_db


def _item(corpus: Corpus, text: str) -> int:
    return Item.objects.create(corpus=corpus, kind=Item.Kind.TEXT, title=text, text=text,
                               content_hash=hashlib.sha256(text.encode()).hexdigest()).pk


def _found(text: str, corpus: Corpus) -> list[int]:
    return [item_id for item_id, _ in keyword.keyword_search(text, items=Item.objects.filter(corpus=corpus), limit=20)]


def test_a_query_of_common_words_finds_the_items_holding_all_of_them_however_old(monkeypatch):
    monkeypatch.setattr(keyword, "MAX_RANKED_MATCHES", 5)  # a word in more than 5 items is common here
    corpus = Corpus.objects.create(name="shop")
    phrase = _item(corpus, "an oak chair lamp")  # the oldest items: outside the newest 5 matches of either word
    both = _item(corpus, "a lamp beside an oak chair")
    for number in range(8):
        _item(corpus, f"chair number {number}")
        _item(corpus, f"lamp number {number}")
        _item(corpus, f"vase number {number}")

    assert _found("chair lamp", corpus) == [phrase, both]  # all the words, the whole phrase first
    either = _found("chair vase", corpus)  # no item holds both: any of them, the bound holding
    assert 0 < len(either) <= 5
    assert all({"chair", "vase"} & set(Item.objects.get(pk=pk).text.split()) for pk in either)
    assert len(_found("chair", corpus)) == 5
    assert set(_found("oak", corpus)) == {phrase, both}  # a rare word: every match


def test_a_common_word_ranks_its_matches_by_the_column_holding_it_then_newest_first(monkeypatch):
    monkeypatch.setattr(keyword, "MAX_RANKED_MATCHES", 5)
    corpus = Corpus.objects.create(name="shop")

    def item(title: str, text: str, external_id: str = "") -> int:
        return Item.objects.create(corpus=corpus, kind=Item.Kind.PRODUCT, title=title, text=text,
                                   external_id=external_id,
                                   content_hash=hashlib.sha256(f"{title} {text} {external_id}".encode()).hexdigest()).pk

    older = [item(f"note {number}", f"a chair, note {number}") for number in range(3)]
    titled = item("Chair", "a seat")
    coded = item("stool", "a seat", external_id="CHAIR-7")  # the word in a product code
    newer = [item(f"note {number}", f"a chair, note {number}") for number in range(3, 5)]

    # The newest 5 of 7 matches: the title above the product code above the bodies, newest first among equals.
    assert _found("chair", corpus) == [titled, coded, newer[1], newer[0], older[2]]
