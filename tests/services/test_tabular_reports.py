"""Rows and files that are dropped or altered on the way in are reported, each with its reason.

A Shift-JIS catalogue is read as Shift-JIS (not as mojibake), a row with more cells than the header
says which cells it lost, a quote that swallows the next rows fails its row naming them, and a file
whose name is not UTF-8 (inside a zip, or in a multipart upload) is kept under its decoded name and
the rename is reported. Jobs run in-process here, as in tests/test_jobs.py.
"""
import io
import zipfile

import pytest

from multimodal.errors import UserInputError
from multimodal.models import IngestJob, Item
from multimodal.readers.archives import zip_extract_safely
from multimodal.readers.tabular import table_read
from multimodal.selectors import job_summary

from ..conftest import noise_png, page_upload

pytestmark = pytest.mark.django_db

JAPANESE_CATALOGUE = "title,description\n赤い自転車,軽量アルミフレームの自転車です\n卓上ランプ,明るいLEDの卓上ランプです\n"


def _upload(client, capture_on_commit, files: dict[str, bytes]) -> dict:
    return _summary(client, page_upload(client, capture_on_commit, files))


def _summary(client, job: IngestJob) -> dict:
    """The job as the API reports it (the page shows the same warnings)."""
    api = client.get(f"/api/jobs/{job.pk}")
    assert api.status_code == 200
    assert api.json()["warnings"] == job_summary(job)["warnings"]
    return api.json()


def _reasons(entries: list[dict]) -> dict[str, str]:
    return {entry["name"]: entry["reason"] for entry in entries}


def test_a_shift_jis_catalogue_is_read_as_shift_jis_and_the_job_says_so(superuser_client, deterministic_encoder,
                                                                          django_capture_on_commit_callbacks):
    summary = _upload(superuser_client, django_capture_on_commit_callbacks,
                      {"catalogue.csv": JAPANESE_CATALOGUE.encode("shift_jis")})

    assert (summary["status"], summary["done"], summary["failed"]) == ("done", 2, 0)
    assert sorted(Item.objects.values_list("title", flat=True)) == ["卓上ランプ", "赤い自転車"]
    assert Item.objects.get(title="赤い自転車").text == "軽量アルミフレームの自転車です"
    assert _reasons(summary["warnings"]) == {"catalogue.csv": "not UTF-8: read as cp932"}
    assert summary["tables"][0]["notes"] == ["not UTF-8: read as cp932"]
    page = superuser_client.get(summary["page_url"]).content.decode()
    assert "Changed on the way in" in page and "not UTF-8: read as cp932" in page


def test_bytes_no_text_encoding_fits_are_refused_with_a_clear_reason(tmp_path):
    path = tmp_path / "products.csv"
    path.write_bytes(b"title\n" + bytes(range(0x80, 0x100)) * 40 + b"\n")

    with pytest.raises(UserInputError, match=r"^products\.csv: cannot be decoded as text \(not UTF-8, and no other "
                                             r"text encoding fits its bytes\); save it as UTF-8$"):
        table_read(path, name="products.csv")


def test_cells_past_the_header_are_reported_with_the_row_that_lost_them(superuser_client, deterministic_encoder,
                                                                        django_capture_on_commit_callbacks):
    catalogue = ("sku,title,description\n"
                 "A-1,Trail bike,Red, fast and light,carbon frame\n"
                 "A-2,Desk lamp,An LED lamp\n"
                 "A-3,Chair,Oak,,\n")  # trailing empty cells: nothing is lost, nothing to say
    summary = _upload(superuser_client, django_capture_on_commit_callbacks, {"catalogue.csv": catalogue.encode()})

    assert (summary["done"], summary["failed"]) == (3, 0)
    assert _reasons(summary["warnings"]) == {
        "catalogue.csv line 2": "5 cells but the header has 3 columns: 2 cells past column 3 were dropped "
                                "('fast and light', 'carbon frame')",
    }


