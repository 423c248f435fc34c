"""A recording's page in real headless Chromium: a search hit's link starts the player at the hit's
second, and the transcript's timestamps seek it (real Whisper tiny.en transcribed the recording)."""
import pytest

from multimodal.models import Corpus, Item
from multimodal.query.types import SearchQuery
from multimodal.selectors import search_response

from ..conftest import ingest_files
from ..speech_audio import encoded, sentences_with_silence
from .conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)
PLAYER_TIME = "document.getElementById('player').currentTime"


@pytest.fixture
def talk(deterministic_encoder):
    corpus = Corpus.objects.create(name="talks")
    report = ingest_files(corpus, {"talk.webm": encoded(sentences_with_silence().samples, "webm")})
    assert report.landed == 1, report.failures
    return Item.objects.get(kind=Item.Kind.AUDIO)


def _current_passage(page) -> str:
    return page.locator(".transcript li.current .segment-text").inner_text()


def test_a_hit_plays_from_its_second_and_timestamps_seek_the_player(page, live_server, talk):
    segments = list(talk.children.order_by("start_s"))
    hit = search_response(query=SearchQuery(text="a red bicycle leaning against the wall", top_k=1))["results"][0]
    assert hit["id"] == segments[1].pk

    page.goto(hit["detail_url"])  # the recording's page, #t=<the segment's start>
    page.wait_for_function(f"() => {PLAYER_TIME} >= {segments[1].start_s - 0.05}")
    # Playing from there (the test browser may autoplay): not from the start, not past the passage.
    assert segments[1].start_s - 0.05 <= page.evaluate(PLAYER_TIME) < segments[1].end_s
    page.wait_for_selector(".transcript li.current")
    assert _current_passage(page) == segments[1].text
    screenshot(page, "20-recording-from-a-hit")

    third = segments[2]
    page.click(f"#segment-{third.pk} a.timestamp")
    page.wait_for_function(f"() => {PLAYER_TIME} >= {third.start_s - 0.05}")
    assert page.evaluate(PLAYER_TIME) < third.end_s
    assert page.url.endswith(f"#t={third.start_s:.2f}")  # the address can be shared to start there
    page.wait_for_function(f"() => document.querySelector('#segment-{third.pk}').classList.contains('current')")
    assert _current_passage(page) == third.text
