"""PDF pages read by ``document_read`` (text layer and one rendering per page) timed against pypdfium2
doing the same in a plain loop, on the same PDF, taking turns in one run.

    .venv/bin/python -c "from multimodal.benchmarks.documents import documents_bench, pdf_make
    print(documents_bench(data=pdf_make()).report())"
"""
import statistics
import time
from dataclasses import dataclass

import pypdfium2 as pdfium
from fpdf import FPDF
from PIL import Image, ImageDraw

from ..readers.documents import document_read

PARAGRAPH = ("Shipping costs fell in the third quarter while storage stayed flat; the warehouse in the north "
             "handled most returns, and the new packaging cut damage claims by a third. ")


@dataclass(frozen=True)
class DocumentBench:
    pages: int
    read_s: float  # median seconds document_read took
    bare_s: float  # median seconds the bare pypdfium2 loop took
    repeats: int
    render_px: int

    @property
    def read_speed(self) -> float:
        """Pages per second."""
        return self.pages / self.read_s

    @property
    def bare_speed(self) -> float:
        return self.pages / self.bare_s

    @property
    def ratio(self) -> float:
        return self.read_speed / self.bare_speed

    def report(self) -> str:
        return (f"{self.pages}-page PDF, text + render at {self.render_px} px, medians of {self.repeats}: "
                f"document_read {self.read_s:.3f} s = {self.read_speed:.1f} pages/s; bare pypdfium2 "
                f"{self.bare_s:.3f} s = {self.bare_speed:.1f} pages/s -> ratio {self.ratio:.2f}")


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


def documents_bench(*, data: bytes, render_px: int = 1024, repeats: int = 3) -> DocumentBench:
    """``document_read`` and the bare pypdfium2 loop on ``data``, in turns, ``repeats`` times each."""
    read_times, bare_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        document = document_read(data, name="bench.pdf", max_pages=10**6, render_px=render_px)
        read_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        _bare_read(data, render_px=render_px)
        bare_times.append(time.perf_counter() - started)
    return DocumentBench(pages=len(document.pages), read_s=statistics.median(read_times),
                         bare_s=statistics.median(bare_times), repeats=repeats, render_px=render_px)


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
