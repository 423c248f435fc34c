"""Adapters trained and activated by a real Celery worker, from the admin, over the local Milvus server.

The worker is another process: the adapter's weights file, the index build and the switch reach
this process only through the shared database, data folder and Milvus server, as in production.
"""
import pytest

from multimodal.models import Adapter, Corpus, IndexBuild
from multimodal.query.types import SearchFilters, SearchQuery
from multimodal.retrieval import indexes
from multimodal.selectors import search_response

from ..conftest import noise_png, zip_bytes
from ..live_services import wait_until
from .test_workers import JOB_TIMEOUT_S, _upload, _wait_finished, broker_url, milvus_uri, stack  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)
PRODUCTS = 24


def test_the_admin_trains_and_activates_an_adapter_on_the_worker_and_search_switches(stack, admin_client, settings, tmp_path):
    settings.MULTIMODAL_ADAPTER_ROOT = tmp_path / "worker-data" / "adapters"  # the worker's data folder
    worker = stack()
    rows = "".join(f"{number},Item {number},catalogue entry number {number},pics/p{number}.png\n" for number in range(PRODUCTS))
    job = _upload(admin_client, {"shop.zip": zip_bytes({f"pics/p{number}.png": noise_png(number) for number in range(PRODUCTS)}),
                                 "shop.csv": ("id,title,description,image\n" + rows).encode()})
    assert _wait_finished(admin_client, job, worker)["done"] == PRODUCTS
    corpus = Corpus.objects.get(name="live")

    def finished(model, pk, done_states):
        def check():
            assert worker.process.poll() is None, f"the worker died:\n{worker.output()[-3000:]}"
            return model.objects.get(pk=pk).status in done_states
        return check

    admin_client.post("/admin/multimodal/corpus/", {"action": "train_adapter", "_selected_action": [corpus.pk]})
    adapter = Adapter.objects.get()
    wait_until(finished(Adapter, adapter.pk, ("ready", "failed")), timeout_s=JOB_TIMEOUT_S, what="training")
    adapter.refresh_from_db()
    assert adapter.status == "ready", adapter.error
    assert adapter.pairs == PRODUCTS and set(adapter.metrics["after"]) == {"text_to_image", "image_to_text"}

    admin_client.post("/admin/multimodal/adapter/", {"action": "activate", "_selected_action": [adapter.pk]})
    build = IndexBuild.objects.get()
    wait_until(finished(IndexBuild, build.pk, ("ready", "failed")), timeout_s=JOB_TIMEOUT_S, what="the index build")
    build.refresh_from_db()
    assert (build.status, build.done, build.total) == ("ready", PRODUCTS, PRODUCTS), build.error
    [route] = indexes.search_routes([corpus.pk])
    assert route.index.collection.name == build.collection_name and route.index.adapter is not None
    results = search_response(query=SearchQuery(text="catalogue entry number 3", top_k=PRODUCTS, hybrid=False,
                                                filters=SearchFilters(corpora=[corpus])))["results"]
    assert len(results) == PRODUCTS
    page = admin_client.get(f"/adapters/{adapter.pk}").content.decode()
    assert "live" in page and f"{PRODUCTS} / {PRODUCTS}" in page
