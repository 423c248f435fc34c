"""Reading documents (PDF, Word, PowerPoint, HTML, EPUB) into numbered pages of text.

Contract:

* ``document_format(data, name)`` says which format a file is, from its bytes (libmagic, see
  ``readers.sniffing``), or None. ``document_read(data, name=..., max_pages=...)`` opens it as a
  ``Document``: its format, title and page count at once, its pages one at a time, in order, from
  the one-pass iterator ``Document.pages`` (a PDF page is read and rendered only when it is asked
  for, so a caller that lets go of each page before asking for the next holds one rendering,
  whatever the page count). Use the document as a context manager (or call ``close()``): an open PDF
  is let go of after its last page is read or when the document is closed, whichever comes first.
* What a page is depends on the format: a PDF page, a PowerPoint slide (its title, text boxes,
  tables and speaker notes), a Word section (a new one starts at each "Title" or "Heading 1"
  paragraph, so page 3 of a .docx is its third chapter; paragraphs and tables in reading order), an
  EPUB chapter (one XHTML file of the book's spine, in reading order), the whole main text of an HTML
  page (one page: its <main> or <article> when it has one, else its <body>, without scripts, styles,
  navigation, headers, footers and asides).
* A PDF page also carries its rendering, once, with its long side ``render_px`` pixels, and
  ``needs_ocr`` when it has (almost) no text layer: a scan. Pages that have a text layer are rendered
  ``text_page_px`` a side instead when that is given: their picture is only looked at, not read, and a
  smaller rendering is quicker to make and to keep.
* Only the first ``max_pages`` pages are read; the document's own count is ``page_count`` and the cut
  is said in ``warnings``. A Word, PowerPoint or EPUB file (a zip) whose parts declare more than
  ``max_unpacked_bytes`` uncompressed is refused before any part is read: a zip bomb can not fill
  memory (Python's zip reader never yields more than a part declares).
* A file that can not be read (encrypted, corrupt, no pages, a format recognised but not read)
  raises ``IngestError`` with a sentence saying why, from ``document_read``: before any page. A PDF
  page that can not be read or rendered raises ``IngestError`` naming that page when it is asked for.

Nothing here touches Django.
"""
from __future__ import annotations

import io
import posixpath
import re
import threading
import zipfile
from dataclasses import dataclass, field
from typing import Callable, Generator, Iterator
from urllib.parse import unquote

import docx
import pptx
import pypdfium2 as pdfium
from docx.table import Table
from lxml import etree
from pptx.shapes.group import GroupShape
from PIL import Image
from selectolax.lexbor import LexborHTMLParser, LexborNode

from ..errors import IngestError, UserInputError
from .sniffing import document_format, unsupported_document
from .tabular import text_decode

__all__ = ["PAGE_WORD", "Document", "DocumentPage", "document_format", "document_read"]

# Unpacked, the parts of an Office file or EPUB are held in memory (and parsed: several times their
# size again for XML); 256 MB is far past any real document's text and pictures.
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
# A PDF page whose text layer has fewer letters and digits than this is taken for a scan: a page
# number or a stamp in a text layer does not make its content readable.
SCAN_MAX_TEXT_CHARS = 20
# PDFium is not thread-safe: one call into it at a time per process. It is held while a PDF is opened,
# while one page is read and rendered, and while a PDF is closed, not while a caller works on a page
# (OCR), so threads reading PDFs take turns page by page. Re-entrant: an abandoned page iterator closes
# its PDF when the garbage collector finalizes it, which may happen in a thread that holds the lock.
_PDFIUM_LOCK = threading.RLock()
# What one page of each format is called, for messages ("page 3", "slide 3", "chapter 3").
PAGE_WORD = {"pdf": "page", "pptx": "slide", "docx": "section", "epub": "chapter", "html": "page"}


@dataclass
class DocumentPage:
    number: int  # 1-based: PDF page, PPTX slide, DOCX section, EPUB chapter (an HTML page is page 1)
    text: str  # the page's text ("" when the page has no text layer, e.g. a scan)
    image: Image.Image | None = None  # PDF only: the page rendered once (long side render_px or text_page_px), RGB
    needs_ocr: bool = False  # a PDF page with (almost) no text layer but a rendering


