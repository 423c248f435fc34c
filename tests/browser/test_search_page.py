"""The search page in real headless Chromium: text, image (picked, pasted), reload, paging, cards, states."""
import json
import re
from urllib.parse import parse_qs, urlparse

import pytest

from multimodal.models import Corpus, Item
from multimodal.readers.audio import wav_encode

from ..conftest import ingest_files
from ..speech_audio import sentences_with_silence
from .conftest import XSS_TITLE, contrast_failures, screenshot, search_ready, solid_png

pytestmark = pytest.mark.django_db(transaction=True)


def result_titles(page) -> list[str]:
    return page.locator(".results .card-title").all_inner_texts()


def test_text_query_shows_cards_with_thumbnails_scores_and_explanations(page, site):
    search_ready(page)
    screenshot(page, "01-start")
    page.fill("#id_q", "red bicycle")
    page.keyboard.press("Enter")
    page.wait_for_selector(".results .card")
    assert parse_qs(urlparse(page.url).query)["q"] == ["red bicycle"]
    cards = page.locator(".results .card")
    assert cards.count() >= 5
    first_image = page.locator(".results .card-image img").first
    first_image.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=first_image.element_handle())
    scores = page.locator(".results .score").all_inner_texts()
    assert all(re.fullmatch(r"(Strong|Fair|Weak) match", text.strip()) for text in scores), scores
    marks = page.locator(".card-text mark").all_inner_texts()
    assert {"red", "bicycle"} <= {mark.lower() for mark in marks}
    why = page.locator(".results .card .why").first
    why.locator("summary").first.click()
    why.locator(".why-details summary").click()
    assert "similarity" in why.inner_text()
    screenshot(page, "02-text-results")
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways on a phone"
    screenshot(page, "02b-text-results-phone")

    page.locator(".results .card-image .thumb").first.click()
    page.wait_for_url(re.compile(r"/items/\d+\?back="))
    full = page.locator("img.full")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=full.element_handle())


def upload_requests(page) -> list[str]:
    """The POSTs to the session-upload endpoint this page makes from now on."""
    seen = []
    page.on("request", lambda request: seen.append(request.url)
            if request.method == "POST" and "/query-uploads" in request.url else None)
    return seen


def test_image_picked_with_the_file_input_finds_images_of_its_colour(page, site):
    search_ready(page)
    page.set_input_files("#file-input", files=[{"name": "greenish.png", "mimeType": "image/png",
                                                "buffer": solid_png((50, 160, 70))}])
    page.wait_for_selector(".results .card")
    assert result_titles(page)[0] == "green meadow"
    chip = page.locator(".chip-image")
    assert chip.count() == 1 and "greenish.png" in chip.inner_text()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=chip.locator("img").element_handle())
    parts = json.loads(parse_qs(urlparse(page.url).query)["parts"][0])
    assert parts[0]["type"] == "image" and parts[0]["ref"]
    assert "image greenish.png" in page.locator(".query-summary").inner_text()
    screenshot(page, "03-image-results")


def test_pasted_image_finds_images_of_its_colour(page, site):
    search_ready(page)
    page.focus("#id_q")
    page.evaluate("""bytes => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(bytes)], "clipboard.png", {type: "image/png"}));
        const event = new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true});
        document.activeElement.dispatchEvent(event);
    }""", list(solid_png((30, 60, 200))))
    page.wait_for_selector(".results .card")
    assert result_titles(page)[0] == "blue door"
    assert "clipboard.png" in page.locator(".chip-image").inner_text()


def test_dropped_image_finds_images_of_its_colour(page, site):
    search_ready(page)
    page.evaluate("""bytes => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(bytes)], "dropped.png", {type: "image/png"}));
        for (const type of ["dragenter", "dragover", "drop"]) {
            document.body.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
        }
    }""", list(solid_png((210, 30, 40))))
    page.wait_for_selector(".results .card")
    assert result_titles(page)[0] == "red bicycle"
    assert page.locator(".drop-overlay").is_hidden()


