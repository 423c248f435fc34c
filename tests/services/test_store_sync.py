"""The vector store never drifts from the database for good: outages of the store are made for real (the
configured URI pointed at a port where nothing listens, or the real local Milvus server stopped), and what
they leave behind (rows without vectors, vectors without rows) is reported exactly, repaired, or, for
deletions, queued and applied once the store is back. Searches during an outage answer 503 naming the store."""
import io
import json

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection

from multimodal import encoders, store
from multimodal.models import Corpus, IngestJob, Item
from multimodal.services.jobs import job_create_from_paths
from multimodal.tasks import MAX_RETRIES, ingest_job_run

from ..conftest import ingest_files
from ..live_services import free_port

pytestmark = pytest.mark.django_db(transaction=True)


def _queued():
    """The deletions queued while the store was down (imported here: the model is new, and each test must
    fail on its own on code without it)."""
    from multimodal.models import PendingVectorDeletion

    return PendingVectorDeletion.objects.order_by("pk")


def _store_down(settings) -> str:
    """Point the site at a Milvus server address where nothing listens; returns the URI it used before."""
    before = settings.MILVUS_URI
    settings.MILVUS_URI = f"http://127.0.0.1:{free_port()}"
    return before


def _check_store(*args) -> tuple[str, bool]:
    """``manage.py check_store ARGS``: its output and whether it exited with success."""
    out = io.StringIO()
    try:
        call_command("check_store", *args, stdout=out, stderr=io.StringIO())
    except CommandError as exc:
        return out.getvalue() + str(exc), False
    return out.getvalue(), True


def _base_ids() -> list[int]:
    return store.collection_for(encoders.get()).item_ids().tolist()


def _api_titles(client, text: str, corpus: str) -> list[str]:
    response = client.get("/api/search", {"q": text, "corpus": corpus, "top_k": 100, "hybrid": "false"})
    assert response.status_code == 200, response.content
    return [result["title"] for result in response.json()["results"]]


def test_a_job_run_while_the_store_is_down_leaves_rows_that_check_store_counts_and_repairs(
        admin_client, deterministic_encoder, settings, tmp_path):
    folder = tmp_path / "chairs"
    folder.mkdir()
    for index in range(40):
        (folder / f"chair-{index:02d}.txt").write_text(f"red chair number {index}")
    job = job_create_from_paths(corpus=Corpus.objects.create(name="shop"), paths=[str(folder)])
    lite = _store_down(settings)
    # The task's last retry (a worker gets there after ~4 min of backoff) meets the store still down: the job
    # fails clearly, and its first batch's rows were saved before the store write failed.
    ingest_job_run.apply(args=[job.pk], retries=MAX_RETRIES)
    job.refresh_from_db()
    assert job.status == IngestJob.Status.FAILED
    assert "vector store" in job.error
    assert Item.objects.count() == 32

    settings.MILVUS_URI = lite  # the store is back, empty of these items
    output, ok = _check_store()
    assert not ok
    assert "32 items without vectors, 0 items' vectors without rows" in output
    assert "run check_store --repair" in output
    assert _base_ids() == []

    output, ok = _check_store("--repair")
    assert ok, output
    assert "32 items re-embedded" in output
    assert _base_ids() == sorted(Item.objects.values_list("pk", flat=True))
    assert len(_api_titles(admin_client, "red chair", "shop")) == 32
    output, ok = _check_store()
    assert ok and "0 items without vectors, 0 items' vectors without rows" in output


def test_items_deleted_while_the_store_is_down_are_queued_and_the_periodic_check_deletes_their_vectors(
        admin_client, deterministic_encoder, settings):
    shop = Corpus.objects.create(name="shop")
    ingest_files(shop, {f"{index}.txt": f"blue wall {index}".encode() for index in range(6)})
    doomed = list(shop.items.order_by("pk")[:2])
    doomed_ids = [item.pk for item in doomed]
    kept = sorted(set(shop.items.values_list("pk", flat=True)) - set(doomed_ids))

    lite = _store_down(settings)
    for item in doomed:
        item.delete()  # answers at once: the vector deletion is queued, not lost and not an error
    queued = list(_queued())
    assert [pending.item_ids for pending in queued] == [[doomed_ids[0]], [doomed_ids[1]]]
    assert all("vector store" in pending.last_error for pending in queued)

    settings.MILVUS_URI = lite
    output, ok = _check_store()
    assert not ok
    assert "0 items without vectors, 2 items' vectors without rows, 2 queued deletions" in output
    assert _queued().count() == 2  # a check alone changes nothing

    assert "store-check" in {name for name, entry in django_settings.CELERY_BEAT_SCHEDULE.items()
                             if entry["task"] == "multimodal.tasks.store_check_task"}
    from multimodal.tasks import store_check_task

    summary = store_check_task.apply().get()
    assert "2 queued deletions applied" in summary
    assert not _queued().exists()
    assert _base_ids() == kept
    assert _check_store()[1]