@dataclass
class Document:
    format: str  # "pdf" | "docx" | "pptx" | "html" | "epub"
    title: str  # the document's metadata title, else its first heading, else ""
    pages: Iterator[DocumentPage]  # read once, in order, each page when it is asked for
    page_count: int  # pages in the file; more than pages_read when cut at max_pages
    pages_read: int  # how many pages ``pages`` yields
    warnings: list[str] = field(default_factory=list)
    _release: Callable[[], None] | None = field(default=None, repr=False)  # lets go of an open PDF

    def close(self) -> None:
        """Stop reading: pages not yet read are not read, and an open PDF is closed. Safe to call twice."""
        if self._release is not None:
            self._release()

    def __enter__(self) -> "Document":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def document_read(data: bytes, *, name: str, max_pages: int, render_px: int = 1024, text_page_px: int | None = None,
                  max_unpacked_bytes: int = MAX_UNPACKED_BYTES) -> Document:
    """Read the document ``data`` (named ``name``) into its first ``max_pages`` pages; see the module's contract."""
    document_type = document_format(data, name)
    if document_type is None:
        described = unsupported_document(data, name)
        if described:
            raise IngestError(f"{described} files are not read; save it as PDF or DOCX")
        raise IngestError("not a document this site reads (PDF, DOCX, PPTX, HTML or EPUB)")
    if document_type == "pdf":
        return _pdf_read(data, max_pages=max_pages, render_px=render_px, text_page_px=text_page_px or render_px)
    if document_type == "html":
        title, text = _html_read(_html_decode(data, name))
        return Document(format="html", title=title, pages=iter([DocumentPage(number=1, text=text)]), page_count=1,
                        pages_read=1)
    with _zip_open(data, document_type=document_type, max_unpacked_bytes=max_unpacked_bytes) as archive:
        try:
            # python-docx and python-pptx open the zip again themselves, once its sizes have passed here.
            if document_type == "docx":
                title, texts = _docx_read(data)
            elif document_type == "pptx":
                title, texts = _pptx_read(data)
            else:
                title, texts = _epub_read(archive, name=name)
        except IngestError:
            raise
        except Exception as exc:  # the parsers raise KeyError, ValueError, lxml's errors... for a broken file
            raise IngestError(f"not a readable {document_type.upper()} file: {exc or type(exc).__name__}") from None
    return _document_cut(document_type, title, texts, max_pages=max_pages)


def _document_cut(document_type: str, title: str, texts: list[str], *, max_pages: int) -> Document:
    pages = [DocumentPage(number=number, text=text) for number, text in enumerate(texts[:max_pages], start=1)]
    return Document(format=document_type, title=title, pages=iter(pages), page_count=len(texts),
                    pages_read=len(pages), warnings=_cut_warnings(document_type, len(texts), max_pages))


def _cut_warnings(document_type: str, page_count: int, max_pages: int) -> list[str]:
    if page_count <= max_pages:
        return []
    return [f"only the first {max_pages:,} of {page_count:,} {PAGE_WORD[document_type]}s were read"]


# --- PDF -------------------------------------------------------------------------------------------------

def _pdf_read(data: bytes, *, max_pages: int, render_px: int, text_page_px: int) -> Document:
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise IngestError("the PDF is encrypted (password protected)") from None
            raise IngestError(f"not a readable PDF: {_pdfium_reason(exc)}") from None
        try:
            page_count = len(pdf)
            if page_count == 0:
                raise IngestError("the PDF has no pages")
            title = (pdf.get_metadata_dict().get("Title") or "").strip()
        except BaseException:
            pdf.close()
            raise
    pages_read = min(page_count, max_pages)
    pages = _pdf_pages(pdf, pages_read, render_px=render_px, text_page_px=text_page_px)
    return Document(format="pdf", title=title, pages=pages, page_count=page_count, pages_read=pages_read,
                    warnings=_cut_warnings("pdf", page_count, max_pages),
                    _release=lambda: _pdf_release(pages, pdf))


def _pdf_pages(pdf: pdfium.PdfDocument, count: int, *, render_px: int,
               text_page_px: int) -> Generator[DocumentPage, None, None]:
    """The first ``count`` pages of the open ``pdf``, each read when asked for; the PDF is closed after
    the last one, or when the iterator is closed or dropped before."""
    try:
        for index in range(count):
            # Yielded without a local name: the iterator holds no page while its caller works on it.
            yield _pdf_page_read(pdf, index, render_px=render_px, text_page_px=text_page_px)
    finally:
        with _PDFIUM_LOCK:
            pdf.close()


