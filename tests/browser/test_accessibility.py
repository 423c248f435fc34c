"""axe-core in real Chromium over every state of the search page and an item page, wide and on a phone:
no serious or critical violation of WCAG 2.2 A/AA (target size included), one h1 per page."""
import pytest

from multimodal.models import Item

from .conftest import axe_violations, search_ready

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1366, "height": 900}


def test_every_state_of_the_search_page_passes_axe(page, site):
    picture = Item.objects.filter(kind=Item.Kind.IMAGE).first()
    # Each state at the size where it is most crowded (small targets, folded options), the results at both.
    states = [
        ("start", "/", WIDE),
        ("results", "/?q=red+bicycle", WIDE),
        ("results", "/?q=red+bicycle", PHONE),
        ("nothing good", "/?q=xqzv+blorp", WIDE),
        ("error", "/?q=chair&page=0", PHONE),
        ("filters set", "/?q=chair&kind=product&fusion=rrf", PHONE),
        ("item", picture.get_absolute_url(), PHONE),
    ]
    found = {}
    for state, path, viewport in states:
        page.set_viewport_size(viewport)
        if state == "item":
            page.goto(path)
        else:
            search_ready(page, path)
        if state == "results":
            page.locator(".results .why summary").first.click()
        found.update({f"{state} ({viewport['width']} px): {line}": None for line in axe_violations(page)})
    assert not found, "\n".join(found)