def test_a_reloaded_or_paged_query_keeps_its_image_without_uploading_it_again(page, site):
    uploads = upload_requests(page)
    search_ready(page, "/?top_k=3")
    page.fill("#id_q", "wall")
    page.set_input_files("#file-input", files=[{"name": "brick.png", "mimeType": "image/png",
                                                "buffer": solid_png((180, 50, 40))}])
    page.wait_for_selector(".results .card")
    first_page = result_titles(page)
    assert len(first_page) == 3 and "red wall" in first_page
    query = parse_qs(urlparse(page.url).query)
    assert query["q"] == ["wall"] and query["top_k"] == ["3"]

    page.reload()
    page.wait_for_selector(".results .card")
    assert result_titles(page) == first_page
    assert page.locator(".chip-image").count() == 1

    page.click("a[rel=next]")
    page.wait_for_selector(".results .card")
    assert parse_qs(urlparse(page.url).query)["page"] == ["2"]
    assert page.locator("#results-heading").inner_text().startswith("Results 4–6 of ")
    second_page = result_titles(page)
    assert not set(second_page) & set(first_page)
    assert page.locator(".chip-image").count() == 1
    assert page.input_value("#id_q") == "wall"

    # Refining: a new text with the same image goes out as a ref, not a new upload.
    page.fill("#id_q", "blue")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"q=blue"))
    page.wait_for_selector(".results .card")
    assert "ref" in parse_qs(urlparse(page.url).query)["parts"][0]
    assert len(uploads) == 1, uploads


def test_the_same_query_url_in_another_browser_session_says_the_upload_is_not_kept(page, site, browser, live_server):
    from .conftest import page_open

    search_ready(page)
    page.set_input_files("#file-input", files=[{"name": "mine.png", "mimeType": "image/png",
                                                "buffer": solid_png((50, 160, 70))}])
    page.wait_for_selector(".results .card")
    context, other = page_open(browser, live_server)
    try:
        other.goto(page.url)
        assert "no longer kept on the server: add it again" in other.locator(".message.error").inner_text()
        assert other.locator(".results .card").count() == 0
    finally:
        context.close()


def test_part_weights_negative_parts_and_fusion_mode_shape_the_query(page, site):
    search_ready(page)
    page.fill("#id_q", "red")
    page.keyboard.press("Enter")
    page.wait_for_selector(".results .card")
    before = result_titles(page)
    note = "A red bicycle leaning against a brick wall, its basket full of tulips."
    assert note in before

    page.click("#add-text-part")
    assert page.input_value("#id_q") == ""
    page.fill("#id_q", "wall")
    page.click("#add-text-part")
    weight = page.get_by_label('Weight of Text “wall”')
    weight.fill("-1")
    assert "negative" in page.locator(".chip-text").nth(1).get_attribute("class")
    page.click(".advanced summary")
    page.select_option("select[name=fusion]", "rrf")
    screenshot(page, "04-parts-with-weights")
    page.click("#search-button")
    page.wait_for_url(re.compile(r"fusion=rrf"))
    page.wait_for_selector(".results .card")
    query = parse_qs(urlparse(page.url).query)
    assert json.loads(query["parts"][0]) == [{"type": "text", "value": "red"},
                                             {"type": "text", "value": "wall", "weight": -1}]
    assert "“wall” ×−1" in page.locator(".query-summary").inner_text()
    after = result_titles(page)
    assert note not in after or after.index(note) > before.index(note)
    assert page.locator(".chip-text").count() == 2  # the chips come back from the URL