def _pdf_release(pages: Generator[DocumentPage, None, None], pdf: pdfium.PdfDocument) -> None:
    pages.close()  # an iterator not yet started never runs its ``finally``: the PDF is closed here too
    with _PDFIUM_LOCK:
        pdf.close()


def _pdf_page_read(pdf: pdfium.PdfDocument, index: int, *, render_px: int, text_page_px: int) -> DocumentPage:
    with _PDFIUM_LOCK:
        try:
            page = pdf[index]
            try:
                textpage = page.get_textpage()
                try:
                    text = _pdf_text_clean(textpage.get_text_bounded())
                finally:
                    textpage.close()
                needs_ocr = sum(character.isalnum() for character in text) < SCAN_MAX_TEXT_CHARS
                width, height = page.get_size()
                bitmap = page.render(scale=(render_px if needs_ocr else text_page_px) / max(width, height, 1))
                try:
                    image = bitmap.to_pil()  # BGR(x) pixels, copied into an RGB image
                finally:
                    bitmap.close()
            finally:
                page.close()
        except pdfium.PdfiumError as exc:
            raise IngestError(f"not a readable PDF: page {index + 1}: {_pdfium_reason(exc)}") from None
    if image.mode != "RGB":
        image = image.convert("RGB")
    return DocumentPage(number=index + 1, text=text, image=image, needs_ocr=needs_ocr)


def _pdf_text_clean(text: str) -> str:
    # PDFium ends lines with CRLF and marks hyphens it added at line ends with U+0002 / U+FFFE.
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x02", "-").replace("\ufffe", "-")
    return "\n".join(line.rstrip() for line in text.strip().split("\n"))


def _pdfium_reason(exc: Exception) -> str:
    """PDFium's own words in a pypdfium2 error: "data format error" from "Failed to load document (PDFium: Data
    format error).", "failed to load page" from "Failed to load page."."""
    reason = str(exc)
    if "(PDFium: " in reason:
        reason = reason[reason.find("(PDFium: ") + len("(PDFium: "):reason.rfind(")")]
    reason = reason.rstrip(".")
    return reason[:1].lower() + reason[1:]


# --- Office files and EPUB (zips) ------------------------------------------------------------------------

def _zip_open(data: bytes, *, document_type: str, max_unpacked_bytes: int) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise IngestError(f"not a readable {document_type.upper()} file: {exc}") from None
    unpacked = sum(info.file_size for info in archive.infolist())
    if unpacked > max_unpacked_bytes:
        archive.close()
        raise IngestError(f"its parts unpack to {unpacked:,} bytes; the limit is {max_unpacked_bytes:,} "
                          "(a zip bomb?)")
    return archive


def _docx_read(data: bytes) -> tuple[str, list[str]]:
    """The title and sections of a Word file: a section starts at each "Title" or "Heading 1" paragraph."""
    document = docx.Document(io.BytesIO(data))
    sections: list[list[str]] = [[]]
    first_heading = ""
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            sections[-1].append(_docx_table_text(block))
            continue
        text = block.text.strip()
        style = block.style.name if block.style is not None else ""
        if style in ("Title", "Heading 1") and text:
            first_heading = first_heading or text
            if any(sections[-1]):
                sections.append([])
        sections[-1].append(text)
    texts = [_lines_join(section) for section in sections]
    return (document.core_properties.title or "").strip() or first_heading, [text for text in texts if text] or [""]


def _docx_table_text(table) -> str:
    rows = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            if cell._tc not in seen:  # a merged cell is listed once per grid column it spans
                seen.add(cell._tc)
                cells.append(cell.text.strip())
        rows.append("\t".join(cells))
    return _lines_join(rows)


def _pptx_read(data: bytes) -> tuple[str, list[str]]:
    """The title and slides of a PowerPoint file: each slide's title, text boxes, tables and notes."""
    presentation = pptx.Presentation(io.BytesIO(data))
    texts, first_title = [], ""
    for slide in presentation.slides:
        title_shape = slide.shapes.title
        title = title_shape.text_frame.text.strip() if title_shape is not None else ""
        first_title = first_title or title
        title_id = title_shape.shape_id if title_shape is not None else None
        lines = [title] + [text for shape in slide.shapes if shape.shape_id != title_id
                           for text in _pptx_shape_texts(shape)]
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            lines.append(slide.notes_slide.notes_text_frame.text.strip())
        texts.append(_lines_join(lines))
    return (presentation.core_properties.title or "").strip() or first_title, texts


