"""Bounded disk: upload copies go once a job no longer needs them, crashes leave nothing for long,
and anonymous query uploads have quotas (issue 17, point 8). Jobs run in-process here."""
import io
import os
import time
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import transaction
from django.test import Client

from multimodal.models import IngestJob
from multimodal.services.jobs import job_create_from_uploads, job_dir

from ..conftest import image_bytes, noise_png, zip_bytes
from .test_jobs import _file, _upload, staff, staff_client  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def _files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def _age(path: Path, hours: float) -> None:
    then = time.time() - hours * 3600
    for inner in [path, *path.rglob("*")]:
        os.utime(inner, (then, then))


def test_a_finished_job_keeps_only_what_a_retry_reads_and_that_only_for_a_while(
    staff_client, django_capture_on_commit_callbacks, settings
):
    archive = zip_bytes({"photos/a.png": noise_png(1), "photos/bad.png": noise_png(2)[:100]})
    files = [_file("album.zip", archive), _file("good.png", noise_png(3)), _file("broken.png", noise_png(4)[:100]),
             _file("empty.png", b"")]
    job = _upload(staff_client, django_capture_on_commit_callbacks, files)
    job.refresh_from_db()
    assert (job.status, job.done, job.failed) == ("done", 2, 3)
    folder = job_dir(job)
    # The archive, its good entry and good.png are gone; the failed files stay for a retry.
    assert _files_under(folder) == ["extracted/00000/photos/bad.png", "uploads/00002-broken.png",
                                    "uploads/00003-empty.png"]
    assert folder.parent == Path(settings.MULTIMODAL_UPLOAD_ROOT) / "jobs" and len(folder.name) >= 16
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(f"/jobs/{job.pk}/retry")
    assert len(_files_under(folder)) == 3  # retried, failed again, still retryable

    settings.MULTIMODAL_JOB_FILES_KEEP_H = 0  # as if the keep had passed
    out = io.StringIO()
    call_command("sweep_uploads", stdout=out, stderr=io.StringIO())
    assert "1 job folders trimmed" in out.getvalue()
    assert not folder.exists()
    summary = staff_client.get(f"/api/jobs/{job.pk}").json()
    assert summary["failed"] == 3 and not summary["retryable"]  # still listed, no longer offered


def test_the_sweep_deletes_what_crashed_uploads_left_and_keeps_what_is_in_use(staff, settings, tmp_path):
    root = Path(settings.MULTIMODAL_UPLOAD_ROOT)
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "incoming")
    grace_h = settings.MULTIMODAL_UPLOAD_ORPHAN_GRACE_MIN / 60

    def folder_with(name: str, age_h: float) -> Path:
        folder = root / name
        (folder / "uploads").mkdir(parents=True)
        (folder / "uploads" / "00000-big.bin").write_bytes(b"x" * 100_000)
        _age(folder, age_h)
        return folder

    killed_upload = folder_with("jobs/5f0c1e2a9b8d7c6e5f4a3b2c", grace_h + 1)
    legacy_orphan = folder_with("17", grace_h + 1)
    arriving_now = folder_with("jobs/0a1b2c3d4e5f60718293a4b5", 0)
    queued = IngestJob.objects.create(corpus=_corpus(), created_by=staff)
    queued_folder = folder_with(queued.files_dir, grace_h + 100)
    cancelled = IngestJob.objects.create(corpus=_corpus(), created_by=staff, status="cancelled")
    cancelled_folder = folder_with(cancelled.files_dir, 0)
    incoming = Path(settings.FILE_UPLOAD_TEMP_DIR)
    incoming.mkdir()
    (incoming / "tmpab12cd.upload.png").write_bytes(b"y" * 50_000)
    _age(incoming / "tmpab12cd.upload.png", grace_h + 1)
    (incoming / "tmpfresh.upload.zip").write_bytes(b"z")
    (incoming / "notes.txt").write_bytes(b"not ours")
    _age(incoming / "notes.txt", grace_h + 1)
    query = root / "query"
    query.mkdir()
    (query / ("ab" * 32)).write_bytes(b"q" * 10_000)
    _age(query / ("ab" * 32), settings.MULTIMODAL_QUERY_UPLOAD_TTL_H + 1)

    out, err = io.StringIO(), io.StringIO()
    call_command("sweep_uploads", stdout=out, stderr=err)
    assert not killed_upload.exists() and not legacy_orphan.exists() and not cancelled_folder.exists()
    assert arriving_now.exists() and queued_folder.exists()
    assert sorted(path.name for path in incoming.iterdir()) == ["notes.txt", "tmpfresh.upload.zip"]
    assert not list(query.iterdir())
    assert "0.3 MB freed: 1 job folders trimmed, 2 orphan folders, 1 temporary upload files and 1 query uploads" \
        in out.getvalue()
    assert "sweep job folders" in err.getvalue()  # the progress bar


