"""Stored text and search responses are bounded, whatever an upload holds.

A 188 KB .xlsx can hold one 131 MB shared string: its rows land with each cell cut to
MULTIMODAL_MAX_CELL_CHARS as the workbook is read (the string is never held whole), and the job says
which row lost what. A search result carries at most MULTIMODAL_RESULT_TEXT_CHARS of each text with a
``truncated`` flag, even for an item stored before the limits; a response stops at
MULTIMODAL_MAX_RESPONSE_KB. Jobs run in-process here, as in tests/test_jobs.py.
"""
import io
import json
import zipfile

import pytest

from multimodal.models import IngestUnit, Item
from multimodal.readers.tabular import table_read
from multimodal.selectors import job_summary
from multimodal.services.ingest import Source, items_ingest

from ..conftest import page_upload

pytestmark = pytest.mark.django_db

MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def xlsx_with_shared_string(rows: list[list[str | int]], shared: list[str]) -> bytes:
    """A minimal .xlsx written part by part: ``rows`` of cells, an int being an index into ``shared``."""
    def cell(column: int, line: int, value) -> str:
        reference = f"{'ABCDEFGH'[column]}{line}"
        if isinstance(value, int):
            return f'<c r="{reference}" t="s"><v>{value}</v></c>'
        return f'<c r="{reference}" t="inlineStr"><is><t>{value}</t></is></c>'

    sheet_rows = "".join(
        f'<row r="{line}">' + "".join(cell(column, line, value) for column, value in enumerate(row)) + "</row>"
        for line, row in enumerate(rows, start=1)
    )
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            "</Types>"),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN_NS}" xmlns:r="{REL_NS}">'
            '<sheets><sheet name="Products" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN_NS}"><sheetData>{sheet_rows}</sheetData></worksheet>'),
        "xl/sharedStrings.xml": (
            f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN_NS}" count="{len(shared)}" uniqueCount="{len(shared)}">'
            + "".join(f"<si><t>{text}</t></si>" for text in shared) + "</sst>"),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in parts.items():
            archive.writestr(name, content)
    return buffer.getvalue()


HUGE_CHARS = 1_000_000  # the workbook held 131 MB; a million characters shows the same, faster
BOMB_ROWS = [["sku", "title", "description"], ["A-1", "Word one", 0], ["A-2", "Word two", 0], ["A-3", "Word three", 0]]


