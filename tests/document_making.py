"""Documents made by the tests with the tools people's documents come from: fpdf2 PDFs, python-docx and
python-pptx files, hand-assembled EPUBs, Pillow pictures of printed text."""
import io
import re
import zipfile

import docx
import pptx
from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont
from pptx.util import Inches

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def scan_image(text: str, size=(800, 1000)) -> Image.Image:
    """A page of printed text as a scanner sees it: pixels only."""
    image = Image.new("RGB", size, (245, 243, 238))
    ImageDraw.Draw(image).text((60, 80), text, fill=(20, 20, 20), font=ImageFont.truetype(FONT, 40))
    return image


def pdf_bytes(page_texts: list[str | None], *, title: str = "", user_password: str = "") -> bytes:
    """A PDF with one page per text (a text layer); None makes a page holding only a scanned picture."""
    pdf = FPDF()
    if title:
        pdf.set_title(title)
    if user_password:
        pdf.set_encryption(owner_password="owner", user_password=user_password)
    pdf.add_font("DejaVu", fname=FONT)
    for text in page_texts:
        pdf.add_page()
        if text is None:
            pdf.image(scan_image("INVOICE 4471 paid in full"), x=10, y=10, w=190)
        else:
            pdf.set_font("DejaVu", size=12)
            pdf.multi_cell(0, 8, text=text)
    return bytes(pdf.output())


def docx_bytes(blocks: list[tuple[str, object]], *, title: str = "") -> bytes:
    """A Word file of ("heading1"|"title"|"paragraph", text) and ("table", rows) blocks.

    Like a file Word saves, it holds a preview picture, docProps/thumbnail.jpeg (python-docx's template has one).
    """
    document = docx.Document()
    document.core_properties.title = title
    for kind, value in blocks:
        if kind == "title":
            document.add_heading(value, 0)
        elif kind == "heading1":
            document.add_heading(value, 1)
        elif kind == "table":
            table = document.add_table(rows=len(value), cols=len(value[0]))
            for row, cells in zip(table.rows, value):
                for cell, text in zip(row.cells, cells):
                    cell.text = text
        else:
            document.add_paragraph(value)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pptx_bytes(slides: list[dict]) -> bytes:
    """A PowerPoint file: each slide a dict with "title", "body", optional "notes" and "table" (rows)."""
    presentation = pptx.Presentation()
    for spec in slides:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = spec["title"]
        slide.placeholders[1].text = spec["body"]
        if "notes" in spec:
            slide.notes_slide.notes_text_frame.text = spec["notes"]
        if "table" in spec:
            rows = spec["table"]
            table = slide.shapes.add_table(len(rows), len(rows[0]), Inches(1), Inches(5), Inches(6), Inches(1)).table
            for row, cells in zip(table.rows, rows):
                for cell, text in zip(row.cells, cells):
                    cell.text = text
    buffer = io.BytesIO()
    presentation.save(buffer)
    return buffer.getvalue()


def epub_bytes(title: str, chapters: list[tuple[str, str]]) -> bytes:
    """An EPUB 3 of (file name, body HTML) chapters; the spine lists them in the order given, the zip in reverse."""
    manifest = "".join(f'<item id="c{n}" href="text/{name}" media-type="application/xhtml+xml"/>'
                       for n, (name, _) in enumerate(chapters))
    spine = "".join(f'<itemref idref="c{n}"/>' for n in range(len(chapters)))
    opf = (f'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
           f'<metadata xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>{title}</dc:title></metadata>'
           f'<manifest>{manifest}</manifest><spine>{spine}</spine></package>')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/epub+zip")  # first and stored, as EPUB requires
        archive.writestr("META-INF/container.xml", (
            '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">'
            '<rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
            '</rootfiles></container>'))
        archive.writestr("OEBPS/content.opf", opf)
        for name, body in reversed(chapters):
            archive.writestr(f"OEBPS/text/{name}", (
                '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
                f'<head><title>{name}</title></head><body>{body}</body></html>'))
    return buffer.getvalue()


def pdf_page_unreadable(data: bytes, number: int) -> bytes:
    """``data``, a PDF from ``pdf_bytes``, whose page ``number`` points at its font instead of a page: the PDF
    opens and counts its pages, but that page can not be loaded (the file keeps its length, so its offsets hold)."""
    kids = re.search(rb"/Kids \[([^\]]*)\]", data)
    pages = kids.group(1).split(b"\n")
    font = re.search(rb"/F1 (\d+ 0 R)", data).group(1)
    assert len(font) <= len(pages[number - 1])
    pages[number - 1] = font.ljust(len(pages[number - 1]))
    return data[:kids.start(1)] + b"\n".join(pages) + data[kids.end(1):]