def test_a_quote_closed_rows_later_fails_its_row_and_the_rows_after_it_land(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text('sku,title,description\nA-1,"Trail bike,Red bike\nA-2,Desk lamp,"An LED lamp"\nA-3,Chair,Oak\n')

    table = table_read(path, name="products.csv")
    assert [row.title for row in table.rows] == ["Chair"]
    assert [failure.line for failure in table.failures] == [2]
    assert "text lines 2-3 were read as one cell, and the row inside it was not ingested" in table.failures[0].reason


def test_an_unterminated_quote_fails_its_row_and_names_the_rows_it_swallowed(superuser_client, deterministic_encoder,
                                                                             django_capture_on_commit_callbacks):
    catalogue = ('sku,title,description\n'
                 'A-1,Trail bike,"Red bike\n'
                 'A-2,Desk lamp,An LED lamp\n'
                 'A-3,Chair,Oak chair\n')
    summary = _upload(superuser_client, django_capture_on_commit_callbacks, {"catalogue.csv": catalogue.encode()})

    assert (summary["total"], summary["done"], summary["failed"]) == (1, 0, 1)
    reason = _reasons(summary["failures"])["catalogue.csv line 2"]
    assert reason.startswith("a quote opened in this row is not closed before text line 4 (an unterminated quote?): "
                             "text lines 2-4 were read as one cell, and the 2 rows inside it were not ingested")
    assert Item.objects.count() == 0


def test_a_quoted_cell_with_line_breaks_and_commas_is_still_one_row(tmp_path):
    path = tmp_path / "products.csv"
    path.write_text('sku,title,description\nA-1,Bike,"Red bike.\nLight, fast, and cheap\n\nSays ""Hi"""\nA-2,Lamp,LED\n')

    table = table_read(path, name="products.csv")
    assert [row.title for row in table.rows] == ["Bike", "Lamp"] and table.failures == []


def _zip_with_raw_names(names: dict[bytes, bytes]) -> bytes:
    """A zip whose entry names are the given raw bytes, without the UTF-8 flag (as old Windows tools write)."""
    placeholders = {f"N{index:0{len(raw) - 1}d}".encode(): raw for index, raw in enumerate(names)}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for (placeholder, raw), data in zip(placeholders.items(), names.values()):
            assert len(placeholder) == len(raw)
            archive.writestr(placeholder.decode(), data)
    content = buffer.getvalue()
    for placeholder, raw in placeholders.items():
        content = content.replace(placeholder, raw)  # same length: the offsets stay right
    return content


def test_zip_entries_with_shift_jis_names_are_kept_under_their_decoded_names(tmp_path):
    names = {"商品写真_赤い自転車.png".encode("cp932"): noise_png(1), "説明書き.txt".encode("cp932"): b"A note"}
    archive = tmp_path / "photos.zip"
    archive.write_bytes(_zip_with_raw_names(names))

    entries, failures = zip_extract_safely(archive, tmp_path / "out", max_entries=10, max_total_bytes=10**7,
                                           max_entry_bytes=10**7, max_ratio=200)

    assert failures == []
    assert sorted(entry.name for entry in entries) == ["商品写真_赤い自転車.png", "説明書き.txt"]
    assert {entry.note for entry in entries} == {"its name in the archive is not UTF-8: read as cp932"}
    assert (tmp_path / "out" / "説明書き.txt").read_bytes() == b"A note"


def test_a_job_reports_the_zip_entries_it_renamed(superuser_client, deterministic_encoder,
                                                  django_capture_on_commit_callbacks):
    archive = _zip_with_raw_names({"商品写真_赤い自転車.png".encode("cp932"): noise_png(1),
                                   b"plain.png": noise_png(2)})
    summary = _upload(superuser_client, django_capture_on_commit_callbacks, {"photos.zip": archive})

    assert (summary["total"], summary["done"], summary["failed"]) == (2, 2, 0)
    assert _reasons(summary["warnings"]) == {
        "photos.zip/商品写真_赤い自転車.png": "its name in the archive is not UTF-8: read as cp932"}


def _multipart(boundary: bytes, files: list[tuple[bytes, bytes]], fields: dict[str, str]) -> bytes:
    parts = [b"--" + boundary + b'\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n'
             + value.encode() + b"\r\n" for name, value in fields.items()]
    parts += [b"--" + boundary + b'\r\nContent-Disposition: form-data; name="files"; filename="' + filename
              + b'"\r\nContent-Type: image/png\r\n\r\n' + data + b"\r\n" for filename, data in files]
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


def test_an_upload_whose_file_name_is_not_utf8_is_kept_and_the_rename_reported(superuser_client, deterministic_encoder,
                                                                               django_capture_on_commit_callbacks):
    boundary = b"----h6boundary7MA4YWxkTrZu0gW"
    body = _multipart(boundary, [("商品写真_赤い自転車.png".encode("cp932"), noise_png(1)), (b"plain.png", noise_png(2))],
                      {"corpus": "shop", "csrfmiddlewaretoken": "unused"})
    with django_capture_on_commit_callbacks(execute=True):
        response = superuser_client.generic("POST", "/upload", body,
                                        content_type=f"multipart/form-data; boundary={boundary.decode()}")
    assert response.status_code == 302, response.content.decode()[:2000]
    summary = _summary(superuser_client, IngestJob.objects.get())

    assert (summary["total"], summary["done"], summary["failed"]) == (2, 2, 0)
    assert _reasons(summary["warnings"]) == {
        "商品写真_赤い自転車.png": "the name it was sent with is not UTF-8: read as cp932"}
    assert sorted(Item.objects.values_list("title", flat=True)) == ["plain", "商品写真_赤い自転車"]


def test_ingest_command_reports_a_local_file_whose_name_is_not_utf8_and_ingests_the_rest(tmp_path, deterministic_encoder):
    import os
    from io import StringIO

    from django.core.management import call_command

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "plain.txt").write_text("A note about bikes")
    with open(os.fsencode(folder) + b"/" + "商品写真_赤い自転車.txt".encode("cp932"), "wb") as handle:
        handle.write(b"Another note")
    out = StringIO()

    call_command("ingest", str(folder), "--corpus", "cli", stdout=out, stderr=StringIO())

    assert "1 items landed in corpus 'cli' (1 new, 0 updated), 1 failed" in out.getvalue()
    assert (f"FAILED {folder}/商品写真_赤い自転車.txt: its name is not UTF-8 (read as cp932): rename the file to UTF-8 "
            "to ingest it") in out.getvalue()


def test_multipart_names_are_mended_however_the_body_arrives_in_pieces():
    from multimodal.readers.multipart_names import MultipartNamesStream

    class Trickle(io.BytesIO):  # a client sending a few bytes at a time
        def read(self, size=-1):
            return super().read(min(size, 5) if size and size > 0 else 5)

    boundary = b"xYzBoundary"
    name = "商品写真_赤い自転車.png"
    data = b"--xYzBoundar\r\n--xYz" + bytes(range(256)) * 3  # looks like a delimiter, is not one
    body = _multipart(boundary, [(name.encode("cp932"), data), (b"plain.png", b"png")], {"corpus": "shop"})
    expected = body.replace(name.encode("cp932") + b'"\r\nContent-Type: image/png',
                            name.encode() + b'"\r\nContent-Type: image/png; x-name-encoding=cp932')

    stream = MultipartNamesStream(Trickle(body), boundary)
    pieces = []
    while piece := (stream.readline(7) if len(pieces) % 2 else stream.read(3)):
        pieces.append(piece)

    assert b"".join(pieces) == expected
