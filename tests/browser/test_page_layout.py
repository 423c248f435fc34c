"""The results page's layout in real Chromium: on a phone, pictures as a justified gallery, density, more results."""
import pytest

from ..conftest import ingest_files
from .conftest import page_open, picture, screenshot, search_ready

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
# Twelve red pictures of six shapes (landscape, portrait, panorama, square): the gallery must fit them all. Drawn
# alike, they are near duplicates of each other, so the pages ask to show every copy (collapse=none).
SHAPES = [(320, 240), (240, 320), (400, 200), (300, 300), (320, 180), (200, 300)]


@pytest.fixture
def pictures(site):
    ingest_files(site, {f"red {number}.png": picture((185 + number, 40, 40), (255, 255, 255), "frame", size=size)
                        for number, size in enumerate(SHAPES * 2)})
    return site


def tile_boxes(page) -> list[dict]:
    """Each picture tile's place: its gallery (a run of pictures between other hits), top, edges, picture height."""
    return page.evaluate("""() => [...document.querySelectorAll('.gallery')].flatMap((gallery, number) =>
        [...gallery.querySelectorAll(':scope > .card')].map((tile) => {
            const box = tile.getBoundingClientRect(), image = tile.querySelector('img').getBoundingClientRect(),
                  edge = gallery.getBoundingClientRect();
            return {gallery: number, top: Math.round(box.top + scrollY), right: box.right, edge: edge.right,
                    imageHeight: image.height};
        }))""")


def rows_of(boxes: list[dict]) -> list[list[dict]]:
    """The tiles by row, each gallery's rows in order and marked ``last`` for the last row of its gallery."""
    rows: dict[tuple[int, int], list[dict]] = {}
    for box in boxes:
        rows.setdefault((box["gallery"], box["top"]), []).append(box)
    keys = sorted(rows)
    for index, key in enumerate(keys):
        for box in rows[key]:
            box["last"] = index + 1 == len(keys) or keys[index + 1][0] != key[0]
    return [rows[key] for key in keys]


def gallery_ready(page, path: str):
    search_ready(page, path)
    page.wait_for_selector("body[data-density]", state="attached")
    # Tiles are laid out from the pictures' sizes; the ones on screen are waited for (the rest load lazily).
    page.wait_for_function("() => [...document.querySelectorAll('.gallery > .card .thumb img')]"
                           ".filter((image) => image.getBoundingClientRect().top < innerHeight)"
                           ".every((image) => image.complete)")


def test_on_a_phone_the_text_box_is_wide_the_filters_fold_and_nothing_scrolls_sideways(browser, live_server, site):
    context, page = page_open(browser, live_server, **{k: v for k, v in PHONE.items() if k != "viewport"})
    try:
        page.set_viewport_size(PHONE["viewport"])
        search_ready(page, "/?q=blue+chair")
        box = page.locator("#id_q").bounding_box()
        assert box["width"] >= 300, f"the search box is {box['width']:.0f} px wide on a phone"
        first = page.locator(".results .card").first.bounding_box()
        assert first["y"] < 400, f"the first result starts at y={first['y']:.0f} on a phone"
        assert page.locator(".tip-keyboard").is_hidden(), "a keyboard tip is shown on a touch screen"
        assert page.locator(".tip-touch").is_visible()
        assert page.locator("h1").count() == 1
        screenshot(page, "19-page-phone-results", full_page=False)

        page.locator(".search-options > summary").click()
        page.locator(".advanced > summary").click()
        page.select_option("select[name=fusion]", "rrf")
        widths = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert widths[0] <= widths[1], f"the page is {widths[0]} px wide in a {widths[1]} px screen"
        fusion = page.locator("select[name=fusion]").bounding_box()
        assert fusion["x"] + fusion["width"] <= 390
        screenshot(page, "19-page-phone-options", full_page=False)

        # A set filter keeps the options open, saying how many are set.
        search_ready(page, "/?q=blue+chair&kind=image")
        assert page.locator(".filters select[name=kind]").is_visible()
        assert "1 set" in page.locator(".search-options > summary").inner_text()
    finally:
        context.close()
    assert not page.problems.errors, page.problems.errors


