"""Uploads become jobs whose every file, archive entry and table row is accounted for once.

These run the job in-process (no broker); tests/test_workers.py runs the same through Redis and a
real Celery worker.
"""
import io
import json
import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image

from multimodal import encoders, store
from multimodal.models import ApiToken, Corpus, IngestJob, Item
from multimodal.query.types import SearchQuery
from multimodal.selectors import search_response
from multimodal.services.ingest import ProductRow, Source, items_ingest

from ..conftest import UPLOADER_PERMISSIONS, image_bytes, noise_png, permissions_grant, zip_bytes

pytestmark = pytest.mark.django_db

CATALOGUE = (
    "sku,name,description,specs,photo,colour\n"
    "A-100,Trail bike,A sturdy mountain bike for rough trails,weight: 12 kg; frame: aluminium,photos/bike.png,red\n"
    "A-200,Desk lamp,An adjustable LED lamp,power=5 W,lamp.png,white\n"
    "A-300,,,,,\n"
    "A-400,Mystery box,Contents unknown,,missing.png,\n"
)


@pytest.fixture
def staff(django_user_model):
    staff = django_user_model.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    return permissions_grant(staff, *UPLOADER_PERMISSIONS)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def _file(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data)


def _upload(client, django_capture_on_commit_callbacks, files, **fields):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/upload", {"corpus": "shop", "files": files, **fields})
    assert response.status_code == 302, response.content.decode()[:2000]
    return IngestJob.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))


def _failures(job: IngestJob) -> dict[str, str]:
    return dict(job.units.filter(status="failed").values_list("name", "reason"))


def test_good_and_bad_files_each_get_an_outcome_and_the_good_ones_land(staff_client, django_capture_on_commit_callbacks):
    archive = zip_bytes({"photos/a.png": noise_png(1), "photos/b.png": noise_png(2), "../evil.png": noise_png(3),
                         "notes/readme.txt": b"A note about bikes", "/abs.png": noise_png(4)})
    files = [
        _file("good.png", noise_png(5)),
        _file("corrupt.png", noise_png(6)[:100]),
        _file("empty.jpg", b""),
        _file("letter.jpg", b"Dear customer, this is text"),
        _file("album.zip", archive),
        _file("program.exe", b"MZ\x90\x00"),
    ]
    job = _upload(staff_client, django_capture_on_commit_callbacks, files)
    job.refresh_from_db()
    assert job.status == "done"
    failures = _failures(job)
    assert set(failures) == {"corrupt.png", "empty.jpg", "letter.jpg", "album.zip/../evil.png", "album.zip//abs.png",
                             "program.exe"}
    assert "corrupt or truncated" in failures["corrupt.png"]
    assert failures["empty.jpg"] == "the file is empty"
    assert failures["letter.jpg"] == "not an image: the content does not match the '.jpg' extension"
    assert "escapes" in failures["album.zip/../evil.png"] or ".." in failures["album.zip/../evil.png"]
    assert failures["program.exe"] == "unsupported file type '.exe'"
    assert (job.total, job.done, job.failed) == (10, 4, 6)
    assert Item.objects.count() == 4
    assert store.collection_for(encoders.get()).count() == 4
    found = search_response(query=SearchQuery(image=Image.open(io.BytesIO(noise_png(2))), top_k=1))["results"]
    assert found[0]["title"] == "b"


