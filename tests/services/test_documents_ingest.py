"""Documents and long texts are searched by page and by passage: real pypdfium2, python-docx, python-pptx,
selectolax and Tesseract on files the tests make, the deterministic encoder and Milvus Lite."""
import pytest

from multimodal import encoders, store
from multimodal.models import Corpus, IngestJob, Item
from multimodal.query.types import SearchQuery
from multimodal.selectors import job_summary, search_response
from multimodal.services.jobs import job_create_from_paths, job_run

from ..conftest import image_bytes, ingest_files, zip_bytes
from ..document_making import docx_bytes, pdf_bytes, pdf_page_unreadable, pptx_bytes
from ..live_services import ingest_peaks_rss_mb

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ocr_on")]

# Words the deterministic encoder puts on its "unknown" axis: the known words of a query stand out.
FILLER = ("Quarterly figures were reviewed by the committee and the minutes record every motion. "
          "Shipping volumes rose slightly while warehouse costs stayed within the plan agreed last spring. ")
RARE_PHRASE = "green bicycle chair"


def _vector_count() -> int:
    return store.collection_for(encoders.get()).count()


def _page(number: int, phrase: str = "") -> str:
    """About 90 words: two or three passages, the phrase (if any) inside the second paragraph."""
    return f"Page {number} notes. {FILLER * 2}\n\nThe archive mentions a {phrase or 'plain folder'} once. {FILLER}"


def _vector_score(result: dict) -> float:
    return sum(contribution["score"] for contribution in result["explanation"]["contributions"]
               if contribution["channel"] == "vector")


def _search(text: str, **query) -> list[dict]:
    return search_response(query=SearchQuery(text=text, top_k=10, **query))["results"]


def test_a_pdf_is_found_by_the_passage_and_page_that_hold_a_phrase_and_its_scan_by_ocr(
        deterministic_encoder, django_capture_on_commit_callbacks, client):
    corpus = Corpus.objects.create(name="reports")
    data = pdf_bytes([_page(1), _page(2), _page(3, RARE_PHRASE), None], title="Annual Report")
    report = ingest_files(corpus, {"report.pdf": data})
    assert (report.created, report.failures, report.warnings) == (1, [], [])

    document = Item.objects.get(kind=Item.Kind.DOCUMENT)
    assert document.title == "Annual Report" and document.file.name.endswith(".pdf") and document.thumbnail
    assert document.metadata["format"] == "pdf" and document.metadata["page_count"] == 4
    assert document.metadata["pages_read"] == 4 and document.metadata["ocr_pages"] == [4]
    pages = list(document.children.filter(kind=Item.Kind.PAGE).order_by("page"))
    assert [page.page for page in pages] == [1, 2, 3, 4] and all(page.thumbnail for page in pages)
    assert "INVOICE" in pages[3].text  # the scanned page's words, read by Tesseract
    passages = list(document.children.filter(kind=Item.Kind.PASSAGE).order_by("pk"))
    assert {passage.page for passage in passages} == {1, 2, 3, 4} and len(passages) >= 7
    for passage in passages:  # each passage is where its span says in the document's text
        start, end = passage.metadata["span"]
        assert document.text[start:end] == passage.text
    # The document owns no vector: each page owns its picture's, each passage its text's.
    assert _vector_count() == len(pages) + len(passages)

    hit = client.get("/api/search", {"q": f"the {RARE_PHRASE}", "top_k": 10}).json()["results"][0]
    assert hit["kind"] == "passage" and RARE_PHRASE in hit["snippet"]
    assert hit["page"] == 3 and hit["page_label"] == "page 3 of Annual Report"
    assert hit["document_url"] == f"{document.file.url}#page=3"
    assert hit["parent"] == {"id": document.pk, "kind": "document", "title": "Annual Report",
                             "detail_url": f"/items/{document.pk}"}

    # A word printed only in the scan: the keyword channel finds the page OCR read it on.
    hit = _search("invoice")[0]
    assert hit["page"] == 4 and "INVOICE" in hit["snippet"]
    assert "keyword" in [contribution["channel"] for contribution in hit["explanation"]["contributions"]]

    # Ingesting the same file again updates every child in place.
    children = list(document.children.order_by("pk").values_list("pk", "kind", "page"))
    report = ingest_files(corpus, {"report-copy.pdf": data})
    assert (report.created, report.updated) == (0, 1)
    assert list(document.children.order_by("pk").values_list("pk", "kind", "page")) == children
    assert _vector_count() == len(children)

    # Deleting the document takes its pages, passages, vectors and files.
    files = [document.file.path, document.thumbnail.path, pages[0].thumbnail.path]
    with django_capture_on_commit_callbacks(execute=True):
        document.delete()
    assert not Item.objects.exists() and _vector_count() == 0
    assert not any(pages[0].thumbnail.storage.exists(path) for path in files)


