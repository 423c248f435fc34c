"""Documents are read into the numbered pages a reader of them sees: PDF pages (text layer and picture),
Word sections, slides, an HTML page's main text, EPUB chapters; a document that can not be read fails
alone with its reason."""
import io
import zipfile

import numpy as np
import pytest

from multimodal.errors import IngestError
from multimodal.readers.documents import document_format, document_read
from tests.document_making import docx_bytes, epub_bytes, pdf_bytes, pdf_page_unreadable, pptx_bytes

RARE_PHRASE = "the quokka ledger reconciles on Thursdays"
PAGE_TEXTS = [
    "Quarterly report. Revenue grew in every region.",
    "Costs. Shipping and storage were flat over the quarter.",
    f"Outlook. Finance notes that {RARE_PHRASE}, and more.",
]


@pytest.fixture(scope="module")
def report_pdf() -> bytes:
    return pdf_bytes(PAGE_TEXTS + [None], title="Quarterly Report Q3")


def test_pdf_pages_carry_their_text_and_one_rendering_and_the_scanned_page_needs_ocr(report_pdf):
    with document_read(report_pdf, name="Report.pdf", max_pages=500, render_px=256, text_page_px=128) as document:
        pages = list(document.pages)

    assert (document.format, document.title, document.page_count, document.pages_read, document.warnings) == (
        "pdf", "Quarterly Report Q3", 4, 4, [])
    assert [page.number for page in pages] == [1, 2, 3, 4]
    assert RARE_PHRASE in " ".join(pages[2].text.split())
    assert not any("quokka" in page.text for page in pages[:2])
    assert pages[0].text.startswith("Quarterly report.")
    assert [page.needs_ocr for page in pages] == [False, False, False, True]
    assert pages[3].text == ""
    # A text page's picture is only looked at; the scan is rendered larger, for OCR to read.
    assert [(page.image.mode, max(page.image.size)) for page in pages] == [("RGB", 128)] * 3 + [("RGB", 256)]
    # The scan is in the rendering: its dark printed letters, where a text page's corner is blank paper.
    scan = np.asarray(pages[3].image.convert("L"))
    assert scan.min() < 80 and (scan < 80).mean() < 0.2


def test_pdf_longer_than_the_page_limit_is_cut_with_a_warning_not_failed(report_pdf):
    document = document_read(report_pdf, name="Report.pdf", max_pages=2, render_px=64)

    assert [page.number for page in document.pages] == [1, 2]
    assert (document.page_count, document.pages_read) == (4, 2)
    assert document.warnings == ["only the first 2 of 4 pages were read"]


def test_pdf_pages_are_read_one_at_a_time_and_a_page_that_can_not_be_read_fails_naming_it():
    data = pdf_bytes(["Page one.", "Page two.", "Page three."])

    with document_read(pdf_page_unreadable(data, 3), name="minutes.pdf", max_pages=10) as document:
        assert (document.page_count, document.pages_read) == (3, 3)
        assert [next(document.pages).text, next(document.pages).text] == ["Page one.", "Page two."]
        with pytest.raises(IngestError, match=r"^not a readable PDF: page 3: failed to load page$"):
            next(document.pages)
    # Closed before its last page, a document reads no more pages.
    with document_read(data, name="minutes.pdf", max_pages=10) as document:
        assert next(document.pages).number == 1
    assert list(document.pages) == []


def test_encrypted_pdf_fails_saying_it_is_password_protected():
    locked = pdf_bytes(["Salaries for 2026"], user_password="secret")

    with pytest.raises(IngestError, match=r"^the PDF is encrypted \(password protected\)$"):
        document_read(locked, name="salaries.pdf", max_pages=10)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "no pages"])