def test_csv_knowledge_base_rows_become_products_with_text_and_image_vectors(staff_client, django_capture_on_commit_callbacks):
    files = [
        _file("catalogue.csv", CATALOGUE.encode()),
        _file("images.zip", zip_bytes({"photos/bike.png": image_bytes((200, 30, 30))})),
        _file("lamp.png", image_bytes((250, 250, 240))),
    ]
    job = _upload(staff_client, django_capture_on_commit_callbacks, files)
    job.refresh_from_db()
    assert job.status == "done"
    assert _failures(job) == {
        "catalogue.csv line 4": "row without text (title and description are empty)",
        "catalogue.csv line 5": "image 'missing.png' is not in the upload",
    }
    bike = Item.objects.get(external_id="A-100")
    assert bike.kind == "product" and bike.title == "Trail bike"
    assert bike.text == "A sturdy mountain bike for rough trails"
    assert bike.metadata["specs"] == {"weight": "12 kg", "frame": "aluminium", "colour": "red"}
    assert bike.thumbnail and bike.file
    # The images a row uses belong to the row: no separate image items.
    assert Item.objects.count() == 2 and not Item.objects.filter(kind="image").exists()
    assert store.collection_for(encoders.get()).count() == 4  # text + image vector per product
    assert job.tables[0]["mapping"] == {"id": "sku", "title": "name", "description": "description",
                                        "specs": "specs", "image": "photo"}
    # The API (which the job page polls) says which columns were used and that failures can be retried.
    body = staff_client.get(f"/api/jobs/{job.pk}").json()
    assert body["tables"][0]["name"] == "catalogue.csv" and body["tables"][0]["mapping"]["image"] == "photo"
    assert body["retryable"] is True and body["created"] == 2 and body["page_url"] == job.get_absolute_url()
    result = staff_client.get("/api/search", {"q": "sturdy mountain bike for rough trails", "top_k": 1}).json()["results"][0]
    assert result["title"] == "Trail bike" and result["kind"] == "product"
    assert result["description"] == "A sturdy mountain bike for rough trails"
    assert result["specs"]["frame"] == "aluminium" and result["thumbnail_url"]
    by_image = search_response(query=SearchQuery(image=Image.new("RGB", (20, 20), (200, 30, 30)), top_k=1))
    assert by_image["results"][0]["external_id"] == "A-100"
    page = staff_client.get("/", {"q": "lamp"}).content.decode()
    assert "<th scope=\"row\">power</th><td>5 W</td>" in page


def test_reuploading_a_catalogue_updates_products_by_their_id(staff_client, django_capture_on_commit_callbacks):
    first = "id,title,description\n7,Chair,A wooden chair\n"
    second = "id,title,description\n7,Chair,A wooden chair with a cushion\n"
    _upload(staff_client, django_capture_on_commit_callbacks, [_file("c.csv", first.encode())])
    job = _upload(staff_client, django_capture_on_commit_callbacks, [_file("c.csv", second.encode())])
    assert Item.objects.get().text == "A wooden chair with a cushion"
    assert job.units.get().created_item is False
    assert store.collection_for(encoders.get()).count() == 1


def test_a_product_listed_twice_in_one_catalogue_is_one_item_holding_the_later_line(
        staff_client, django_capture_on_commit_callbacks):
    table = "sku,title,description\nB-1,Bench,A garden bench\nB-2,Stool,A stool\nB-1,Bench,A teak garden bench\n"
    job = _upload(staff_client, django_capture_on_commit_callbacks, [_file("c.csv", table.encode())])
    assert (job.done, job.failed) == (3, 0)
    assert Item.objects.count() == 2 and Item.objects.get(external_id="B-1").text == "A teak garden bench"
    assert list(job.units.order_by("pk").values_list("created_item", flat=True)) == [True, True, False]
    assert store.collection_for(encoders.get()).count() == 2


def test_a_product_whose_picture_changed_shows_the_new_one_and_the_old_file_is_removed(
        staff_client, django_capture_on_commit_callbacks):
    table = b"sku,title,image\nL-1,Lamp,lamp.png\n"
    _upload(staff_client, django_capture_on_commit_callbacks,
            [_file("c.csv", table), _file("lamp.png", image_bytes((250, 250, 240)))])
    old = Item.objects.get()
    _upload(staff_client, django_capture_on_commit_callbacks,
            [_file("c.csv", table), _file("lamp.png", image_bytes((20, 20, 200)))])
    lamp = Item.objects.get()
    assert lamp.file.name != old.file.name and lamp.thumbnail.name != old.thumbnail.name
    assert Image.open(lamp.file.path).getpixel((0, 0)) == (20, 20, 200)
    assert not os.path.exists(old.file.path) and not os.path.exists(old.thumbnail.path)
    assert store.collection_for(encoders.get()).count() == 2