def test_more_like_this_adds_the_item_to_the_query_and_keeps_the_filters(page, site):
    search_ready(page, "/?q=red&corpus=demo&kind=image")
    page.wait_for_selector(".results .card")
    kinds = page.locator(".results .card").evaluate_all("cards => cards.map((card) => card.className)")
    assert set(kinds) == {"card card-image"}, kinds  # pictures show as gallery tiles, without a kind tag
    first = page.locator(".results .card").first
    assert first.locator(".card-title").inner_text() == "red bicycle"
    first.get_by_role("link", name="More like this").click()
    page.wait_for_selector(".results .card")
    query = parse_qs(urlparse(page.url).query)
    assert query["kind"] == ["image"] and query["corpus"] == ["demo"]
    bicycle = Item.objects.get(title="red bicycle").pk
    assert query["q"] == ["red"] and json.loads(query["parts"][0]) == [{"type": "item", "value": bicycle}]
    assert "red bicycle" not in result_titles(page)
    assert result_titles(page)[0] == "red wall"
    chip = page.locator(".chip-item")
    assert "red bicycle" in chip.inner_text()
    assert page.locator("select[name=kind]").input_value() == "image"


def test_filters_show_products_with_their_specs(page, site):
    search_ready(page)
    page.fill("#id_q", "chair")
    page.select_option("select[name=kind]", "product")
    page.click("#search-button")
    page.wait_for_selector(".results .card")
    cards = page.locator(".results .card")
    assert set(page.locator(".results .kind-tag").all_inner_texts()) == {"PRODUCT"}
    oak = cards.filter(has_text="Oak chair")
    assert oak.locator(".external-id").inner_text() == "SKU-CH-01"
    rows = oak.locator(".specs tr")
    assert [rows.nth(i).locator("th, td").all_inner_texts() for i in range(rows.count())] == [
        ["colour", "green"], ["material", "oak"], ["height", "92 cm"]]
    screenshot(page, "05-products")


@pytest.fixture(scope="module")
def three_sentences():
    return sentences_with_silence()


def test_an_audio_hit_plays_from_the_segment_second(page, site, three_sentences):
    """A real recording, ingested (Whisper tiny.en splits it into segments), searched and played."""
    talks = Corpus.objects.create(name="talks")
    report = ingest_files(talks, {"talk.wav": wav_encode(three_sentences.samples)})
    assert report.landed == 1 and not report.failures
    ranges = []
    page.on("response", lambda response: ranges.append(response.status) if ".wav" in response.url else None)
    search_ready(page, "/?q=a+red+bicycle+leaning+against+the+wall&corpus=talks&kind=segment")
    segment = page.locator(".card-segment").first
    segment.wait_for()
    second_from_s, second_to_s = three_sentences.spans_s[1]
    start_s = float(segment.locator("audio").get_attribute("data-start-s"))
    assert second_from_s - 0.5 <= start_s <= second_to_s
    assert "bicycle" in [mark.lower() for mark in segment.locator("mark").all_inner_texts()]
    assert segment.locator(".card-title").inner_text().startswith(f"talk · 0:{int(start_s):02d}–")
    assert segment.locator(".card-title a").get_attribute("href").endswith(f"#t={start_s:.2f}")
    player = segment.locator("audio")
    player.scroll_into_view_if_needed()
    player.evaluate("audio => audio.play()")
    page.wait_for_function("audio => !audio.paused && audio.currentTime > 0", arg=player.element_handle())
    position = player.evaluate("audio => audio.currentTime")
    assert start_s - 0.05 <= position < second_to_s + 1, (position, start_s)
    assert 206 in ranges, ranges  # the player asked for byte ranges, and got them
    player.evaluate("audio => audio.pause()")
    screenshot(page, "06-audio-segment")


def test_html_in_titles_and_snippets_is_shown_as_text_and_never_runs(page, site):
    search_ready(page)
    page.fill("#id_q", "bicycle note")
    page.keyboard.press("Enter")
    card = page.locator(".card-text").filter(has_text="Bike")
    card.wait_for()
    assert card.locator(".card-title").inner_text() == XSS_TITLE
    assert "<script>window.__xss = 2</script>" in card.locator(".snippet").inner_text()
    card.get_by_role("link", name="More like this").click()
    page.wait_for_selector(".chip-item")
    assert XSS_TITLE in page.locator(".chip-item").inner_text()
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src=x], img[src=y], .card-title b").count() == 0