def test_a_broken_pdf_fails_alone_saying_it_is_not_readable(report_pdf, damage):
    data = {
        "truncated": report_pdf[:len(report_pdf) // 3],
        "garbage": b"%PDF-1.7\n" + bytes(range(256)) * 20,
        "no pages": b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>"
                    b"endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
    }[damage]

    with pytest.raises(IngestError, match=r"^(not a readable PDF: \S|the PDF has no pages$)"):
        document_read(data, name="broken.pdf", max_pages=10)


def test_word_sections_start_at_headings_and_keep_tables_in_reading_order():
    data = docx_bytes([
        ("title", "Field Manual"), ("paragraph", "How to use this manual."),
        ("heading1", "Assembly"), ("paragraph", "Fit the frame first."),
        ("table", [["Part", "Torque"], ["Axle nut", "35 Nm"]]),
        ("paragraph", "Then the wheels."),
        ("heading1", "Storage"), ("paragraph", "Keep the wombat saddle dry."),
    ])

    document = document_read(data, name="manual.docx", max_pages=500)
    pages = list(document.pages)

    assert document_format(data, "manual.docx") == "docx"
    assert (document.format, document.title, document.page_count) == ("docx", "Field Manual", 3)
    assert [page.text for page in pages] == [
        "Field Manual\nHow to use this manual.",
        "Assembly\nFit the frame first.\nPart\tTorque\nAxle nut\t35 Nm\nThen the wheels.",
        "Storage\nKeep the wombat saddle dry.",
    ]
    assert all(page.image is None and not page.needs_ocr for page in pages)


def test_word_metadata_title_wins_and_sections_past_the_limit_are_cut_with_a_warning():
    data = docx_bytes([("heading1", f"Chapter {n}") for n in range(1, 6)], title="Collected Chapters")

    document = document_read(data, name="book.docx", max_pages=3)

    assert document.title == "Collected Chapters"
    assert [page.text for page in document.pages] == ["Chapter 1", "Chapter 2", "Chapter 3"]
    assert document.page_count == 5 and document.warnings == ["only the first 3 of 5 sections were read"]


def test_each_slide_is_a_page_with_its_title_text_table_and_speaker_notes():
    data = pptx_bytes([
        {"title": "Roadmap 2027", "body": "Three launches", "notes": "Mention the pelican budget"},
        {"title": "Pricing", "body": "Two tiers", "table": [["Tier", "Price"], ["Pro", "12 EUR"]]},
    ])

    document = document_read(data, name="deck.pptx", max_pages=500)

    assert (document.format, document.title, document.page_count) == ("pptx", "Roadmap 2027", 2)
    assert [page.text for page in document.pages] == [
        "Roadmap 2027\nThree launches\nMention the pelican budget",
        "Pricing\nTwo tiers\nTier\tPrice\nPro\t12 EUR",
    ]


def test_html_main_text_leaves_out_scripts_styles_navigation_and_footer():
    page = ("<!DOCTYPE html><html><head><meta charset='windows-1252'><title>Caf\xe9 menu</title>"
            "<style>.secret-style { color: red }</style><script>var trackingPixel = 'SCRIPTTEXT';</script></head>"
            "<body><nav><a href='/'>Home</a> <a href='/jobs'>NAVLINK careers</a></nav><header>BANNER sale</header>"
            "<main><h1>Today's dishes</h1><p>Cr\xe8me br\xfbl\xe9e with <b>smoked</b> salt.</p>"
            "<ul><li>Soup</li><li>Bread</li></ul></main>"
            "<aside>SIDEBAR ads</aside><footer>FOOTER copyright</footer></body></html>").encode("cp1252")

    document = document_read(page, name="menu.html", max_pages=500)

    assert (document.format, document.title, document.page_count) == ("html", "Café menu", 1)
    assert [page.text for page in document.pages] == ["Today's dishes\nCrème brûlée with smoked salt.\nSoup\nBread"]


def test_epub_chapters_are_pages_in_reading_order():
    data = epub_bytes("The Lighthouse", [
        ("one.xhtml", "<h1>Arrival</h1><p>The keeper lit the lamp.</p>"),
        ("two.xhtml", "<h1>Storm</h1><p>A narwhal surfaced at dawn.</p>"),
    ])

    document = document_read(data, name="lighthouse.epub", max_pages=500)

    assert (document.format, document.title, document.page_count) == ("epub", "The Lighthouse", 2)
    assert [page.text for page in document.pages] == ["Arrival\nThe keeper lit the lamp.",
                                                      "Storm\nA narwhal surfaced at dawn."]


def test_a_word_file_that_unpacks_past_the_limit_is_refused_before_it_is_read():
    data = docx_bytes([("paragraph", "small")])
    bomb = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr("word/media/filler.bin", bytes(8 * 1024 * 1024))  # 8 MB of zeros in ~8 KB

    with pytest.raises(IngestError, match=r"^its parts unpack to [\d,]+ bytes; the limit is 4,194,304 \(a zip bomb"):
        document_read(bomb.getvalue(), name="bomb.docx", max_pages=10, max_unpacked_bytes=4 * 1024 * 1024)


def test_documents_that_are_not_read_say_what_they_are_or_that_they_are_broken():
    odt = io.BytesIO()
    with zipfile.ZipFile(odt, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", "<office:document-content/>")
    not_word = io.BytesIO()
    with zipfile.ZipFile(not_word, "w") as archive:
        archive.writestr("notes.txt", "hello")

    with pytest.raises(IngestError, match=r"^OpenDocument text \(\.odt\) files are not read; save it as PDF or DOCX$"):
        document_read(odt.getvalue(), name="letter.odt", max_pages=10)
    with pytest.raises(IngestError, match=r"^not a readable DOCX file: "):
        document_read(not_word.getvalue(), name="renamed.docx", max_pages=10)
    broken_slide = _part_replace(pptx_bytes([{"title": "Plan", "body": "Ship"}]), "ppt/slides/slide1.xml", b"<p:sld>")
    with pytest.raises(IngestError, match=r"^not a readable PPTX file: "):
        document_read(broken_slide, name="deck.pptx", max_pages=10)
    no_package = _part_replace(epub_bytes("Book", [("one.xhtml", "<p>x</p>")]), "META-INF/container.xml", b"<x/>")
    with pytest.raises(IngestError, match=r"^not a readable EPUB file: its META-INF/container.xml names no package"):
        document_read(no_package, name="book.epub", max_pages=10)


def _part_replace(package: bytes, part: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, data if info.filename == part else source.read(info))
    return out.getvalue()