def test_a_product_whose_save_fails_fails_alone_and_the_rest_of_its_batch_lands_without_stray_files(
        staff_client, django_capture_on_commit_callbacks, monkeypatch, settings):
    """A storage error on one row's picture sinks the batch's joint save; each row is then saved
    on its own, so only that row fails, and the files the joint attempt wrote are removed."""
    from multimodal.services import ingest as ingest_service

    make_thumbnail = ingest_service.thumbnail_jpeg

    def thumbnail_or_disk_full(image):
        if image.size == (64, 64):
            raise OSError("No space left on device")
        return make_thumbnail(image)

    monkeypatch.setattr(ingest_service, "thumbnail_jpeg", thumbnail_or_disk_full)
    table = b"sku,title,image\nR-1,Red cup,red.png\nX-1,Broken cup,broken.png\nB-1,Blue cup,blue.png\n"
    files = [_file("c.csv", table), _file("red.png", image_bytes((220, 20, 20))),
             _file("broken.png", image_bytes((9, 9, 9), size=(64, 64))), _file("blue.png", image_bytes((20, 20, 220)))]
    job = _upload(staff_client, django_capture_on_commit_callbacks, files)
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("done", 2, 1)
    assert _failures(job) == {"c.csv line 3": "could not be saved (No space left on device)"}
    assert set(Item.objects.values_list("external_id", flat=True)) == {"R-1", "B-1"}
    assert all(item.file and item.thumbnail for item in Item.objects.all())
    assert store.collection_for(encoders.get()).count() == 4
    kept = {item_file.name for item in Item.objects.all() for item_file in (item.file, item.thumbnail)}
    stored = {str(path.relative_to(settings.MEDIA_ROOT)) for path in Path(settings.MEDIA_ROOT).rglob("*")
              if path.is_file()}
    assert stored == kept


def test_a_batch_of_rows_is_saved_with_as_many_queries_for_five_rows_as_for_fifty(deterministic_encoder):
    """Rows are looked up, inserted and updated together: a batch's queries do not grow with its rows."""
    corpus = Corpus.objects.create(name="counted")

    def queries(numbers: range) -> int:
        sources = [Source(name=f"c.csv line {number}", key=number, row=ProductRow(
            title=f"Chair {number}", description="A red chair", external_id=f"C-{number}")) for number in numbers]
        with CaptureQueriesContext(connection) as captured:
            report = items_ingest(corpus=corpus, sources=sources, batch_size=len(sources))
        assert report.landed == len(numbers)
        return len(captured)

    few, many = range(5), range(100, 150)
    assert queries(few) == queries(many)  # new rows: inserted
    assert queries(few) == queries(many)  # the same rows again: updated
    assert corpus.items.count() == 55


def test_admin_chooses_columns_explicitly(staff_client, django_capture_on_commit_callbacks):
    table = "Label,Blurb,Extra\nBlue vase,Hand-made glass vase,tall\n"
    job = _upload(staff_client, django_capture_on_commit_callbacks, [_file("t.csv", table.encode())],
                  title_column="Label", description_column="Blurb")
    product = Item.objects.get()
    assert (product.title, product.text, product.metadata["specs"]) == ("Blue vase", "Hand-made glass vase", {"Extra": "tall"})
    bad = _upload(staff_client, django_capture_on_commit_callbacks, [_file("t.csv", table.encode())],
                  title_column="Nope")
    assert "column 'Nope'" in _failures(bad)["t.csv"]
    assert job.status != "failed"


def test_failed_files_can_be_retried_once_the_cause_is_fixed(staff_client, django_capture_on_commit_callbacks, settings):
    settings.MULTIMODAL_MAX_FILE_MB = 0
    job = _upload(staff_client, django_capture_on_commit_callbacks, [_file("a.png", noise_png(1))])
    assert "too large" in _failures(job)["a.png"]
    settings.MULTIMODAL_MAX_FILE_MB = 50
    page = staff_client.get(job.get_absolute_url()).content.decode()
    assert "Retry failed files" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/jobs/{job.pk}/retry")
    assert response.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("done", 1, 0)


def test_job_page_and_api_show_progress_and_escaped_failures(staff_client, django_capture_on_commit_callbacks):
    job = _upload(staff_client, django_capture_on_commit_callbacks, [_file("<img src=x onerror=alert(1)>.png", b"x")])
    body = staff_client.get(f"/api/jobs/{job.pk}").json()
    assert {key: body[key] for key in ("id", "status", "total", "done", "failed")} == {
        "id": job.pk, "status": "done", "total": 1, "done": 0, "failed": 1}
    assert body["failures"][0]["name"].startswith("<img") and body["failures"][0]["reason"]
    page = staff_client.get(job.get_absolute_url()).content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.png" in page
    assert '<progress id="job-progress"' in page


