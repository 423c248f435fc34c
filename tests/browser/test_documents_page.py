"""Document, video and OCR hits in real headless Chromium: a passage card names its page and opens the
PDF there, the document's page shows the passage marked, a video's scene strip seeks its player, and
OCR boxes lie over the words in the thumbnail (real fpdf2, PyAV, Tesseract; no CSP violation on any page)."""
import pytest

from multimodal.models import Corpus, Item

from ..conftest import ingest_files
from ..document_making import pdf_bytes
from ..video_making import video_make
from ..web.test_item_detail import RARE_PHRASE, page_text, printed
from .conftest import contrast_failures, screenshot, search_ready

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("ocr_on")]
# Where each seek of a player landed, in order (recorded as it completes: a playing video moves on at once).
SEEKS_RECORDED = "window.seeks = []; document.addEventListener('seeked', (e) => seeks.push(e.target.currentTime), true);"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def test_a_passage_hit_names_its_page_opens_the_pdf_there_and_is_marked_on_the_document_page(
        page, live_server, deterministic_encoder):
    corpus = Corpus.objects.create(name="reports")
    data = pdf_bytes([page_text(1), page_text(2), page_text(3, RARE_PHRASE)], title="Annual Report")
    assert ingest_files(corpus, {"report.pdf": data}).failures == []
    document = Item.objects.get(kind=Item.Kind.DOCUMENT)
    passage = document.children.get(kind=Item.Kind.PASSAGE, text__contains=RARE_PHRASE)

    search_ready(page, f"/?q=the+{RARE_PHRASE.replace(' ', '+')}")
    card = page.locator(".card").first
    assert card.locator(".page-label").inner_text() == "page 3 of Annual Report"
    assert card.locator(".card-title").inner_text() == "Annual Report"
    assert "green" in card.locator(".snippet mark").all_inner_texts()
    opener = card.locator("a.open-page")
    assert opener.inner_text().startswith("Open at page 3")
    assert opener.get_attribute("href").endswith(f"{document.file.url}#page=3")
    assert (opener.get_attribute("target"), opener.get_attribute("rel")) == ("_blank", "noopener")
    # The PDF opens in Chromium's own viewer under the media's sandboxing policy: shown, not blocked or downloaded.
    viewer = page.context.new_page()
    response = viewer.goto(live_server.url + opener.get_attribute("href"), wait_until="commit")
    assert response.all_headers()["content-security-policy"].startswith("sandbox")
    assert response.all_headers()["content-type"] == "application/pdf"
    for _ in range(100):
        if any(frame.url.startswith("chrome-extension://") for frame in viewer.frames):
            break
        viewer.wait_for_timeout(100)
    assert any(frame.url.startswith("chrome-extension://") for frame in viewer.frames), "the PDF viewer did not open"
    viewer.close()
    thumbnail = card.locator(".thumb img")
    thumbnail.scroll_into_view_if_needed()
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle())
    screenshot(page, "40-passage-card")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot(page, "40b-passage-card-phone")
    page.set_viewport_size(DESKTOP)

    card.locator("a.open-detail").click()  # "Read in context"
    page.wait_for_url(f"**/items/{document.pk}?passage={passage.pk}&back=*#passage-{passage.pk}")  # back: the search
    marked = page.locator(f"mark#passage-{passage.pk}")
    assert RARE_PHRASE in marked.inner_text()
    assert marked.is_visible() and page.evaluate(
        "(mark) => { const box = mark.getBoundingClientRect(); return box.top >= 0 && box.bottom <= innerHeight; }",
        marked.element_handle())
    assert page.locator("#page-3").evaluate("(node) => node.contains(document.querySelector('mark.passage-marked'))")
    links = page.locator(".document-page .page-heading a")
    assert [links.nth(n).get_attribute("href") for n in range(3)] == [f"{document.file.url}#page={n}" for n in (1, 2, 3)]
    assert contrast_failures(page) == []
    screenshot(page, "41-document-page")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing wider than the phone
    screenshot(page, "42-document-page-phone")