def test_word_powerpoint_and_html_passages_name_their_section_slide_and_page(deterministic_encoder):
    corpus = Corpus.objects.create(name="office")
    report = ingest_files(corpus, {
        "handbook.docx": docx_bytes([("heading1", "Welcome"), ("paragraph", FILLER * 2),
                                     ("heading1", "Travel"), ("paragraph", f"{FILLER} Bring the red wall map. {FILLER}")],
                                    title="Handbook"),
        "deck.pptx": pptx_bytes([{"title": "Agenda", "body": FILLER}, {"title": "Results", "body": FILLER},
                                 {"title": "Design", "body": f"A blue cat sketch. {FILLER}"}]),
        "page.html": (f"<html><head><title>Shop news</title></head><body><nav>Home Contact</nav><main><p>{FILLER}</p>"
                      f"<p>Our green chair is back.</p></main></body></html>").encode(),
    })
    assert (report.created, report.failures) == (3, [])
    assert Item.objects.filter(kind=Item.Kind.PAGE).count() == 0  # only PDF pages are rendered

    for query, label, title in [("red wall", "section 2", "Handbook"), ("blue cat", "slide 3", "Agenda"),
                                ("green chair", "page 1", "Shop news")]:
        hit = _search(query)[0]
        assert hit["kind"] == "passage" and hit["page_label"] == f"{label} of {title}", (query, hit)
        assert query in hit["snippet"].lower()
    handbook = Item.objects.get(title="Handbook")
    assert handbook.file.name.endswith(".docx") and handbook.metadata["page_word"] == "section"
    assert not Item.objects.filter(title="Home").exists() and "Home Contact" not in Item.objects.get(
        title="Shop news").text  # the page's navigation is not its content


def test_a_long_text_file_is_found_by_a_phrase_near_its_end_through_its_passage(deterministic_encoder):
    corpus = Corpus.objects.create(name="notes")
    sentences = [f"Entry {number} of the logbook lists the tides and the weather." for number in range(200)]
    text = "\n\n".join(" ".join(sentences[start:start + 5]) for start in range(0, 200, 5))
    text += f"\n\nOn the last day we found a {RARE_PHRASE} on the pier."
    assert 2000 <= len(text.split()) <= 2300
    report = ingest_files(corpus, {"logbook.txt": text.encode()})
    assert (report.created, report.failures) == (1, [])
    note = Item.objects.get(kind=Item.Kind.TEXT)
    passages = list(note.children.order_by("pk"))
    assert len(passages) >= 40 and {passage.kind for passage in passages} == {"passage"}
    # The note keeps its own vector (of its beginning, where the phrase is not) beside its passages'.
    assert _vector_count() == 1 + len(passages)

    results = _search(RARE_PHRASE)
    hit = results[0]
    assert hit["kind"] == "passage" and hit["parent"]["id"] == note.pk and hit["id"] == passages[-1].pk
    start, end = hit["span"]
    assert RARE_PHRASE in note.text[start:end]
    # The note shows once: as its best part, the passage (grouped under it).
    assert [result["id"] for result in results].count(hit["id"]) == 1 and note.pk not in [r["id"] for r in results]
    # Both hold the phrase for the keyword channel; only the passage's vector sees it.
    whole_note = next(result for result in _search(RARE_PHRASE, group=False) if result["id"] == note.pk)
    assert _vector_score(hit) > 0 == _vector_score(whole_note)

    # A short note stays one item: no passages.
    ingest_files(corpus, {"short.txt": b"A red bicycle."})
    assert not Item.objects.get(title="A red bicycle.").children.exists()


