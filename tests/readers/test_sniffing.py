"""A file is what its bytes say (libmagic): Office files, books, PDFs and web pages are documents, not
archives; videos are videos and voice recordings are audio, whatever their container."""
import io
import zipfile

import av
import numpy as np
import openpyxl
import pytest

from multimodal.readers import sniffing
from multimodal.readers.sniffing import content_kind, file_head
from tests.conftest import page_upload, zip_bytes
from tests.document_making import docx_bytes, epub_bytes, pdf_bytes, pptx_bytes
from tests.speech_audio import encoded

WORD_FILE = docx_bytes([("heading1", "Warranty"), ("paragraph", "Two years on the frame.")])


def _xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    workbook.active.append(["title", "description"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _odt() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        archive.writestr("content.xml", "<office:document-content/>")
    return buffer.getvalue()


def _kinds(tmp_path, files: dict[str, bytes]) -> dict[str, str]:
    """content_kind of each file as the ingest pipeline asks it: from the head ``file_head`` reads off disk."""
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: content_kind(name, file_head(tmp_path / name)) for name in files}


def test_office_files_books_pdfs_and_web_pages_are_documents_and_only_real_archives_are_zips(tmp_path):
    assert "docProps/thumbnail.jpeg" in zipfile.ZipFile(io.BytesIO(WORD_FILE)).namelist()

    kinds = _kinds(tmp_path, {
        "warranty.docx": WORD_FILE,
        "warranty-named-like-an-archive.zip": WORD_FILE,
        "deck.pptx": pptx_bytes([{"title": "Plan", "body": "Ship it"}]),
        "book.epub": epub_bytes("Book", [("one.xhtml", "<p>Once.</p>")]),
        "report.pdf": pdf_bytes(["Revenue grew."]),
        "page.html": b"<!DOCTYPE html><html><head><title>Shop</title></head><body><p>Bikes</p></body></html>",
        "fragment.htm": b"<p>Opening hours: 9 to 5</p>",
        "letter.odt": _odt(),
        "bundle.zip": zip_bytes({"warranty.docx": WORD_FILE, "photo.txt": b"not a photo"}),
        "catalogue.xlsx": _xlsx(),
        "notes.txt": b"<html><body>kept as text: the name says notes</body></html>",
    })

    assert kinds == {
        "warranty.docx": "document", "warranty-named-like-an-archive.zip": "document", "deck.pptx": "document",
        "book.epub": "document", "report.pdf": "document", "page.html": "document", "fragment.htm": "document",
        "letter.odt": "document", "bundle.zip": "zip", "catalogue.xlsx": "table", "notes.txt": "text",
    }


def test_without_libmagic_documents_are_still_told_from_archives_by_their_extension(tmp_path, monkeypatch):
    monkeypatch.setattr(sniffing, "magic", None)  # a machine without libmagic1

    kinds = _kinds(tmp_path, {"warranty.docx": WORD_FILE, "bundle.zip": zip_bytes({"warranty.docx": WORD_FILE}),
                              "report.pdf": pdf_bytes(["Revenue grew."]), "catalogue.xlsx": _xlsx()})

    assert kinds == {"warranty.docx": "document", "bundle.zip": "zip", "report.pdf": "document",
                     "catalogue.xlsx": "table"}


def _video(container_format: str, codec: str) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for shade in range(5):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), shade * 50, np.uint8),
                                                                    format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def test_videos_are_videos_and_voice_recordings_are_audio_whatever_their_container(tmp_path):
    voice = (np.sin(np.arange(8000) * 0.2) * 0.3).astype(np.float32)

    kinds = _kinds(tmp_path, {
        "talk.mp4": encoded(voice, "mp4"),  # pictures and sound
        "clip.webm": _video("webm", "libvpx"),
        "clip.mkv": _video("matroska", "mpeg4"),
        "clip.avi": _video("avi", "mpeg4"),
        "voice-note.webm": encoded(voice, "webm"),  # what a browser records: WebM with only a sound track
        "memo.m4a": encoded(voice, "m4a"),
        "memo.ogg": encoded(voice, "ogg"),
    })

    assert kinds == {"talk.mp4": "video", "clip.webm": "video", "clip.mkv": "video", "clip.avi": "video",
                     "voice-note.webm": "audio", "memo.m4a": "audio", "memo.ogg": "audio"}


@pytest.mark.django_db
def test_a_word_file_uploaded_alone_or_in_a_zip_is_one_document_not_an_archive_of_its_parts(
        superuser_client, django_capture_on_commit_callbacks):
    job = page_upload(superuser_client, django_capture_on_commit_callbacks, {
        "warranty.docx": WORD_FILE,
        "bundle.zip": zip_bytes({"manuals/warranty.docx": WORD_FILE}),
    })

    # No unit for word/document.xml, [Content_Types].xml or the docProps/thumbnail.jpeg preview.
    assert sorted(job.units.values_list("name", flat=True)) == ["bundle.zip/manuals/warranty.docx", "warranty.docx"]