def test_on_a_wide_screen_the_filters_show_without_a_fold(page, site):
    page.set_viewport_size({"width": 1366, "height": 900})
    search_ready(page, "/?q=blue+chair")
    assert page.locator(".filters select[name=corpus]").is_visible()
    assert page.locator(".search-options > summary").is_hidden()
    assert page.locator(".tip-keyboard").is_visible() and page.locator(".tip-touch").is_hidden()


def test_pictures_form_a_justified_gallery_whose_size_a_person_chooses(page, pictures):
    page.set_viewport_size({"width": 1366, "height": 900})
    gallery_ready(page, "/?q=red&top_k=20&collapse=none")
    rows = rows_of(tile_boxes(page))
    assert len(rows[0]) >= 4, f"the first row holds {len(rows[0])} pictures"
    full_rows = [row for row in rows if not row[0]["last"]]
    assert full_rows, rows
    for row in full_rows:  # every full row is justified: its last tile ends at the gallery's right edge
        assert abs(max(box["right"] for box in row) - row[0]["edge"]) <= 2, row
        assert len({round(box["imageHeight"]) for box in row}) == 1, row
    medium = rows[0][0]["imageHeight"]
    screenshot(page, "19-page-gallery")

    page.locator(".density label", has_text="Small").click()
    small_rows = rows_of(tile_boxes(page))
    assert small_rows[0][0]["imageHeight"] < medium * 0.8
    assert len(small_rows[0]) > len(rows[0]), "smaller pictures fit more in a row"
    page.reload()
    page.wait_for_selector("body[data-density=small]", state="attached")
    assert page.locator('.density input[value="small"]').is_checked(), "the chosen size is remembered"
    screenshot(page, "19-page-gallery-small")

    # A picture's "Why?" is wider than its tile and stays on the screen, even from the last tile of a row.
    last_of_row = page.locator(".gallery > .card").nth(len(small_rows[0]) - 1)
    last_of_row.locator(".why > summary").click()
    why = last_of_row.locator(".why").bounding_box()
    assert why["width"] >= 250 and why["x"] >= 0 and why["x"] + why["width"] <= 1366, why
    last_of_row.locator(".why > summary").click()

    page.set_viewport_size({"width": 390, "height": 844})
    phone_rows = rows_of(tile_boxes(page))
    assert len(phone_rows[0]) >= 2, "pictures share a row on a phone"
    widths = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert widths[0] <= widths[1]
    screenshot(page, "19-page-gallery-phone")
    tile = page.locator(".gallery > .card").first
    tile.locator(".why > summary").click()
    sheet = tile.locator(".why").bounding_box()
    assert sheet["width"] >= 350 and sheet["x"] >= 0 and sheet["y"] + sheet["height"] <= 844, sheet
    screenshot(page, "19-page-gallery-why-phone", full_page=False)


def test_show_more_results_appends_the_next_page_in_place(page, pictures):
    page.set_viewport_size({"width": 1366, "height": 900})
    gallery_ready(page, "/?q=red&top_k=6&collapse=none")
    first_page = page.locator(".results .card").evaluate_all("cards => cards.map((card) => card.querySelector('h3').id)")
    url = page.url
    page.locator(".load-more").click()
    page.wait_for_function("() => document.querySelectorAll('.results .card').length > 6")
    ids = page.locator(".results .card").evaluate_all("cards => cards.map((card) => card.querySelector('h3').id)")
    assert ids[:6] == first_page and len(ids) == 12 and len(set(ids)) == 12, ids
    assert page.url == url
    assert page.locator(".gallery").count() == 1, "pictures that continue the gallery join its rows"
    assert "1–12" in page.locator("#results-heading").inner_text()
    assert "6 more results" in page.locator("#more-status").inner_text()

    # The heading says how many there are in all, and showing more until the end shows exactly that many.
    total = int(page.locator(".results-total").inner_text().split()[-1])
    while page.locator(".load-more").count():
        shown = page.locator(".results .card").count()
        page.locator(".load-more").click()
        page.wait_for_function(f"() => document.querySelectorAll('.results .card').length > {shown}")
    ids = page.locator(".results .card").evaluate_all("cards => cards.map((card) => card.querySelector('h3').id)")
    assert len(ids) == len(set(ids)) == total, (len(ids), total)
