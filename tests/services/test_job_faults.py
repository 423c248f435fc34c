"""Jobs that never hang, with a real Redis broker and real Celery worker processes (issue 17, points 7 and 9).

A worker child killed with SIGKILL by its PID while it holds a file (as the kernel's OOM killer does),
again and again; a job cancelled while queued and while running; Redis stopped and restarted
without its data; an upload while Redis is down.
"""
import io
import os
import signal
import time
from pathlib import Path

import pytest
import yaml
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from multimodal.models import IngestJob, Item
from searchsite.celery import app as celery_app

from ..conftest import noise_png, zip_bytes
from ..live_services import ROOT, RedisServer, wait_until
from .test_workers import JOB_TIMEOUT_S, _upload, _wait_finished, milvus_uri, stack, staff_client  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def redis():
    """This module's broker, which its tests stop and restart (no persistence, as runstack ran it before)."""
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def broker_url(redis):
    return redis.url


def _huge_png() -> bytes:
    """36 MP of one colour: 120 KB on disk, seconds of decoding, the window to kill the worker in."""
    buffer = io.BytesIO()
    Image.new("RGB", (6000, 6000), (200, 30, 30)).save(buffer, format="PNG", compress_level=9)
    return buffer.getvalue()


def _runner_pid(job: IngestJob) -> int:
    """The process of the run holding ``job`` (its lease owner is task id:pid:token)."""
    return int(job.lease_owner.split(":")[1])


def test_a_file_that_kills_its_worker_fails_after_the_attempt_limit_and_the_job_finishes(stack, staff_client):
    worker = stack(extra_env={"MULTIMODAL_JOB_MAX_ATTEMPTS": "2", "MULTIMODAL_MAX_IMAGE_PIXELS": "100000000"})
    job = _upload(staff_client, {"huge.png": _huge_png(), "a.png": noise_png(1), "b.png": noise_png(2)})
    killed = []
    for attempt in (1, 2):
        def processing_the_huge_file():
            job.refresh_from_db()
            unit = job.units.filter(name="huge.png", status="pending", attempts=attempt).first()
            return unit and job.lease_owner and _runner_pid(job)

        pid = wait_until(processing_the_huge_file, timeout_s=JOB_TIMEOUT_S, interval_s=0.02,
                         what=f"run {attempt} taking the huge file")
        os.kill(pid, signal.SIGKILL)  # as the OOM killer does: the pool child dies, the message is redelivered
        killed.append(pid)
    status = _wait_finished(staff_client, job, worker)
    assert (status["status"], status["done"], status["failed"]) == ("done", 2, 1), status
    assert status["failures"] == [
        {"name": "huge.png", "reason": "worker died 2 times while processing this file (out of memory?)"}
    ]
    assert sorted(Item.objects.values_list("title", flat=True)) == ["a", "b"]
    assert len(set(killed)) == 2, "each redelivery ran in a fresh child under its own lease owner"
    assert worker.process.poll() is None