def test_uploads_api_answers_202_and_works_with_a_token(client, staff, django_capture_on_commit_callbacks):
    _, key = ApiToken.issue(user=staff)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/uploads", {"corpus": "api", "files": [_file("x.png", noise_png(9))]},
                               HTTP_AUTHORIZATION=f"Bearer {key}")
    assert response.status_code == 202
    body = response.json()
    assert body["status_url"] == f"/api/jobs/{body['job_id']}"
    status = client.get(body["status_url"], HTTP_AUTHORIZATION=f"Bearer {key}").json()
    assert (status["status"], status["done"], status["failures"]) == ("done", 1, [])


def test_upload_without_files_or_with_a_bad_corpus_name_is_a_400(staff_client):
    response = staff_client.post("/api/uploads", {"corpus": "ok"})
    assert response.status_code == 400 and response.json()["error"].startswith("no files")
    response = staff_client.post("/api/uploads", {"corpus": "not ok!", "files": [_file("a.png", noise_png(1))]})
    assert response.status_code == 400 and response.json()["error"].startswith("corpus:")


def test_whole_upload_over_the_size_limit_is_refused(staff_client, settings):
    settings.MULTIMODAL_MAX_UPLOAD_MB = 0
    response = staff_client.post("/upload", {"corpus": "c", "files": [_file("a.png", noise_png(1))]})
    assert response.status_code == 400
    assert "the limit is 0 MB" in response.content.decode()
    assert not IngestJob.objects.exists()


@pytest.mark.parametrize("url", ["/upload", "/jobs/1", "/admin/multimodal/ingestjob/"])
def test_pages_for_staff_only_send_others_to_login(client, django_user_model, url):
    assert client.get(url).status_code == 302
    client.force_login(django_user_model.objects.create_user("user", password="pw-user-12345"))
    assert client.get(url).status_code == 302


def test_api_refuses_anonymous_non_staff_bad_tokens_and_missing_csrf(client, django_user_model, staff):
    upload = {"corpus": "c", "files": [_file("a.png", noise_png(1))]}
    assert client.post("/api/uploads", upload).status_code == 401
    assert client.get("/api/jobs/1").status_code == 401
    assert client.post("/api/uploads", upload, HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    user = django_user_model.objects.create_user("user", password="pw-user-12345")
    _, user_key = ApiToken.issue(user=user)
    assert client.post("/api/uploads", upload, HTTP_AUTHORIZATION=f"Bearer {user_key}").status_code == 403
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff)
    response = csrf_client.post("/api/uploads", {"corpus": "c", "files": [_file("a.png", noise_png(1))]})
    assert response.status_code == 403 and "CSRF" in response.json()["error"]
    assert not IngestJob.objects.exists()


def test_ingest_command_reads_zips_and_tables_from_disk(tmp_path):
    (tmp_path / "album.zip").write_bytes(zip_bytes({"x.png": noise_png(1), "y.png": noise_png(2)}))
    (tmp_path / "kb.csv").write_text("title,description,image\nBike,A bike,pics/bike.png\n")
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "bike.png").write_bytes(noise_png(3))
    out = io.StringIO()
    call_command("ingest", str(tmp_path), "--corpus", "disk", stdout=out, stderr=io.StringIO())
    assert "3 items landed in corpus 'disk' (3 new, 0 updated), 0 failed" in out.getvalue()
    assert Item.objects.get(kind="product").file


def test_ingest_async_without_a_broker_says_what_is_missing(tmp_path):
    with pytest.raises(CommandError, match="--async needs a broker: set CELERY_BROKER_URL"):
        call_command("ingest", str(tmp_path), "--async", stdout=io.StringIO())


def test_api_token_command_prints_a_working_key(staff, client):
    out = io.StringIO()
    call_command("create_api_token", "staff", stdout=out)
    key = out.getvalue().strip()
    assert client.get("/api/jobs/999", HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 404
    assert json.loads(client.get("/api/jobs/999").content)["error"].startswith("log in or send a token")