def test_scene_strip_seeks_the_player_and_a_scene_card_plays_from_its_start(page, live_server, deterministic_encoder):
    corpus = Corpus.objects.create(name="videos")
    data = video_make(None, scenes=[("red", 2), ("forestgreen", 2), ("royalblue", 2)], size=(96, 64))
    assert ingest_files(corpus, {"clip.mp4": data}).failures == []
    video = Item.objects.get(kind=Item.Kind.VIDEO)
    scenes = list(video.children.filter(kind=Item.Kind.SCENE).order_by("start_s"))

    page.add_init_script(SEEKS_RECORDED)
    page.goto(video.get_absolute_url())
    strip = page.locator(".scene-strip li")
    assert strip.count() == 3
    assert strip.nth(1).locator(".time-range").inner_text().endswith("0:02–0:04")
    strip.nth(1).locator("a.scene-link").click()
    page.wait_for_function(f"() => seeks.some((at) => Math.abs(at - {scenes[1].start_s}) <= 0.3)")
    assert page.url.endswith(f"#t={scenes[1].start_s:.2f}")
    page.wait_for_function(f"() => document.querySelector('#scene-{scenes[1].pk}').classList.contains('current')")
    screenshot(page, "43-video-page")
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # the strip scrolls, not the page
    screenshot(page, "44-video-page-phone")
    page.set_viewport_size(DESKTOP)

    # Opened at a second (a scene hit's link), the page starts the player there.
    page.goto(f"{video.get_absolute_url()}#t={scenes[2].start_s:.2f}")
    page.wait_for_function(f"() => seeks.some((at) => Math.abs(at - {scenes[2].start_s}) <= 0.3)")

    search_ready(page, f"/?item={scenes[0].pk}")  # "more like" the first scene: the other two are found
    card = page.locator(".card", has=page.locator(f"#result-{scenes[1].pk}-title"))
    player = card.locator("video.scene-player")
    assert player.get_attribute("src").endswith(f"{video.file.url}#t={scenes[1].start_s:.2f}")
    assert card.locator(".card-title").inner_text() == "clip · 0:02–0:04"
    page.wait_for_function("(video) => video.readyState >= 1", arg=player.element_handle())
    assert abs(player.evaluate("(video) => video.currentTime") - scenes[1].start_s) <= 0.3
    card.scroll_into_view_if_needed()
    screenshot(page, "46-scene-card")


def test_ocr_boxes_lie_over_the_printed_words_in_the_thumbnail(page, live_server, deterministic_encoder):
    corpus = Corpus.objects.create(name="pictures")
    ingest_files(corpus, {"screenshot.png": printed(["Error 504", "Gateway Timeout"])})
    picture = Item.objects.get(kind=Item.Kind.IMAGE)
    _, left, top, width, height = picture.metadata["ocr"]["words"][2]

    search_ready(page, "/?q=gateway")
    card = page.locator(".card").first
    assert card.locator(".ocr-note").inner_text() == "'Gateway' is printed in the picture"
    image = card.locator(".thumb img")
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    rects = card.locator("svg.ocr-boxes rect")
    assert rects.count() == 1
    box, frame = rects.first.bounding_box(), image.bounding_box()
    assert box["x"] == pytest.approx(frame["x"] + left * frame["width"], abs=2.5)  # the 2 px stroke straddles the edge
    assert box["y"] == pytest.approx(frame["y"] + top * frame["height"], abs=2.5)  # the 2 px stroke straddles the edge
    assert box["width"] == pytest.approx(width * frame["width"], abs=2.5)  # the 2 px stroke straddles the edge
    assert box["height"] == pytest.approx(height * frame["height"], abs=2.5)  # the 2 px stroke straddles the edge
    screenshot(page, "45-ocr-card")

    page.goto(picture.get_absolute_url())
    assert page.locator("svg.ocr-boxes rect").count() == 4
    assert "Gateway Timeout" in page.locator(".recognised-text").inner_text()
