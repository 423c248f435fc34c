"""Saved searches in real headless Chromium: save the search on screen, see the count of what was ingested since,
open what's new (only new items that rank in its top N), and opening it clears the count."""
import re

import pytest

from multimodal.models import Item

from ..conftest import ingest_files
from .conftest import axe_violations, contrast_failures, page_open, screenshot, search_ready

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}


def both_sizes(page, name: str) -> None:
    """Screenshots at desktop and phone sizes, neither scrolling sideways nor failing contrast or axe's checks (the
    page is left at desktop size)."""
    page.set_viewport_size(DESKTOP)
    assert axe_violations(page) == []
    for viewport, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
        page.set_viewport_size(viewport)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name} scrolls sideways"
        assert contrast_failures(page) == []
        screenshot(page, f"20-saved-{name}{suffix}")
    page.set_viewport_size(DESKTOP)


@pytest.fixture
def reader_page(browser, live_server, django_user_model, client, settings):
    """A signed-in person (not staff) in Chromium."""
    client.force_login(django_user_model.objects.create_user("reader", password="pw-reader-123"))
    context, page = page_open(browser, live_server)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}])
    yield page
    problems = page.problems.errors
    context.close()
    assert not problems, problems


def test_a_saved_search_counts_what_was_ingested_since_and_shows_whats_new(reader_page, site, settings):
    page = reader_page
    settings.MULTIMODAL_SAVED_SEARCH_TOP_N = 3
    page.set_viewport_size(DESKTOP)
    search_ready(page, "/?q=red+bicycle&corpus=demo")
    page.get_by_text("Save this search", exact=True).click()
    name = page.get_by_label("Save this search as")
    assert name.input_value() == "red bicycle"
    both_sizes(page, "save-form")
    name.fill("Red bicycles")
    page.get_by_role("button", name="Save search").click()
    page.wait_for_url(re.compile(r"/saved/#saved-\d+$"))
    card = page.locator(".saved-search", has_text="Red bicycles")
    assert card.locator(".new-count").inner_text() == "Nothing new"
    assert "Saved “Red bicycles”" in page.locator(".message").inner_text()

    # Two items land: one ranks first for the search, the other matches none of its words.
    ingest_files(site, {"new bicycle.txt": b"Red bicycle\nred bicycle", "cat nap.txt": b"Cat\nthe cat"})
    page.reload()
    assert card.locator(".new-count").inner_text() == "2 new"
    assert "2 items added since" in card.inner_text()
    both_sizes(page, "list")

    card.get_by_role("link", name=re.compile("^What's new")).click()
    page.wait_for_url(re.compile(r"/saved/\d+/new$"))
    assert page.locator("h1").inner_text() == "What's new in “Red bicycles”"
    new_bicycle = Item.objects.get(text__startswith="Red bicycle\n")
    titles = page.locator(".whats-new .card-title").all_inner_texts()
    assert titles == [new_bicycle.title]  # the cat is new too, but does not rank in its top 3
    both_sizes(page, "whats-new")

    page.get_by_role("link", name="Open the search").click()
    page.wait_for_url(re.compile(r"/\?q=red\+bicycle&corpus=demo$"))
    assert new_bicycle.title in page.locator(".results .card-title").all_inner_texts()
    page.goto("/saved/")
    assert page.locator(".saved-search", has_text="Red bicycles").locator(".new-count").inner_text() == "Nothing new"