def test_a_huge_shared_string_lands_cut_in_every_row_and_each_cut_is_reported(superuser_client, deterministic_encoder,
                                                                              django_capture_on_commit_callbacks):
    workbook = xlsx_with_shared_string(BOMB_ROWS, ["word " * (HUGE_CHARS // 5)])
    assert len(workbook) < 20_000  # small on the wire, a million characters inside

    job = page_upload(superuser_client, django_capture_on_commit_callbacks, {"catalogue.xlsx": workbook})

    summary = superuser_client.get(f"/api/jobs/{job.pk}").json()
    assert (summary["status"], summary["done"], summary["failed"]) == ("done", 3, 0)
    cut = f"description cut from {HUGE_CHARS:,} to 32,767 characters"
    assert {warning["name"]: warning["reason"] for warning in summary["warnings"]} == {
        f"catalogue.xlsx line {line}": cut for line in (2, 3, 4)}
    assert summary["warnings"] == job_summary(job)["warnings"]
    assert sorted(len(text) for text in Item.objects.values_list("text", flat=True)) == [32_767] * 3
    assert all(len(unit.row["description"]) == 32_767 for unit in IngestUnit.objects.filter(job=job))
    page = superuser_client.get(job.get_absolute_url()).content.decode()
    assert cut in page


def test_shared_strings_are_cut_while_they_stream_in():
    from multimodal.readers.spreadsheets import shared_strings_read

    document = (f'<sst xmlns="{MAIN_NS}"><si><t>short</t></si><si><r><t>rich </t></r><r><t>text</t></r>'
                f'<rPh><t>phonetic</t></rPh></si><si><t>{"x" * 5000}</t></si></sst>').encode()
    cut: dict[str, int] = {}

    strings = shared_strings_read(io.BytesIO(document), 100, cut)

    assert strings == ["short", "rich text", "x" * 100]
    assert cut == {"x" * 100: 5000}


def test_a_shared_string_table_with_entities_is_refused_before_they_expand():
    from multimodal.readers.spreadsheets import XlsxRefused, shared_strings_read

    document = (b'<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
                b"<sst><si><t>&b;</t></si></sst>")
    with pytest.raises(XlsxRefused, match="^holds a DTD, which spreadsheets do not use$"):
        shared_strings_read(io.BytesIO(document), 100, {})


def test_a_long_inline_cell_refuses_the_workbook_naming_the_cell(tmp_path):
    path = tmp_path / "catalogue.xlsx"
    path.write_bytes(xlsx_with_shared_string([["title"], ["y" * 40_000]], []))

    with pytest.raises(ValueError, match=r"^catalogue\.xlsx: cell A2 holds more than 32,767 characters of its own"):
        table_read(path, name="catalogue.xlsx")


def test_a_workbook_unpacking_past_the_limit_is_refused(tmp_path):
    from multimodal.readers.limits import TextLimits

    path = tmp_path / "catalogue.xlsx"
    path.write_bytes(xlsx_with_shared_string(BOMB_ROWS, ["word " * 20_000]))

    with pytest.raises(ValueError, match=r"^catalogue\.xlsx: unpacks to [\d,]+ bytes; the limit is 50,000$"):
        table_read(path, name="catalogue.xlsx", limits=TextLimits(xlsx_bytes=50_000))


def test_csv_cells_rows_and_tables_are_cut_or_refused_at_their_limits(tmp_path):
    from multimodal.readers.limits import TextLimits

    path = tmp_path / "products.csv"
    path.write_text("title,description,colour,size\nBike," + "d" * 500 + "," + "c" * 300 + ",M\n")

    row = table_read(path, name="products.csv", limits=TextLimits(cell=200, row=450)).rows[0]
    assert (len(row.description), row.specs) == (200, {"colour": "c" * 200, "size": "M"})
    assert row.notes == ("description cut from 500 to 200 characters", "colour cut from 300 to 200 characters")
    row = table_read(path, name="products.csv", limits=TextLimits(cell=200, row=300)).rows[0]
    assert row.specs == {"colour": "c" * 96}  # what is left of the row's 300 after title and description
    with pytest.raises(ValueError, match=r"^products\.csv: holds more than 500 characters of text by line 2"):
        table_read(path, name="products.csv", limits=TextLimits(table=500))
    with pytest.raises(ValueError, match=r"^products\.csv: 839 bytes is more text than a table may hold \(100 char"):
        table_read(path, name="products.csv", limits=TextLimits(table=100))
    path.write_text("title,description\nBike," + "d" * 200_000 + "\n")
    with pytest.raises(ValueError, match=r"^products\.csv: line 2 has a cell of more than 131,072 characters "
                                         r"\(cells are kept to 32,767\)$"):
        table_read(path, name="products.csv")


def test_a_text_file_over_the_limit_is_cut_and_reported(settings, deterministic_encoder):
    from multimodal.models import Corpus

    settings.MULTIMODAL_MAX_TEXT_CHARS = 1_000
    corpus = Corpus.objects.create(name="notes")
    report = items_ingest(corpus=corpus, sources=[Source(name="long.txt", read=lambda: b"word " * 1_000, size=5_000)])

    assert report.landed == 1 and report.failures == []
    assert [(warning.name, warning.reason) for warning in report.warnings] == [
        ("long.txt", "text cut from 4,999 to 1,000 characters")]
    assert len(Item.objects.get(parent=None).text) == 1_000


def _catalogue_ingest(rows: int, description: str) -> None:
    from multimodal.models import Corpus
    from multimodal.services.ingest import ProductRow

    corpus = Corpus.objects.create(name="shop")
    sources = [Source(name=f"catalogue.csv line {line}", row=ProductRow(
        title=f"Word {line}", description=description, specs={"colour": "red " * 400}, external_id=f"A-{line}"))
        for line in range(rows)]
    assert items_ingest(corpus=corpus, sources=sources).landed == rows


def test_search_results_carry_bounded_text_and_say_when_it_was_cut(client, deterministic_encoder):
    _catalogue_ingest(3, "word " * 2_000)
    # An item stored before the limits existed, as the search found it: still bounded.
    Item.objects.filter(external_id="A-0").update(text="word " * 400_000)

    response = client.get("/api/search", {"q": "word", "top_k": 10})

    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 3 and len(response.content) < 30_000
    for result in results:
        assert result["truncated"] is True
        assert len(result["description"]) == 1_000 and result["description"].endswith("…")
        assert sum(len(key) + len(value) for key, value in result["specs"].items()) <= 1_000
        assert len(result["snippet"]) <= 300
    page = client.get("/", {"q": "word"})
    assert page.status_code == 200 and len(page.content) < 200_000


def test_a_search_response_stops_at_its_size_budget(client, settings, deterministic_encoder):
    _catalogue_ingest(6, "word " * 2_000)
    settings.MULTIMODAL_MAX_RESPONSE_KB = 8

    body = client.get("/api/search", {"q": "word", "top_k": 6}).json()

    assert 0 < len(body["results"]) < 6 and body["page"]["truncated"] is True
    assert len(json.dumps(body["results"]).encode()) <= 8 * 1024