def test_sweep_uploads_has_help(capsys):
    with pytest.raises(SystemExit):
        call_command("sweep_uploads", "--help")
    assert "MULTIMODAL_JOB_FILES_KEEP_H" in capsys.readouterr().out


def test_a_job_id_reused_after_a_killed_upload_gets_a_folder_of_its_own(staff):
    with pytest.raises(RuntimeError), transaction.atomic():
        lost = job_create_from_uploads(corpus_name="shop", files=[_file("old.png", noise_png(1))], user=staff)
        lost_folder, lost_pk = job_dir(lost), lost.pk
        raise RuntimeError("the web process dies before its transaction commits")
    job = job_create_from_uploads(corpus_name="shop", files=[_file("new.png", noise_png(2))], user=staff)
    assert job.pk == lost_pk  # the rolled-back id is handed out again
    assert job_dir(job) != lost_folder
    assert _files_under(job_dir(job)) == ["uploads/00000-new.png"]
    assert _files_under(lost_folder) == ["uploads/00000-old.png"]  # left for the sweep


def test_query_uploads_have_a_quota_per_session_and_per_address(settings):
    settings.MULTIMODAL_QUERY_UPLOAD_SESSION_FILES = 3
    settings.MULTIMODAL_QUERY_UPLOAD_IP_FILES = 5
    cache.clear()

    def send(client: Client, seed: int):
        image = _upload_file(image_bytes((seed, 0, 0)))
        return client.post("/query-uploads", {"type": "image", "file": image})

    first, second = Client(), Client()
    assert [send(first, seed).status_code for seed in range(3)] == [201, 201, 201]
    refused = send(first, 3)
    assert refused.status_code == 429 and "this browser session has added 3" in refused.json()["error"]
    assert [send(second, seed).status_code for seed in range(10, 12)] == [201, 201]
    refused = send(second, 12)  # a fresh session from the same address
    assert refused.status_code == 429 and "your address" in refused.json()["error"]
    elsewhere = Client(REMOTE_ADDR="10.0.0.9")
    assert send(elsewhere, 20).status_code == 201

    settings.MULTIMODAL_QUERY_UPLOAD_SESSION_FILES = 100
    settings.MULTIMODAL_QUERY_UPLOAD_SESSION_MB = 1
    big = Client(REMOTE_ADDR="10.0.0.10")
    payload = noise_png(5, size=420)  # ~530 KB that do not compress
    assert big.post("/query-uploads", {"type": "image", "file": _upload_file(payload)}).status_code == 201
    refused = big.post("/query-uploads", {"type": "image", "file": _upload_file(noise_png(6, size=420))})
    assert refused.status_code == 429 and "1 MB an hour" in refused.json()["error"]


def _upload_file(data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile("query.png", data)


def _corpus():
    from multimodal.models import Corpus

    return Corpus.objects.get_or_create(name="shop")[0]


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_site_resumes_jobs_and_sweeps_when_it_starts_serving(client, settings, monkeypatch,
                                                                                     tmp_path):
    from multimodal.services import background
    from multimodal.services.jobs import job_create_from_paths

    from ..live_services import wait_until

    settings.MULTIMODAL_JOBS_IN_THREAD = True  # as the site runs without a broker
    monkeypatch.setattr(background, "_maintenance_due", {"jobs_requeue_task": 0.0, "uploads_sweep_task": 0.0})
    orphan = Path(settings.MULTIMODAL_UPLOAD_ROOT) / "jobs" / "0123456789abcdef01234567"
    (orphan / "uploads").mkdir(parents=True)
    (orphan / "uploads" / "00000-half.zip").write_bytes(b"PK" * 1000)
    _age(orphan, settings.MULTIMODAL_UPLOAD_ORPHAN_GRACE_MIN / 60 + 1)
    picture = tmp_path / "red.png"
    picture.write_bytes(image_bytes((255, 0, 0)))
    # A job the previous web process was running when it died: its lease ran out, nobody runs it.
    left = job_create_from_paths(corpus=_corpus(), paths=[str(picture)])
    IngestJob.objects.filter(pk=left.pk).update(status="running", lease_owner="dead-process",
                                                lease_expires_at="2026-01-01T00:00:00Z")
    client.get("/")
    wait_until(lambda: not orphan.exists(), timeout_s=30, what="the start-up sweep")
    wait_until(lambda: IngestJob.objects.get(pk=left.pk).status == "done", timeout_s=60, what="the job resumed")
    assert IngestJob.objects.get(pk=left.pk).done == 1