def test_a_cancelled_job_stops_and_its_late_message_runs_nothing(stack, staff_client):
    from multimodal.services.jobs import job_dir

    queued = _upload(staff_client, {"early.png": noise_png(7)})  # no worker yet: its task waits in Redis
    response = staff_client.post(f"/api/jobs/{queued.pk}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert not job_dir(queued).exists()

    images = {f"img/{seed:03d}.png": noise_png(100 + seed, size=160) for seed in range(48)}
    running = _upload(staff_client, {"many.zip": zip_bytes(images)})
    worker = stack()
    wait_until(lambda: IngestJob.objects.get(pk=running.pk).done >= 4, timeout_s=JOB_TIMEOUT_S, interval_s=0.05,
               what="the first batch landing")
    page = staff_client.get(f"/jobs/{running.pk}").content.decode()
    assert f'action="/jobs/{running.pk}/cancel"' in page and "csrfmiddlewaretoken" in page
    response = staff_client.post(f"/jobs/{running.pk}/cancel")  # the page's Cancel button
    assert response.status_code == 302
    wait_until(lambda: IngestJob.objects.get(pk=running.pk).lease_owner == "", timeout_s=60,
               what="the runner noticing the cancel and leaving")
    running.refresh_from_db()
    done_at_cancel = running.done
    time.sleep(2)  # a redelivered or retried task would move the counts now
    running.refresh_from_db()
    assert running.status == "cancelled" and running.done == done_at_cancel < 48
    assert running.units.filter(status="pending").count() == 48 - running.done - running.failed
    assert Item.objects.count() == running.done  # every item written is a unit counted done; early.png never ran
    assert staff_client.get(f"/api/jobs/{running.pk}").json()["status"] == "cancelled"
    page = staff_client.get(f"/jobs/{running.pk}").content.decode()
    assert "This job was cancelled" in page and 'data-field="cancelled" class="message notice" role="status">' in page
    assert not job_dir(running).exists()
    queued.refresh_from_db()
    assert (queued.status, queued.total, queued.done, queued.started_at) == ("cancelled", 0, 0, None)
    again = staff_client.post(f"/api/jobs/{running.pk}/cancel")
    assert again.status_code == 409 and "already finished" in again.json()["error"]
    assert worker.process.poll() is None


def test_a_job_whose_task_a_redis_restart_lost_runs_without_restarting_the_worker(stack, staff_client, redis):
    # The busy job must outlast Redis's restart: reading its pictures' words (~0.5 s each) keeps it busy for seconds.
    worker = stack(extra_env={"MULTIMODAL_JOBS_REQUEUE_S": "2", "MULTIMODAL_OCR": "1"}, extra_args=("--beat",))
    busy = _upload(staff_client, {f"{seed}.png": noise_png(seed, size=160) for seed in range(24)})
    wait_until(lambda: IngestJob.objects.get(pk=busy.pk).lease_owner, timeout_s=JOB_TIMEOUT_S, interval_s=0.05,
               what="the worker taking the first job")
    waiting = _upload(staff_client, {"late.png": noise_png(99)})  # its task waits in Redis: the worker is busy
    assert redis.client().llen("celery") >= 1
    redis.restart()  # without an append-only file the queue is gone
    assert redis.client().llen("celery") == 0
    assert IngestJob.objects.get(pk=busy.pk).status == "running", "the first job finished before Redis restarted"
    status = _wait_finished(staff_client, waiting, worker)
    assert (status["status"], status["done"]) == ("done", 1)
    assert f"ingest jobs [{waiting.pk}] had no task in the queue: queued again" in worker.output()
    assert _wait_finished(staff_client, busy, worker)["done"] == 24


def test_an_upload_while_redis_is_down_is_a_quick_503_and_stores_nothing(stack, staff_client, redis):
    stack  # this process now sends its tasks to the module's Redis
    upload_root = Path(django_settings.MULTIMODAL_UPLOAD_ROOT)
    redis.stop()
    try:
        started = time.monotonic()
        response = staff_client.post("/api/uploads", {"corpus": "live", "files": [SimpleUploadedFile("a.png", noise_png(1))]})
        elapsed_s = time.monotonic() - started
        assert response.status_code == 503, response.content[:500]
        assert "job queue" in response.json()["error"] and "nothing was queued" in response.json()["error"]
        assert elapsed_s < 5
        page = staff_client.post("/upload", {"corpus": "live", "files": [SimpleUploadedFile("b.png", noise_png(2))]})
        assert page.status_code == 503 and "Nothing was uploaded" in page.content.decode()
        assert not IngestJob.objects.exists()
        assert not [path for path in upload_root.rglob("*") if path.is_file()]
    finally:
        redis.start()


def test_redis_keeps_its_queue_in_an_append_only_file_under_runstack_and_compose(tmp_path):
    from multimodal.management.commands.runstack import redis_command

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    server = RedisServer(command=lambda binary, port: redis_command(binary, port, tmp_path / "redis")).start()
    try:
        server.client().lpush("celery", "a queued task")
        server.restart()
        assert server.client().lrange("celery", 0, -1) == [b"a queued task"]
    finally:
        server.stop()


def test_worker_children_are_replaced_once_they_grow_past_the_memory_setting():
    assert celery_app.conf.worker_max_memory_per_child == django_settings.CELERY_WORKER_MAX_MEMORY_PER_CHILD == 3072 * 1024
