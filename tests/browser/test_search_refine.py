"""Refining a search in real headless Chromium: a result's page leads back to its search, "More like this" and
"Less like this" add the item to the query, changed chips mark the results out of date, a segment's player
stops at its end, and without scripts a part of the query can be removed."""
import json
import re
from urllib.parse import parse_qs, urlparse

import pytest

from multimodal.models import Item

from .conftest import page_open, screenshot, search_ready, segment_add, solid_png

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def both_sizes(page, name: str) -> None:
    """Screenshots of the page as it is, at desktop and phone sizes (the page is left at desktop size)."""
    page.set_viewport_size(DESKTOP)
    screenshot(page, f"19-refine-{name}")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways"
    screenshot(page, f"19-refine-{name}-phone")
    page.set_viewport_size(DESKTOP)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlparse(url).query)


def test_a_result_page_leads_back_to_the_same_search_and_on_to_refine_it_without_javascript(browser, live_server, site):
    context, page = page_open(browser, live_server, java_script_enabled=False)
    try:
        search = "/?q=red&corpus=demo&kind=image&top_k=2&page=2"
        page.goto(search)
        assert page.locator("#results-heading").inner_text().startswith("Results 3–4")
        card = page.locator(".results .card").first
        title = card.locator(".card-title").inner_text()
        card.locator(".card-title a").click()
        page.wait_for_url(re.compile(r"/items/\d+\?back="))
        item = Item.objects.get(pk=int(re.search(r"/items/(\d+)", page.url).group(1)))
        assert page.locator("h1").inner_text() == title == item.title

        back = page.get_by_role("link", name="← Back to results")
        assert urlparse(back.get_attribute("href")).path == "/"
        assert query_of(back.get_attribute("href")) == query_of(search)
        more = page.get_by_role("link", name=re.compile("^More like this"))
        refined = query_of(more.get_attribute("href"))
        assert refined["q"] == ["red"] and refined["kind"] == ["image"] and "page" not in refined
        assert json.loads(refined["parts"][0]) == [{"type": "item", "value": item.pk}]
        image_search = query_of(page.get_by_role("link", name="Search with this image").get_attribute("href"))
        assert image_search == {"item": [str(item.pk)], "corpus": ["demo"], "kind": ["image"], "top_k": ["2"]}
        for link in (back, more):
            box = link.bounding_box()
            assert box["height"] >= 24 and box["width"] >= 24, box
        both_sizes(page, "detail-back")

        back.click()
        page.wait_for_selector(".results .card")
        assert query_of(page.url) == query_of(search)
        assert page.locator("#results-heading").inner_text().startswith("Results 3–4")

        # The way back only ever leads to this site's search page, with the search's own parameters.
        page.goto(f"/items/{item.pk}?back=https%3A%2F%2Fevil.example%2F")
        assert page.get_by_role("link", name="← New search").get_attribute("href") == "/"
        page.goto(f"/items/{item.pk}?back=q%3Dred%26next%3Dhttps%3A%2F%2Fevil.example")
        assert page.get_by_role("link", name="← Back to results").get_attribute("href") == "/?q=red"
    finally:
        context.close()


def test_more_and_less_like_this_add_the_item_to_the_query_as_positive_and_negative_chips(page, site):
    search_ready(page, "/?q=red&kind=image")
    page.wait_for_selector(".results .card")
    wall = page.locator(".results .card").filter(has=page.locator(".card-title", has_text="red wall"))
    for name in ("More like this", "Less like this"):
        box = wall.get_by_role("link", name=name).bounding_box()
        assert box["height"] >= 24 and box["width"] >= 24, (name, box)
    wall.get_by_role("link", name="More like this").click()
    page.wait_for_url(re.compile(r"parts="))
    page.wait_for_selector("#search-form[data-ready=true]", state="attached")
    wall_id = Item.objects.get(title="red wall").pk
    assert json.loads(query_of(page.url)["parts"][0]) == [{"type": "item", "value": wall_id}]
    assert page.input_value("#id_q") == "red"

    door = page.locator(".results .card").filter(has=page.locator(".card-title", has_text="blue door"))
    door.locator(".card-title a").focus()
    page.keyboard.press("-")  # the keyboard's "less like this" on a focused result
    page.wait_for_url(re.compile(r"weight"))
    page.wait_for_selector("#search-form[data-ready=true]", state="attached")
    door_id = Item.objects.get(title="blue door").pk
    query = query_of(page.url)
    assert json.loads(query["parts"][0]) == [{"type": "item", "value": wall_id},
                                             {"type": "item", "value": door_id, "weight": -0.5}]
    assert query["q"] == ["red"] and query["kind"] == ["image"]
    chips = page.locator(".chip-item")
    assert chips.count() == 2
    assert "red wall" in chips.nth(0).inner_text() and "negative" not in chips.nth(0).get_attribute("class")
    assert "Less like" in chips.nth(1).inner_text() and "blue door" in chips.nth(1).inner_text()
    assert "negative" in chips.nth(1).get_attribute("class")
    assert chips.nth(1).locator("input[type=number]").input_value() == "-0.5"
    for chip in (chips.nth(0), chips.nth(1)):
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=chip.locator("img").element_handle())
    titles = page.locator(".results .card-title").all_inner_texts()
    assert titles and not {"red wall", "blue door"} & set(titles)
    both_sizes(page, "positive-and-negative-chips")


