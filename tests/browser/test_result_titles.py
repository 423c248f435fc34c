"""What a result is called on the page: short titles, recording parts with their time, the corpus, and
the search model still loading after a start."""
import threading

import pytest

from multimodal import encoders
from multimodal.models import Corpus, Item

from ..conftest import DETERMINISTIC, DeterministicEncoder, ingest_files
from .conftest import screenshot, search_ready

pytestmark = pytest.mark.django_db(transaction=True)

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
PARAGRAPH = ("Red swatches for the bicycle bags arrived on Tuesday from the mill in Porto, in twelve colours "
             "and three weights. The blue linen is the one we liked best, the green one is too thin.")
MARKDOWN = ("# Swatches\n\nThe **red** linen for the [bicycle bags](https://example.org/bags) and `wax` "
            "for the _canvas_.\n")


def cards_by_title(page) -> dict[str, object]:
    cards = page.locator(".results .card")
    return {cards.nth(i).locator(".card-title").inner_text(): cards.nth(i) for i in range(cards.count())}


def test_results_have_short_titles_markdown_as_text_and_their_corpus_when_several(page, site, client):
    archive = Corpus.objects.create(name="archive")
    report = ingest_files(archive, {
        "bicycle note.txt": Item.objects.get(corpus=site, source_name="bicycle note.txt").text.encode(),
        "swatches.md": MARKDOWN.encode(),
        "mill.txt": PARAGRAPH.encode(),
    })
    assert report.landed == 3 and not report.failures
    # Stored before titles were derived: a note's whole paragraph was its title.
    Item.objects.filter(kind=Item.Kind.TEXT, source_name="mill.txt").update(title=PARAGRAPH)

    page.set_viewport_size(DESKTOP)
    search_ready(page, "/?q=red+bicycle&kind=text")
    page.wait_for_selector(".results .card")
    cards = cards_by_title(page)
    paragraph_title = "Red swatches for the bicycle bags arrived on Tuesday from the mill in Porto, in…"
    assert paragraph_title in cards and "Swatches" in cards and "swatches" not in cards, list(cards)
    title_box = cards[paragraph_title].locator(".card-title").bounding_box()
    line_px = cards[paragraph_title].locator(".card-title").evaluate("h => parseFloat(getComputedStyle(h).lineHeight)")
    assert title_box["height"] <= 3 * line_px + 1  # three lines at most, not the whole paragraph
    snippet = cards["Swatches"].locator(".snippet").inner_text()
    assert snippet.startswith("Swatches The red linen for the bicycle bags and wax for the canvas.")
    assert not [syntax for syntax in ("#", "**", "](", "`", "_canvas_") if syntax in snippet], snippet
    assert {"red", "bicycle"} <= {mark.lower() for mark in cards["Swatches"].locator("mark").all_inner_texts()}
    notes = page.locator(".results .card", has_text="its basket full of tulips")
    assert sorted(notes.locator(".corpus-tag").all_text_contents()) == ["Corpus archive", "Corpus demo"]
    assert page.locator(".results .card").count() == page.locator(".results .card .corpus-tag").count()
    screenshot(page, "19-titles-corpora")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "19-titles-corpora-phone")

    search_ready(page, "/?q=red+bicycle&kind=text&corpus=demo")  # one corpus searched: no labels
    page.wait_for_selector(".results .card")
    assert page.locator(".results .corpus-tag").count() == 0

    api = client.get("/api/search", {"q": "red bicycle", "kind": "text", "corpus": "archive"}).json()
    assert {paragraph_title, "Swatches", "A red bicycle leaning against a brick wall, its basket full of tulips."} == {
        result["title"] for result in api["results"]}


def test_recording_segments_are_titled_by_recording_and_time_grouped_or_not(page, site, client):
    page.set_viewport_size(DESKTOP)
    search_ready(page, "/?q=blue+chair+welcome+design+podcast&kind=segment&group=false")
    page.wait_for_selector(".results .card-segment")
    assert sorted(page.locator(".results .card-segment .card-title").all_inner_texts()) == [
        "Design podcast · 0:00–0:04", "Design podcast · 0:05–0:09"]
    screenshot(page, "19-titles-segments")
    page.set_viewport_size(PHONE)
    screenshot(page, "19-titles-segments-phone")

    page.set_viewport_size(DESKTOP)
    search_ready(page, "/?q=blue+chair+welcome+design+podcast&kind=segment")  # grouped: one card, the other part under it
    page.wait_for_selector(".results .card-segment")
    grouped = page.locator(".results .card-segment")
    assert grouped.count() == 1
    assert grouped.locator(".card-title").inner_text() in ("Design podcast · 0:00–0:04", "Design podcast · 0:05–0:09")
    assert grouped.locator(".also-matched a").inner_text() in ("0:00–0:04", "0:05–0:09")

    api = client.get("/api/search", {"q": "blue chair", "kind": "segment", "group": "false"}).json()
    assert [result["title"] for result in api["results"]][:1] == ["Design podcast · 0:05–0:09"]


@pytest.fixture
def encoder_loading(site):
    """The search model not loaded yet, its load held until the test lets it finish (no sleeps)."""
    release = threading.Event()

    def held_load():
        assert release.wait(30), "the test never let the model load"
        return DeterministicEncoder()

    encoders.register(DETERMINISTIC, held_load)
    yield release
    release.set()


# Held in the page: while the browser waits for a navigation's answer it runs none of the test's scripts, so
# the test keeps the search from leaving the page until it has read what the page shows meanwhile.
SEARCHES_HELD = """window.__searchesHeld = true;
window.navigation.addEventListener("navigate", (event) => { if (window.__searchesHeld) event.preventDefault(); });"""


def test_a_search_sent_while_the_model_loads_says_so_until_it_is_ready(page, encoder_loading):
    page.add_init_script(SEARCHES_HELD)
    page.set_viewport_size(DESKTOP)
    search_ready(page)
    status = page.locator("#model-status")
    assert status.get_attribute("data-model-ready") == "false" and status.is_hidden()
    page.fill("#id_q", "red bicycle")
    page.keyboard.press("Enter")
    status.wait_for(state="visible")
    assert "Loading the search model — the first search after a start takes a few seconds" in status.inner_text()
    assert status.locator("progress").is_visible()
    screenshot(page, "19-titles-model-loading")
    page.set_viewport_size(PHONE)
    assert status.locator("progress").bounding_box()["width"] > 300
    screenshot(page, "19-titles-model-loading-phone")

    encoder_loading.set()  # the model is loaded (by this test, as the start-up thread would)
    encoders.get()
    page.wait_for_selector("#model-status[data-model-ready=true]", state="attached")
    page.evaluate("window.__searchesHeld = false")
    page.keyboard.press("Enter")
    page.wait_for_selector(".results .card")
    status = page.locator("#model-status")
    assert status.get_attribute("data-model-ready") == "true" and status.is_hidden()
