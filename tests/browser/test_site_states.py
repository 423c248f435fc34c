"""The site as a new visitor and a member of staff meet it: logging in and out from the header, the upload
form's corpus field, errors said in plain words with a way back, an empty index, and the API docs on a phone."""
import pytest

from multimodal.models import Corpus

from ..conftest import UPLOADER_PERMISSIONS, ingest_files, permissions_grant
from .conftest import PageProblems, contrast_failures, picture, screenshot, search_ready

pytestmark = pytest.mark.django_db(transaction=True)
DESKTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}


def both_sizes(page, name: str) -> None:
    """Screenshots of the page as it is, at 1366×900 and at 390×844 (nothing may scroll sideways on the phone)."""
    page.set_viewport_size(DESKTOP)
    screenshot(page, name)
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)


def staff_create(django_user_model):
    user = django_user_model.objects.create_user("editor", password="pw-editor-123", is_staff=True)
    return permissions_grant(user, *UPLOADER_PERMISSIONS)


def test_a_visitor_logs_in_from_the_header_lands_back_and_staff_see_upload(page, site, django_user_model):
    staff_create(django_user_model)
    search_ready(page, "/?q=red+bicycle")
    nav = page.locator(".site-header nav")
    assert nav.get_by_role("link", name="Upload").count() == 0
    log_in = nav.get_by_role("link", name="Log in")
    assert log_in.get_attribute("href") == "/admin/login/?next=/%3Fq%3Dred%2Bbicycle"
    both_sizes(page, "19-api-header-logged-out")

    log_in.click()
    page.fill("#id_username", "editor")
    page.fill("#id_password", "pw-editor-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/?q=red+bicycle")
    page.wait_for_selector(".results .card")
    assert nav.get_by_role("link", name="Upload").is_visible()
    assert nav.get_by_role("button", name="Log out").is_visible()
    assert contrast_failures(page) == []

    nav.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/?q=red+bicycle")
    assert nav.get_by_role("link", name="Log in").is_visible()
    assert nav.get_by_role("link", name="Upload").count() == 0


def test_the_upload_form_checks_its_corpus_name_and_starts_with_the_corpus_there_is(page, site, django_user_model):
    """The pattern compiles in Chromium (v flag: a bare '-' in a class is an error that switches the check off,
    with a console error), and the field starts with the only corpus instead of empty."""
    staff_create(django_user_model)
    console_errors = []
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.goto("/admin/login/?next=/upload")
    page.fill("#id_username", "editor")
    page.fill("#id_password", "pw-editor-123")
    page.click("input[type=submit]")
    page.wait_for_url("**/upload")
    corpus = page.locator("#id_corpus")
    assert corpus.input_value() == "demo"
    assert page.locator("#corpora option").evaluate_all("options => options.map(option => option.value)") == ["demo"]
    corpus.fill("holiday photos!")
    assert corpus.evaluate("input => input.validity.patternMismatch")
    corpus.fill("holiday-photos_2025")
    assert corpus.evaluate("input => input.validity.valid")
    assert console_errors == []
    # Logging out of a page for staff lands on the search page, not on the login form again.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_selector("#search-form")
    assert page.url.endswith("/")


def test_errors_are_said_in_plain_words_and_leave_a_way_back(page, site):
    search_ready(page, "/?q=red&page=500")
    message = page.locator("#messages .error")
    assert message.inner_text().startswith("There is no page 500: results stop at page 100.")
    both_sizes(page, "19-api-error-state")
    message.get_by_role("link", name="Back to page 1").click()
    page.wait_for_selector(".results .card")
    assert "page=" not in page.url and "q=red" in page.url

    search_ready(page, "/?q=red&parts=%5B%7Bnot+json")
    assert message.inner_text().startswith("The search link is damaged: the parts of its query cannot be read.")
    message.get_by_role("link", name="Start a new search").click()
    page.wait_for_selector("#search-form[data-ready=true]", state="attached")
    assert page.locator("#messages .error").count() == 0

    search_ready(page, "/?q=" + "a" * 1001)
    assert message.inner_text().startswith("Your text is 1,001 characters; the limit is 1,000.")
    search_ready(page, "/?q=red&created_from=2025-02-01&created_to=2025-01-01")
    assert message.inner_text().startswith(
        "The “Added from” date (1 Feb 2025) is after the “to” date (1 Jan 2025), so nothing can match")
    for internal in ("Ensure this value", "JSON", "q:", "created_from"):
        assert internal not in page.locator("main").inner_text()


def test_an_empty_index_says_nothing_is_indexed_yet_and_tells_staff_how_to_add_some(
        page, deterministic_encoder, django_user_model, client, settings, live_server):
    search_ready(page)
    notice = page.locator("#messages .index-empty")
    assert notice.inner_text().startswith("Nothing is indexed yet.")
    assert "until the site's staff add some files" in notice.inner_text()

    Corpus.objects.create(name="photos")
    ingest_files(Corpus.objects.create(name="demo"), {"red wall.png": picture((170, 50, 40), (120, 30, 20), "frame")})
    search_ready(page, "/?q=red&corpus=photos")
    empty = page.locator(".empty-state")
    assert empty.inner_text().startswith("Nothing is indexed in “photos” yet.")
    assert "Try other words" not in empty.inner_text() and empty.get_by_role("link").count() == 0

    client.force_login(staff_create(django_user_model))
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])
    search_ready(page, "/?q=red&corpus=photos")
    assert empty.get_by_role("link", name="Upload page").get_attribute("href") == "/upload?corpus=photos"
    assert "python manage.py ingest FOLDER --corpus photos" in empty.inner_text()
    assert contrast_failures(page) == []
    both_sizes(page, "19-api-empty-index")
    search_ready(page, "/?q=red")
    assert page.locator(".results .card").count() == 1 and page.locator(".index-empty").count() == 0


def test_the_api_docs_fit_a_phone_and_lead_back_to_the_site(browser, live_server):
    """A phone lays out a page without a viewport meta 980 px wide, everything a third of its size."""
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True,
                                  device_scale_factor=1)
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems = PageProblems(page)
    try:
        page.goto("/api/docs")
        page.wait_for_selector(".swagger-ui .opblock")
        width = page.evaluate("() => [document.documentElement.clientWidth, document.documentElement.scrollWidth]")
        assert width[0] == PHONE["width"] and width[1] <= PHONE["width"], width
        back = page.get_by_role("link", name="← Multimodal search")
        assert back.is_visible() and back.bounding_box()["height"] >= 24
        screenshot(page, "19-api-docs-phone")
        page.set_viewport_size(DESKTOP)
        screenshot(page, "19-api-docs")
        back.click()
        page.wait_for_selector("#search-form")
        assert problems.errors == []
    finally:
        context.close()