def test_a_changed_weight_or_removed_chip_marks_the_results_out_of_date_until_searched(page, site):
    parts = json.dumps([{"type": "text", "value": "red"}, {"type": "text", "value": "wall"}])
    search_ready(page, f"/?{'&'.join(['parts=' + parts, 'kind=image'])}")
    page.wait_for_selector(".results .card")
    banner = page.locator(".stale-banner")
    assert banner.count() == 0 or banner.is_hidden()

    weight = page.get_by_label("Weight of Text “wall”")
    weight.fill("-1")
    assert banner.is_visible() and "Press Search" in banner.inner_text()
    assert float(page.evaluate("getComputedStyle(document.querySelector('#results > :not(.stale-banner)')).opacity")) < 1
    both_sizes(page, "stale-results")
    weight.fill("1")  # back to the query the results are for
    assert banner.is_hidden()

    page.get_by_role("button", name="Remove Text “wall”").click()
    assert banner.is_visible()
    page.get_by_role("button", name="Search again").click()
    page.wait_for_url(lambda url: "wall" not in url)
    page.wait_for_selector(".results .card")
    assert json.loads(query_of(page.url)["parts"][0]) == [{"type": "text", "value": "red"}]
    assert page.locator(".stale-banner").count() == 0 or page.locator(".stale-banner").is_hidden()


def test_a_segment_player_stops_at_the_segment_end_and_one_player_plays_at_a_time(page, site):
    recording = Item.objects.get(kind=Item.Kind.AUDIO, title="Design podcast")
    segment_add(recording, start_s=10.0, end_s=10.8, text="a red chair")
    search_ready(page, "/?q=chair&kind=segment&group=false")
    short = page.locator(".card-segment audio[data-start-s='10.0']")
    other = page.locator(".card-segment audio[data-start-s='5.0']")
    short.wait_for()
    assert short.get_attribute("data-end-s") == "10.80"
    stopped = short.evaluate("""audio => new Promise((resolve, reject) => {
        audio.addEventListener("pause", () => resolve([audio.currentTime, audio.ended]), { once: true });
        setTimeout(() => reject(new Error("still playing at " + audio.currentTime)), 8000);
        audio.play();
    })""")
    assert 10.8 <= stopped[0] < 11.1 and stopped[1] is False, stopped

    other.evaluate("audio => audio.play()")
    page.wait_for_function("audio => !audio.paused && audio.currentTime > 5", arg=other.element_handle())
    short.evaluate("audio => audio.play()")  # played again from its end: the segment starts over
    page.wait_for_function("audio => !audio.paused", arg=short.element_handle())
    assert other.evaluate("audio => audio.paused"), "two players play at once"
    assert short.evaluate("audio => audio.currentTime") < 10.8
    short.evaluate("audio => audio.pause()")


def test_without_javascript_an_image_added_to_the_query_can_be_removed(browser, live_server, site):
    context, page = page_open(browser, live_server, java_script_enabled=False)
    try:
        page.goto("/?q=green")
        page.set_input_files(".noscript-upload input[name=image]", files=[
            {"name": "greenish.png", "mimeType": "image/png", "buffer": solid_png((50, 160, 70))}])
        page.click(".noscript-upload button[type=submit]")
        page.wait_for_selector(".results .card")
        query = query_of(page.url)
        assert query["q"] == ["green"] and json.loads(query["parts"][0])[0]["type"] == "image"
        chip = page.locator(".static-chips .chip-image")
        assert "greenish.png" in chip.inner_text()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=chip.locator("img").element_handle())
        remove = chip.get_by_role("link", name="Remove greenish.png from the query")
        box = remove.bounding_box()
        assert box["height"] >= 24 and box["width"] >= 24, box
        both_sizes(page, "nojs-remove-part")

        remove.click()
        page.wait_for_selector(".results .card")
        assert query_of(page.url) == {"q": ["green"]}
        assert page.locator(".static-chips").count() == 0
        assert page.locator(".results .card-title").first.inner_text() == "green meadow"
    finally:
        context.close()
