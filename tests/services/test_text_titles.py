"""Notes are titled by their heading or first sentence when ingested, and so are notes stored before."""
import pytest

from multimodal.models import Corpus, Item

from ..conftest import ingest_files

pytestmark = pytest.mark.django_db

PARAGRAPH = ("Red swatches for the bicycle bags arrived on Tuesday from the mill in Porto, in twelve colours and "
             "three weights. The blue linen is the one we liked best, the green one is too thin.")


def test_a_paragraph_note_gets_its_first_sentence_and_a_markdown_note_its_heading(client, deterministic_encoder,
                                                                                 settings):
    settings.MULTIMODAL_PASSAGE_WORDS = 12  # the paragraph is cut into passages, titled after the note
    settings.MULTIMODAL_PASSAGE_OVERLAP_WORDS = 0
    corpus = Corpus.objects.create(name="notes")
    report = ingest_files(corpus, {
        "mill.txt": PARAGRAPH.encode(),
        "swatches.md": b"# **Red** swatches\n\nThe red linen for the [bicycle bags](https://example.org/bags).\n",
        "wall.txt": b"\n\n   red\n",
    })
    assert report.landed == 3 and not report.failures
    sentence = "Red swatches for the bicycle bags arrived on Tuesday from the mill in Porto, in…"
    assert Item.objects.get(kind=Item.Kind.TEXT, source_name="mill.txt").title == sentence
    assert Item.objects.get(kind=Item.Kind.TEXT, source_name="swatches.md").title == "Red swatches"
    passages = Item.objects.filter(kind=Item.Kind.PASSAGE).order_by("pk").values_list("title", flat=True)
    assert list(passages)[:2] == [f"{sentence}, passage 1", f"{sentence}, passage 2"]

    results = client.get("/api/search", {"q": "red", "kind": "text"}).json()["results"]
    assert {result["title"] for result in results} == {sentence, "Red swatches", "red"}
    markdown = next(result for result in results if result["title"] == "Red swatches")
    assert markdown["snippet"] == "Red swatches The red linen for the bicycle bags."
    assert "".join(span["text"] for span in markdown["highlight"]) == markdown["snippet"]

    # Stored before titles were derived: the whole first line was the title. It reads short all the same.
    Item.objects.filter(kind=Item.Kind.TEXT, source_name="mill.txt").update(title=PARAGRAPH)
    results = client.get("/api/search", {"q": "red", "kind": "text"}).json()["results"]
    assert sentence in {result["title"] for result in results}
