"""End to end with real components: Redis broker, a Celery worker process, the local Milvus server the product runs.

The test process and the worker share the SQLite test database file, the media and upload
folders, and the Milvus server, exactly as web and worker processes do in production.
"""
import io

import pytest
from django.db import connection
from PIL import Image

from multimodal import encoders, store
from multimodal.models import IngestJob, Item
from multimodal.query.types import SearchQuery
from multimodal.selectors import search_response
from searchsite.celery import app as celery_app

from ..conftest import UPLOADER_PERMISSIONS, _server_collections_empty, noise_png, permissions_grant, zip_bytes
from ..live_services import CeleryWorker, redis_server, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
JOB_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def broker_url():
    with redis_server() as url:
        yield url


@pytest.fixture
def milvus_uri(milvus_server_folder):
    """The session's real Milvus server, which the workers find through its folder as the site's processes do."""
    return f"local:{milvus_server_folder}"


@pytest.fixture
def stack(settings, tmp_path, broker_url, milvus_uri):
    """Point this process at the real services and return a factory for worker processes."""
    settings.MILVUS_URI = milvus_uri
    # The workers' tests share one set of collections, emptied here: a collection new to the server costs its
    # first writer seconds (created, indexed, loaded), which a name per test made every test's worker pay.
    settings.MILVUS_COLLECTION_PREFIX = "tworkers"
    _server_collections_empty(f"{settings.MILVUS_COLLECTION_PREFIX}_")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    previous = {key: celery_app.conf[key] for key in ("task_always_eager", "broker_url")}
    _celery_configure(task_always_eager=False, broker_url=broker_url)
    env = {
        "CELERY_BROKER_URL": broker_url,
        "DATABASE_URL": f"sqlite:///{connection.settings_dict['NAME']}",
        "MILVUS_URI": milvus_uri,
        "MILVUS_COLLECTION_PREFIX": settings.MILVUS_COLLECTION_PREFIX,
        "MULTIMODAL_CLIP_MODEL": "tiny-random",
        "MULTIMODAL_DATA_DIR": str(tmp_path / "worker-data"),
        "MULTIMODAL_MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "MULTIMODAL_UPLOAD_ROOT": str(settings.MULTIMODAL_UPLOAD_ROOT),
        "MULTIMODAL_ENCODE_BATCH_SIZE": "4",
        "MULTIMODAL_JOB_LEASE_S": "3",
        # As in this process (tests/conftest.py): Tesseract would read every picture (~0.5-1 s each here, most
        # of a worker's time on these noise pictures), and no test of these is about the words in pictures.
        "MULTIMODAL_OCR": "0",
    }
    workers = []

    def start_worker(extra_env: dict[str, str] | None = None, extra_args: tuple[str, ...] = ()) -> CeleryWorker:
        worker = CeleryWorker({**env, **(extra_env or {})}, tmp_path / "worker.log", extra_args).start()
        workers.append(worker)
        return worker

    yield start_worker
    for worker in workers:
        if worker.process.poll() is None:
            worker.stop()
    with celery_app.connection_for_write() as conn:  # leave no queued task for the next test
        conn.default_channel.queue_purge("celery")
    _celery_configure(**previous)


def _celery_configure(**options) -> None:
    """Set this process's Celery options. Its connection and producer pools keep the broker they
    were made with, so they are dropped too: another module's broker may be gone already."""
    celery_app.conf.update(options)
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def staff_client(client, django_user_model):
    staff = django_user_model.objects.create_user("staff", password="pw-staff-123", is_staff=True)
    client.force_login(permissions_grant(staff, *UPLOADER_PERMISSIONS))
    return client


def _upload(client, files: dict[str, bytes]) -> IngestJob:
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = client.post("/upload", {"corpus": "live", "files": [SimpleUploadedFile(n, d) for n, d in files.items()]})
    assert response.status_code == 302
    return IngestJob.objects.get(pk=int(response["Location"].rstrip("/").split("/")[-1]))


def _wait_finished(client, job: IngestJob, worker: CeleryWorker) -> dict:
    def finished():
        assert worker.process.poll() is None, f"the worker died:\n{worker.output()[-3000:]}"
        status = client.get(f"/api/jobs/{job.pk}").json()
        return status if status["status"] in ("done", "failed") else None

    return wait_until(finished, timeout_s=JOB_TIMEOUT_S, what=f"job {job.pk} finishing", interval_s=0.5)


def test_zip_and_csv_uploaded_through_the_page_are_ingested_by_the_worker(stack, staff_client):
    worker = stack()
    images = {f"pics/p{seed}.png": noise_png(seed) for seed in range(6)}
    table = "id,title,description,image\n1,Red kettle,A red kettle for the stove,pics/p0.png\n2,Green mug,A mug,\n"
    job = _upload(staff_client, {"album.zip": zip_bytes(images), "kb.csv": table.encode()})
    status = _wait_finished(staff_client, job, worker)
    assert (status["status"], status["done"], status["failed"], status["failures"]) == ("done", 7, 0, [])
    # p0.png belongs to the kettle row: 5 images + 2 products. Vectors: 5 images, the kettle's text
    # and image, the mug's text (it has no image).
    assert Item.objects.count() == 7
    assert store.collection_for(encoders.get()).count() == 8
    found = search_response(query=SearchQuery(image=Image.open(io.BytesIO(noise_png(3))), top_k=1))["results"][0]
    assert found["title"] == "p3" and found["score"] == pytest.approx(1.0, abs=1e-3)
    kettle = staff_client.get("/api/search", {"q": "A red kettle for the stove", "top_k": 1}).json()["results"][0]
    assert kettle["title"] == "Red kettle"


def test_a_worker_killed_mid_job_is_replaced_and_every_file_lands_exactly_once(stack, staff_client):
    good = {f"img/{seed:03d}.png": noise_png(seed, size=160) for seed in range(60)}
    bad = {"img/broken.png": noise_png(999)[:120], "img/empty.png": b""}
    job = _upload(staff_client, {"batch.zip": zip_bytes({**good, **bad})})
    first = stack()
    wait_until(lambda: IngestJob.objects.get(pk=job.pk).done >= 8, timeout_s=JOB_TIMEOUT_S,
               what="the first batches landing", interval_s=0.1)
    first.kill()
    job.refresh_from_db()
    assert job.status == "running" and job.done < len(good), "the job finished before the worker could be killed"
    second = stack()
    status = _wait_finished(staff_client, job, second)
    assert (status["status"], status["total"], status["done"], status["failed"]) == ("done", 62, 60, 2)
    assert Item.objects.count() == 60
    assert store.collection_for(encoders.get()).count() == 60
    assert sorted(Item.objects.values_list("title", flat=True)) == sorted(f"{seed:03d}" for seed in range(60))
