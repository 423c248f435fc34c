"""How good a match each result is, as the page says it: a label, weak matches apart, Why in plain words."""
import re

import pytest

from multimodal.services.backgrounds import backgrounds_forget

from .conftest import contrast_failures, screenshot, search_ready

pytestmark = pytest.mark.django_db(transaction=True)
DESKTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def fresh_backgrounds():
    backgrounds_forget()


def _screenshots(page, name: str) -> None:
    for size, suffix in ((DESKTOP, ""), (PHONE, "-phone")):
        page.set_viewport_size(size)
        screenshot(page, f"19-score-{name}{suffix}")
    page.set_viewport_size(DESKTOP)


def _labels(page) -> dict[str, str]:
    titles = page.locator(".results .card-title").all_inner_texts()
    return dict(zip(titles, page.locator(".results .score").all_inner_texts()))


def test_the_pill_says_how_good_a_match_in_every_mode_weak_matches_come_last_and_why_speaks_plainly(page, site):
    search_ready(page, "/?q=red")
    page.wait_for_selector(".results .card")
    labels = _labels(page)
    assert set(labels.values()) <= {"Strong match", "Fair match", "Weak match"}, labels
    assert labels["red wall"] == "Strong match" and labels["red bicycle"] == "Strong match"
    assert not re.search(r"\d", " ".join(labels.values()))
    assert page.locator(".no-good-match").count() == 0
    assert contrast_failures(page) == []
    summary = page.locator(".query-summary").inner_text()
    assert "fusion" not in summary and " ms" not in summary, summary
    weak = page.locator(".results-weak")
    assert weak.locator("h2").inner_text() == "Weak matches"
    assert set(_labels(page.locator(".results-weak")).values()) == {"Weak match"}
    last_good = page.locator('.results[data-list="good"] .card').last.bounding_box()
    assert weak.bounding_box()["y"] > last_good["y"] + last_good["height"] - 1
    _screenshots(page, "strong")

    # Why says it in plain words; the numbers wait behind Details.
    card = page.locator('.results[data-list="good"] .card').first
    why = card.locator(".why")
    why.locator("summary").first.click()
    plain = why.locator(".why-plain")
    assert plain.is_visible() and "Matches your words “red” strongly." in plain.inner_text()
    details = why.locator(".why-details")
    assert not details.locator("ul").is_visible() and "similarity" not in why.inner_text()
    assert not re.search(r"\d\.\d{3}", why.inner_text())
    details.locator("summary").click()
    shown = details.inner_text()
    assert details.locator("ul").is_visible() and "similarity" in shown and "vector fusion" in shown
    assert re.search(r"Score \d\.\d{3}", shown) and "spreads above the collection's median" in shown
    assert contrast_failures(page) == []
    card.scroll_into_view_if_needed()
    _screenshots(page, "why")

    search_ready(page, "/?q=red&fusion=rrf")
    page.wait_for_selector(".results .card")
    assert _labels(page) == labels  # rrf's scores are ≈0.02, the labels the same


def test_a_nonsense_query_says_nothing_matched_well_and_still_lists_the_weak_matches(page, site):
    search_ready(page)
    page.fill("#id_q", "xqzv blorp")
    page.keyboard.press("Enter")
    page.wait_for_selector(".results .card")
    assert "Nothing matched your search well." in page.locator(".no-good-match").inner_text()
    assert page.locator('.results[data-list="good"]').count() == 0
    weak = page.locator(".results-weak")
    assert weak.locator("h2").inner_text() == "Weak matches"
    assert weak.locator(".card").count() >= 3
    assert set(weak.locator(".score").all_inner_texts()) == {"Weak match"}
    assert contrast_failures(page) == []
    _screenshots(page, "no-good-match")