def _pptx_shape_texts(shape) -> list[str]:
    if isinstance(shape, GroupShape):
        return [text for inner in shape.shapes for text in _pptx_shape_texts(inner)]
    if getattr(shape, "has_table", False) and shape.has_table:
        return ["\t".join(cell.text.strip() for cell in row.cells) for row in shape.table.rows]
    if shape.has_text_frame:
        return [shape.text_frame.text.strip()]
    return []


_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_CONTAINER_NS = {"c": "urn:oasis:names:tc:opendocument:xmlns:container"}
_OPF_NS = {"opf": "http://www.idpf.org/2007/opf", "dc": "http://purl.org/dc/elements/1.1/"}


def _epub_read(archive: zipfile.ZipFile, *, name: str) -> tuple[str, list[str]]:
    """The title and chapters (the XHTML files of the spine, in reading order) of an EPUB."""
    container = etree.fromstring(archive.read("META-INF/container.xml"), _XML_PARSER)
    rootfile = container.find(".//c:rootfile", _CONTAINER_NS)
    package_path = rootfile.get("full-path") if rootfile is not None else None
    if not package_path:
        raise IngestError("not a readable EPUB file: its META-INF/container.xml names no package file")
    package = etree.fromstring(archive.read(package_path), _XML_PARSER)
    manifest = {item.get("id"): item.get("href") for item in package.iterfind(".//opf:manifest/opf:item", _OPF_NS)}
    spine = [manifest[ref.get("idref")] for ref in package.iterfind(".//opf:spine/opf:itemref", _OPF_NS)
             if ref.get("idref") in manifest]
    folder = posixpath.dirname(package_path)
    chapters = [archive.read(posixpath.normpath(posixpath.join(folder, unquote(href.split("#")[0]))))
                for href in spine]
    if not chapters:
        raise IngestError("the EPUB has no chapters")
    titles = [text.strip() for text in package.xpath(".//dc:title/text()", namespaces=_OPF_NS)]
    texts, first_heading = [], ""
    for chapter in chapters:
        heading, text = _html_read(_html_decode(chapter, name))
        first_heading = first_heading or heading
        texts.append(text)
    return next((title for title in titles if title), first_heading), texts


# --- HTML ------------------------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# Parts of a page around its content: menus, banners, sidebars, scripts.
_NOISE_TAGS = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "iframe", "svg",
               "button", "select")
# Elements whose text starts on a line of its own.
_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
               "article", "main", "blockquote", "pre", "dd", "dt", "dl", "figcaption", "figure", "hr", "td", "th",
               "body", "address", "details", "summary"}


def _html_decode(data: bytes, name: str) -> str:
    """The page's text: in the charset its <meta> declares when that is one Python knows, else detected."""
    declared = _META_CHARSET.search(data[:4096])
    if declared and not data.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode(declared.group(1).decode("ascii"))
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown declaration: detect instead
    try:
        return text_decode(data, name)[0]
    except UserInputError as exc:
        raise IngestError(str(exc).removeprefix(f"{name}: ")) from None


def _html_read(markup: str) -> tuple[str, str]:
    """(title, main text) of an HTML page: the title from <title>, else the first <h1>."""
    tree = LexborHTMLParser(markup)
    title_node = tree.css_first("title") or tree.css_first("h1")
    title = _spaces_collapse(title_node.text()) if title_node is not None else ""
    tree.strip_tags(list(_NOISE_TAGS))
    main = tree.css_first("main") or tree.css_first("[role=main]")
    articles = [main] if main is not None else tree.css("article") or [tree.body]
    return title, _lines_join(_html_text(node) for node in articles if node is not None)


def _html_text(root: LexborNode) -> str:
    parts: list[str] = []
    for node in root.traverse(include_text=True):
        if node.tag == "-text":
            parts.append(node.text_content or "")
        elif node.tag in _BLOCK_TAGS:
            parts.append("\n")
    return _lines_join(_spaces_collapse(line) for line in "".join(parts).split("\n"))


def _spaces_collapse(text: str) -> str:
    return " ".join(text.split())


def _lines_join(lines) -> str:
    return "\n".join(line for line in lines if line)
