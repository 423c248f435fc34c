"""PDF pages read by ``document_read`` (text layer and one rendering per page) timed against pypdfium2
doing the same in a plain loop, and the same PDF ingested through the ingest service timed against
``document_read`` alone: each pair on the same PDF, taking turns in one run (`manage.py bench_readers`).
"""
import uuid

import pypdfium2 as pdfium
from fpdf import FPDF
from PIL import Image, ImageDraw

from ..models import Corpus, Item
from ..readers.documents import document_read
from ..services.ingest import CHILD_IMAGE_PX, Source, items_ingest
from .turns import Comparison, turns_run

PARAGRAPH = ("Shipping costs fell in the third quarter while storage stayed flat; the warehouse in the north "
             "handled most returns, and the new packaging cut damage claims by a third. ")
BENCH_CORPUS_PREFIX = "bench-readers-"


def pdf_make(pages: int = 50) -> bytes:
    """A report-like PDF made with fpdf2: pages of text, every fifth one also holding a chart picture."""
    chart = Image.new("RGB", (600, 300), "white")
    draw = ImageDraw.Draw(chart)
    for bar in range(8):
        draw.rectangle((30 + bar * 70, 280 - bar * 30, 80 + bar * 70, 280), fill=(40, 90, 160))
    pdf = FPDF()
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("helvetica", size=11)
        pdf.multi_cell(0, 6, text=f"Page {number}. " + PARAGRAPH * 12)
        if number % 5 == 0:
            pdf.image(chart, x=20, y=180, w=160)
    return bytes(pdf.output())


def documents_bench(*, data: bytes, render_px: int = 1024, repeats: int = 3) -> Comparison:
    """``document_read`` and the bare pypdfium2 loop on ``data``, every page rendered at ``render_px``, in turns."""
    turns = turns_run({
        "tool": lambda: _pages_read(data, name="bench.pdf", render_px=render_px),
        "bare": lambda: _bare_read(data, render_px=render_px),
    }, repeats=repeats)
    pages = turns.last["tool"]
    return Comparison(step="documents", tool="document_read", bare="pypdfium2 loop", work=pages, unit="pages/s",
                      tool_s=turns.seconds["tool"], bare_s=turns.seconds["bare"], repeats=repeats,
                      input=f"{pages}-page PDF, text + render at {render_px} px")


def document_ingest_bench(*, data: bytes, repeats: int = 3) -> Comparison:
    """The PDF ``data`` ingested by ``items_ingest`` into a throw-away corpus (the configured encoder,
    its vectors written to the store) against ``document_read`` called as ingest calls it, in turns.

    Every ingest run lands the document anew (the corpus is emptied, untimed, before each run), after
    a one-page warm-up that loads the encoder and opens the collection. The corpus is deleted at the
    end, whatever happens; no other corpus is read or written.
    """
    corpus = Corpus.objects.create(name=f"{BENCH_CORPUS_PREFIX}{uuid.uuid4().hex[:8]}")
    try:
        items_ingest(corpus=corpus, sources=[_pdf_source(pdf_make(1), name="warm-up.pdf")])

        def ingest():
            report = items_ingest(corpus=corpus, sources=[_pdf_source(data, name="report.pdf")])
            if report.failures:
                raise RuntimeError(f"the benchmark PDF did not ingest: {report.failures[0].reason}")
            return report

        turns = turns_run({
            "tool": ingest,
            "bare": lambda: _pages_read(data, name="report.pdf", text_page_px=CHILD_IMAGE_PX),
        }, repeats=repeats, prepare={"tool": lambda: corpus.items.all().delete()})
        document = corpus.items.get(kind=Item.Kind.DOCUMENT)
        pages = turns.last["bare"]
        passages = document.children.filter(kind=Item.Kind.PASSAGE).count()
        ocr_pages = len(document.metadata.get("ocr_pages", []))
    finally:
        corpus.delete()
    return Comparison(step="ingest", tool="items_ingest", bare="document_read", work=pages, unit="pages/s",
                      tool_s=turns.seconds["tool"], bare_s=turns.seconds["bare"], repeats=repeats,
                      input=f"{pages}-page PDF into a throw-away corpus",
                      notes=(f"{passages} passages per document", f"{ocr_pages} of {pages} pages read by OCR"))


def _pages_read(data: bytes, *, name: str, **options) -> int:
    """Every page of the PDF ``data`` read (text and rendering) by ``document_read``, one at a time; how many."""
    with document_read(data, name=name, max_pages=10**6, **options) as document:
        return sum(1 for _ in document.pages)


def _pdf_source(data: bytes, *, name: str) -> Source:
    return Source(name=name, read=lambda: data, size=len(data))


def _bare_read(data: bytes, *, render_px: int) -> list[tuple[str, Image.Image]]:
    pdf = pdfium.PdfDocument(data)
    pages = []
    for index in range(len(pdf)):
        page = pdf[index]
        textpage = page.get_textpage()
        width, height = page.get_size()
        pages.append((textpage.get_text_bounded(), page.render(scale=render_px / max(width, height)).to_pil()))
    pdf.close()
    return pages