def test_reindex_without_drop_removes_vectors_whose_rows_are_gone(deterministic_encoder):
    shop = Corpus.objects.create(name="shop")
    ingest_files(shop, {f"{index}.txt": f"green cat {index}".encode() for index in range(5)})
    gone = list(shop.items.order_by("pk").values_list("pk", flat=True)[:2])
    # Rows removed behind the site's back (a database restored from an older backup): no signal, no queue.
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM multimodal_item WHERE id IN ({', '.join(str(pk) for pk in gone)})")
    assert store.collection_for(encoders.get()).count() == 5

    out = io.StringIO()
    call_command("reindex", stdout=out, stderr=io.StringIO())
    assert "3 items reindexed" in out.getvalue()
    assert "2 items' orphan vectors deleted" in out.getvalue()
    assert _base_ids() == sorted(shop.items.values_list("pk", flat=True))


def test_the_corpus_admin_action_checks_and_repairs_the_selected_corpora(admin_client, deterministic_encoder, settings):
    shop, notes = Corpus.objects.create(name="shop"), Corpus.objects.create(name="notes")
    lite = _store_down(settings)
    with pytest.raises(store.StoreUnavailable):
        ingest_files(shop, {"red.txt": b"red chair", "blue.txt": b"blue chair"})
    settings.MILVUS_URI = lite
    ingest_files(notes, {"cat.txt": b"a cat"})
    assert shop.items.count() == 2 and store.collection_for(encoders.get()).count() == 1

    response = admin_client.post("/admin/multimodal/corpus/", {
        "action": "check_vectors", "_selected_action": [shop.pk]}, follow=True)
    assert response.status_code == 200
    text = response.content.decode()
    assert "2 items without vectors" in text and "repaired: 2 items re-embedded" in text
    assert _base_ids() == sorted(Item.objects.values_list("pk", flat=True))
    assert _api_titles(admin_client, "red chair", "shop")[0] == "red chair"


def test_search_while_the_store_is_down_answers_503_naming_the_store(client, deterministic_encoder, settings):
    shop = Corpus.objects.create(name="shop")
    ingest_files(shop, {"red.txt": b"red chair"})
    _store_down(settings)

    response = client.get("/api/search", {"q": "red chair"})
    assert response.status_code == 503
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error == "the vector store (milvus-server) is unavailable: it did not answer, try again shortly"
    assert "127.0.0.1" not in error  # the store's address is for the logs, not for visitors

    response = client.post("/api/search", json.dumps({"q": "red chair"}), content_type="application/json")
    assert response.status_code == 503 and "vector store (milvus-server) is unavailable" in response.json()["error"]

    response = client.get("/", {"q": "red chair"})
    assert response.status_code == 503
    assert "the vector store (milvus-server) is unavailable: it did not answer, try again shortly" in \
        response.content.decode()


@pytest.mark.parametrize("store_engine", ["server-hnsw"], indirect=True)
def test_a_corpus_deleted_while_the_milvus_server_is_unreachable_loses_its_vectors_once_it_is_back(
        store_engine, admin_client, deterministic_encoder, settings):
    """The issue's outage, on a real Milvus server: 300 items of a corpus deleted in the admin while the site
    cannot reach the server (cut off from it, as a network partition or a stopped server looks to the site)."""
    old, keep = Corpus.objects.create(name="old"), Corpus.objects.create(name="keep")
    ingest_files(old, {f"{index}.txt": f"old red chair {index}".encode() for index in range(300)})
    ingest_files(keep, {"cat.txt": b"a cat", "wall.txt": b"a wall"})
    assert store.collection_for(encoders.get()).count() == 302

    server = _store_down(settings)
    response = admin_client.post(f"/admin/multimodal/corpus/{old.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Corpus.objects.filter(name="old").exists() and Item.objects.count() == 2
    assert sum(len(pending.item_ids) for pending in _queued()) == 300
    response = admin_client.get("/api/search", {"q": "a cat"})
    assert response.status_code == 503 and "vector store (milvus-server) is unavailable" in response.json()["error"]

    settings.MILVUS_URI = server
    output, ok = _check_store()
    assert not ok
    assert "0 items without vectors, 300 items' vectors without rows, 1 queued deletions" in output
    assert len(_base_ids()) == 302

    # The next successful store write applies the queue; nothing else is touched.
    ingest_files(keep, {"chair.txt": b"a green chair"})
    assert not _queued().exists()
    assert _base_ids() == sorted(Item.objects.values_list("pk", flat=True)) and len(_base_ids()) == 3
    assert _check_store()[1]
    assert _api_titles(admin_client, "a cat", "keep")[0] == "a cat"


def test_an_item_whose_original_is_gone_is_reported_by_the_repair_and_kept(deterministic_encoder, settings):
    from ..conftest import image_bytes

    shop = Corpus.objects.create(name="shop")
    lite = _store_down(settings)
    with pytest.raises(store.StoreUnavailable):
        ingest_files(shop, {"red.png": image_bytes((255, 0, 0)), "blue.png": image_bytes((0, 0, 255))})
    settings.MILVUS_URI = lite
    blue = shop.items.get(title="blue")
    blue.file.storage.delete(blue.file.name)  # the original is lost too (a disk replaced, a bad restore)

    output, ok = _check_store("--repair")
    assert not ok
    assert "1 items re-embedded" in output and "1 items could not be re-embedded" in output
    assert f"NOT RE-EMBEDDED {blue.source_name}: stored original unreadable" in output
    assert shop.items.filter(pk=blue.pk).exists()
    assert _base_ids() == [shop.items.get(title="red").pk]
    output, ok = _check_store()
    assert not ok and "1 items without vectors" in output and f"without vectors: items {blue.pk}" in output
