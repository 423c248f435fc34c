"""Result cards and item pages of documents, long texts, videos and pictures with printed words, through
Django's test client: real fpdf2 PDFs, PyAV videos and Tesseract, the deterministic encoder."""
import html
import io
import re

import pytest
from PIL import Image, ImageDraw, ImageFont

from multimodal.models import Corpus, Item
from multimodal.query.types import SearchQuery
from multimodal.selectors import search_response

from ..conftest import ingest_files
from ..document_making import pdf_bytes
from ..video_making import scene_colour, video_make

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ocr_on")]

RARE_PHRASE = "green bicycle chair"
FILLER = ("Quarterly figures were reviewed by the committee and the minutes record every motion. "
          "Shipping volumes rose slightly while warehouse costs stayed within the plan agreed last spring. ")
HOSTILE_TITLE = '<script>window.__xss = 1</script> Annual "Report"'


def page_text(number: int, phrase: str = "") -> str:
    """About 90 words: two or three passages, the phrase (if any) inside the second paragraph."""
    return f"Page {number} notes. {FILLER * 2}\n\nThe archive mentions a {phrase or 'plain folder'} once. {FILLER}"


def printed(lines: list[str], size=(640, 240)) -> bytes:
    image = Image.new("RGB", size, (250, 250, 250))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 44)
    for number, line in enumerate(lines):
        draw.text((30, 30 + number * 70), line, fill=(20, 20, 20), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def body(response) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


@pytest.fixture
def report_pdf(deterministic_encoder) -> Item:
    corpus = Corpus.objects.create(name="reports")
    data = pdf_bytes([page_text(1), page_text(2), page_text(3, RARE_PHRASE)], title=HOSTILE_TITLE)
    report = ingest_files(corpus, {"report.pdf": data})
    assert (report.created, report.failures) == (1, [])
    return Item.objects.get(kind=Item.Kind.DOCUMENT)


def test_a_passage_card_names_its_page_and_the_document_page_marks_the_passage(client, report_pdf):
    document = report_pdf
    passage = document.children.get(kind=Item.Kind.PASSAGE, text__contains=RARE_PHRASE)
    page3 = document.children.get(kind=Item.Kind.PAGE, page=3)

    hit = client.get("/api/search", {"q": f"the {RARE_PHRASE}"}).json()["results"][0]
    assert hit["id"] == passage.pk
    assert hit["detail_url"] == f"/items/{document.pk}?passage={passage.pk}#passage-{passage.pk}"
    assert hit["thumbnail_url"] == page3.thumbnail.url  # the passage shows its page's rendering

    card = body(client.get("/", {"q": f"the {RARE_PHRASE}"})).split('<li class="card', 2)[1]
    assert f'src="{page3.thumbnail.url}"' in card
    assert f"page 3 of {html.escape(HOSTILE_TITLE)}" in card
    assert (f'<a class="open-page" href="{document.file.url}#page=3" target="_blank" rel="noopener">'
            f"Open at page 3") in card
    assert re.search(rf'href="/items/{document.pk}\?passage={passage.pk}&amp;back=q%3Dthe[^"#]+#passage-{passage.pk}"', card)
    assert "<mark>green</mark>" in card and "<script>window" not in card

    page = body(client.get(f"/items/{document.pk}", {"passage": passage.pk}))
    for number in (1, 2, 3):
        assert f'id="page-{number}"' in page and f'href="{document.file.url}#page={number}"' in page
        thumbnail = document.children.get(kind=Item.Kind.PAGE, page=number).thumbnail.url
        assert f'<img src="{thumbnail}" alt="Rendering of page {number}"' in page
    assert "PDF" in page and "3 pages" in page
    marked = re.search(r'<mark class="passage-marked" id="passage-(\d+)">([^<]*)</mark>', page)
    assert marked and int(marked[1]) == passage.pk and RARE_PHRASE in marked[2]
    assert page.index('id="page-3"') < marked.start()  # on its own page
    assert page.count('class="passage-marked"') == 1
    # Every passage's text is shown once, on its page, unmarked without ?passage.
    plain = body(client.get(f"/items/{document.pk}"))
    assert "passage-marked" not in plain and plain.count(f"a {RARE_PHRASE} once") == 1

    # A passage's, a page's own address leads to the document there.
    assert client.get(f"/items/{passage.pk}")["Location"] == hit["detail_url"]
    assert client.get(f"/items/{page3.pk}")["Location"] == f"/items/{document.pk}#page-3"


def test_titles_and_text_are_escaped_on_the_document_page(client, report_pdf):
    page = body(client.get(f"/items/{report_pdf.pk}"))
    assert "<script>window.__xss" not in page
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt; Annual &quot;Report&quot;" in page


def test_a_long_text_marks_the_passage_a_hit_links_to(client, deterministic_encoder):
    corpus = Corpus.objects.create(name="notes")
    note = (f"{FILLER * 3}\n\n<b>Tags</b> stay text: the {RARE_PHRASE} waits by the door. {FILLER}\n\n{FILLER * 2}")
    ingest_files(corpus, {"note.txt": note.encode()})
    text = Item.objects.get(kind=Item.Kind.TEXT)
    passage = text.children.get(kind=Item.Kind.PASSAGE, text__contains=RARE_PHRASE)
    hit = client.get("/api/search", {"q": f"the {RARE_PHRASE}"}).json()["results"][0]
    assert hit["detail_url"] == f"/items/{text.pk}?passage={passage.pk}#passage-{passage.pk}"

    page = body(client.get(f"/items/{text.pk}", {"passage": passage.pk}))
    marked = re.search(rf'<mark class="passage-marked" id="passage-{passage.pk}">(.*?)</mark>', page, re.S)
    assert marked and html.unescape(marked[1]) == passage.text and RARE_PHRASE in marked[1]
    assert "&lt;b&gt;Tags&lt;/b&gt;" in page and "<b>Tags" not in page
    assert html.unescape(re.sub(r"<[^>]+>", "", page)).count(f"the {RARE_PHRASE} waits") == 1
    # Another item's passage id marks nothing.
    assert "passage-marked" not in body(client.get(f"/items/{text.pk}", {"passage": text.pk}))


@pytest.fixture
def clip(deterministic_encoder) -> Item:
    corpus = Corpus.objects.create(name="videos")
    data = video_make(None, scenes=[("red", 2), ("forestgreen", 2), ("royalblue", 2)], size=(96, 64))
    report = ingest_files(corpus, {"clip.mp4": data})
    assert (report.created, report.failures) == (1, [])
    return Item.objects.get(kind=Item.Kind.VIDEO)


def test_the_video_page_lists_its_scenes_with_their_times_and_a_scene_card_plays_from_its_start(client, clip):
    scenes = list(clip.children.filter(kind=Item.Kind.SCENE).order_by("start_s"))
    assert len(scenes) == 3
    page = body(client.get(f"/items/{clip.pk}"))
    assert f'<video id="player" class="player video-player" controls preload="metadata" playsinline ' \
           f'src="{clip.file.url}"' in page
    strip = page[page.index('class="scene-strip"'):]
    for scene in scenes:
        link = f'<a class="scene-link" href="{clip.file.url}#t={scene.start_s:.2f}" data-start="{scene.start_s:.2f}"'
        assert link in strip and f'src="{scene.thumbnail.url}"' in strip
    times = re.findall(r"</span>(\d:\d\d–\d:\d\d)</span>", strip)
    assert times == ["0:00–0:02", "0:02–0:04", "0:04–0:06"]
    assert "multimodal/transcript.js" in page

    query = Image.new("RGB", (64, 48), scene_colour("forestgreen"))
    hit = search_response(query=SearchQuery(image=query, image_name="green.png", top_k=3))["results"][0]
    assert hit["id"] == scenes[1].pk
    assert client.get(f"/items/{scenes[1].pk}")["Location"] == f"/items/{clip.pk}#t={scenes[1].start_s:.2f}"


def test_a_picture_page_shows_the_words_read_in_it_and_their_boxes_and_its_card_draws_them(client,
                                                                                          deterministic_encoder):
    corpus = Corpus.objects.create(name="pictures")
    ingest_files(corpus, {"screenshot.png": printed(["Error 504", "Gateway Timeout"])})
    picture = Item.objects.get(kind=Item.Kind.IMAGE)
    words = picture.metadata["ocr"]["words"]
    assert [word[0] for word in words] == ["Error", "504", "Gateway", "Timeout"]

    page = body(client.get(f"/items/{picture.pk}"))
    assert "Text in the picture" in page and "Error 504" in page and "Gateway Timeout" in page
    rects = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"><title>(\w+)</title>', page)
    assert [(rect[4], *map(float, rect[:4])) for rect in rects] == [tuple(word) for word in words]
    assert 'viewBox="0 0 1 1" preserveAspectRatio="none"' in page and " style=" not in page

    card = body(client.get("/", {"q": "gateway"})).split('<li class="card', 2)[1]
    assert "&#x27;Gateway&#x27; is printed in the picture" in card
    [box] = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)"></rect>', card)
    assert tuple(map(float, box)) == tuple(words[2][1:])

    # Words are text, never markup.
    picture.metadata["ocr"]["words"][2][0] = "<b>Gateway</b>"
    picture.save()
    page = body(client.get(f"/items/{picture.pk}"))
    assert "<title>&lt;b&gt;Gateway&lt;/b&gt;</title>" in page and "<b>Gateway" not in page


def test_a_note_stored_with_its_whole_paragraph_as_title_is_named_by_its_first_sentence_on_its_page(
        client, deterministic_encoder):
    corpus = Corpus.objects.create(name="old")
    paragraph = ("The meadow behind the house is full of yellow flowers in May. We sow wildflower seeds in autumn "
                 "and mow a path through the long grass in summer.")
    ingest_files(corpus, {"garden.txt": paragraph.encode()})
    note = Item.objects.get(kind=Item.Kind.TEXT)
    Item.objects.filter(pk=note.pk).update(title=paragraph)  # as ingest titled notes before titles were derived
    page = client.get(note.get_absolute_url()).content.decode()
    assert re.search(r"<h1>The meadow behind the house is full of yellow flowers in May\.</h1>", page), page[:2000]
    assert "<title>The meadow behind the house is full of yellow flowers in May. — " in page