def test_an_encrypted_pdf_in_a_zip_fails_alone_with_its_reason_and_a_cut_document_lands_with_a_warning(
        tmp_path, deterministic_encoder, settings):
    settings.MULTIMODAL_MAX_DOCUMENT_PAGES = 2
    archive = tmp_path / "upload.zip"
    archive.write_bytes(zip_bytes({
        "minutes.pdf": pdf_bytes([_page(1), _page(2), _page(3)]),
        "secret.pdf": pdf_bytes(["Salaries"], user_password="hunter2"),
        "handbook.docx": docx_bytes([("paragraph", "Welcome aboard.")]),
        "red.png": image_bytes((255, 0, 0)),
    }))
    corpus = Corpus.objects.create(name="mixed")
    job = job_run(job_id=job_create_from_paths(corpus=corpus, paths=[str(archive)]).pk)
    assert job.status == IngestJob.Status.DONE and (job.done, job.failed) == (3, 1)
    summary = job_summary(job)
    assert [(failure["name"], failure["reason"]) for failure in summary["failures"]] == [
        (f"{archive}/secret.pdf", "the PDF is encrypted (password protected)")]
    assert {"name": f"{archive}/minutes.pdf", "reason": "only the first 2 of 3 pages were read"} in summary["warnings"]
    # The Word file is a document, not an archive whose parts fail one by one.
    assert set(corpus.items.filter(parent=None).values_list("kind", flat=True)) == {"document", "image"}
    minutes = corpus.items.get(kind=Item.Kind.DOCUMENT, source_name__endswith="minutes.pdf")
    assert minutes.children.filter(kind=Item.Kind.PAGE).count() == 2


def test_a_pdf_whose_page_can_not_be_read_fails_alone_naming_the_page(deterministic_encoder):
    corpus = Corpus.objects.create(name="reports")
    report = ingest_files(corpus, {
        "minutes.pdf": pdf_page_unreadable(pdf_bytes([_page(1), _page(2), _page(3)]), 3),
        "agenda.pdf": pdf_bytes([_page(1, RARE_PHRASE)]),
    })
    assert report.created == 1
    assert [(failure.name, failure.reason) for failure in report.failures] == [
        ("minutes.pdf", "not a readable PDF: page 3: failed to load page")]
    assert list(corpus.items.filter(parent=None).values_list("source_name", flat=True)) == ["agenda.pdf"]
    assert _search(RARE_PHRASE)[0]["parent"]["title"] == "agenda"


def test_a_long_scanned_pdf_is_ingested_holding_one_full_page_rendering_at_a_time(tmp_path):
    """60 image-only pages, each rendered 1024 px high for OCR (~3.4 MB): read, shrunk to its page's
    picture (~0.4 MB) and let go of one at a time, the document adds ~30 MB (its pictures and an encoder
    batch) to the peak of a process that ingested a one-page scan, not 60 renderings held together
    (~190 MB on the old code)."""
    one, many = tmp_path / "one", tmp_path / "many"
    one.mkdir(), many.mkdir()
    (one / "scan.pdf").write_bytes(pdf_bytes([None]))
    (many / "scans.pdf").write_bytes(pdf_bytes([None] * 60))
    baseline_mb, peak_mb = ingest_peaks_rss_mb([one, many], tmp_path / "data")
    assert peak_mb - baseline_mb < 100, (baseline_mb, peak_mb)
