"""Near duplicates in the browser: a result's folded copies and shots open under it, and staff resolve a group."""
import pytest

from multimodal.models import Item

from ..conftest import permissions_grant
from ..services.test_duplicates import bursts, palette_encoder  # noqa: F401 (fixtures)
from .conftest import contrast_failures, page_open, screenshot

pytestmark = pytest.mark.django_db(transaction=True)
DESKTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}


def test_folded_duplicates_open_under_their_result_and_staff_delete_the_unticked(
        bursts, browser, live_server, django_user_model, client, settings):  # noqa: F811
    staff = django_user_model.objects.create_user("editor", password="pw-editor-123", is_staff=True)
    permissions_grant(staff, "delete_item")
    client.force_login(staff)
    context, page = page_open(browser, live_server)
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME,
                          "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": live_server.url}])
    try:
        page.set_viewport_size(DESKTOP)
        page.goto(f"/?item={bursts['harbour'].pk}&corpus=trip&collapse=similar")
        fold = page.locator("details.duplicates")
        assert fold.count() == 1 and fold.locator("summary").inner_text() == "+2 similar"
        assert not fold.locator(".duplicate-list").is_visible()
        fold.locator("summary").click()
        shown = fold.locator(".duplicate-list li")
        assert shown.count() == 2 and shown.first.is_visible()
        assert {shown.nth(index).locator(".duplicate-level").inner_text() for index in range(2)} == \
            {"same picture", "similar shot"}
        box = shown.first.locator("img").bounding_box()
        assert box and box["width"] > 40 and box["height"] > 30
        assert contrast_failures(page) == []
        screenshot(page, "20-dup-results")
        page.set_viewport_size(PHONE)
        fold.scroll_into_view_if_needed()
        screenshot(page, "20-dup-results-phone", full_page=False)

        page.set_viewport_size(DESKTOP)
        page.goto("/duplicates?level=similar")
        group = page.locator(".duplicate-group")
        assert group.count() == 1 and group.locator(".duplicate-member").count() == 4
        assert group.locator("input[name=keep]:checked").count() == 1
        assert contrast_failures(page) == []
        screenshot(page, "20-dup-staff")
        page.set_viewport_size(PHONE)
        screenshot(page, "20-dup-staff-phone", full_page=False)
        kept = int(group.locator("input[name=keep]:checked").get_attribute("value"))
        group.locator("button", has_text="Delete the unticked").click()
        page.wait_for_selector("text=Deleted 3 items")
        assert set(Item.objects.values_list("title", flat=True)) == {Item.objects.get(pk=kept).title, "market"}
        assert "No groups" in page.locator("main").inner_text()
    finally:
        problems = page.problems.errors
        context.close()
    assert not problems, problems