def test_empty_query_unsupported_and_too_large_files_get_a_message_in_the_page(page, site, settings):
    settings.MULTIMODAL_MAX_QUERY_IMAGE_MB = 1
    search_ready(page)
    start_url = page.url
    page.click("#search-button")
    assert "Type what you are looking for" in page.locator("#messages").inner_text()
    assert page.url == start_url

    page.set_input_files("#file-input", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}])
    assert "“notes.txt” is not an image or a recording" in page.locator("#messages .error").inner_text()

    page.set_input_files("#file-input", files=[{"name": "fake.png", "mimeType": "image/png", "buffer": b"not a png"}])
    page.wait_for_selector("#messages .error >> text=fake.png: not an image")
    assert page.locator(".chip").count() == 0

    big = bytes(range(256)) * (5 * 1024)  # 1.25 MB
    page.set_input_files("#file-input", files=[{"name": "huge.png", "mimeType": "image/png", "buffer": big}])
    assert "“huge.png” is 1.3 MB; the limit for an image is 1.0 MB" in page.locator("#messages .error").inner_text()
    assert page.url == start_url
    screenshot(page, "07-too-large-message")


def test_no_results_and_bad_options_are_explained_in_the_page(page, site):
    search_ready(page, "/?q=cat&kind=image&min_score=0.99")
    assert "Nothing matched" in page.locator(".empty-state").inner_text()
    assert "lower the minimum score" in page.locator(".empty-state").inner_text()
    screenshot(page, "08-no-results")
    search_ready(page, "/?q=cat&top_k=1000")
    assert "Results per page can be at most 100." in page.locator("#messages .error").inner_text()


def test_server_errors_are_shown_not_swallowed(page, site, monkeypatch):
    from multimodal.web import views

    def broken(**kwargs):
        raise RuntimeError("the store is down")

    monkeypatch.setattr(views, "query_upload_store", broken)
    search_ready(page)
    page.set_input_files("#file-input", files=[{"name": "ok.png", "mimeType": "image/png",
                                                "buffer": solid_png((1, 2, 3))}])
    page.wait_for_selector("#messages .error >> text=The server had a problem with that file (HTTP 500)")
    assert page.locator(".chip").count() == 0

    monkeypatch.setattr(views, "search_response", broken)
    response = page.goto("/?q=red")
    assert response.status == 500
    assert "Something went wrong on our side" in page.locator("[role=alert]").inner_text()
    screenshot(page, "09-server-error")


def test_keyboard_slash_focuses_the_bar_enter_searches_and_tab_reaches_the_results(page, site):
    search_ready(page)
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "id_q"
    page.keyboard.type("blue")
    page.keyboard.press("Enter")
    page.wait_for_selector(".results .card")
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "id_q"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("!!document.activeElement.closest('.results')"):
            break
    assert page.evaluate("document.activeElement.closest('.card-title') !== null"), "Tab never reached a result"
    unlabelled = page.evaluate("""() => [...document.querySelectorAll('input:not([type=hidden]), select, button')]
        .filter(control => !control.hidden && control.offsetParent !== null)
        .filter(control => !(control.labels && control.labels.length) && !control.getAttribute('aria-label')
                           && !control.textContent.trim())
        .map(control => control.outerHTML)""")
    assert unlabelled == []


def test_plain_text_search_works_without_javascript(browser, live_server, site):
    from .conftest import page_open

    context, page = page_open(browser, live_server, java_script_enabled=False)
    try:
        page.goto("/")
        page.fill("#id_q", "green")
        page.keyboard.press("Enter")
        page.wait_for_selector(".results .card")
        assert parse_qs(urlparse(page.url).query)["q"] == ["green"]
        assert result_titles(page)[0] == "green meadow"
        assert page.locator("#mic").is_hidden()
        screenshot(page, "10-without-javascript")
    finally:
        context.close()


def test_text_colours_pass_wcag_aa_contrast(page, site):
    search_ready(page, "/?q=red+bicycle+chair")
    page.wait_for_selector(".results .card")
    for why in page.locator(".why summary").all()[:3]:
        why.click()
    page.click(".advanced summary")
    assert contrast_failures(page) == []
