"""Bulk loads (`VectorCollection.load`): rows by the thousand, imported from files by the local server and
upserted by Milvus Lite, then searched, filtered and read like any others."""
import io

import numpy as np
import pytest
from django.core.management import call_command

from multimodal import store
from multimodal.store import engines

pytestmark = [pytest.mark.django_db, pytest.mark.engines]

ROWS, DIM = 600, 8


def _columns(rows: int = ROWS, *, first_id: int = 1, kinds=None) -> store.VectorColumns:
    rng = np.random.default_rng(first_id)
    vectors = rng.standard_normal((rows, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    item_ids = np.arange(first_id, first_id + rows, dtype=np.int64)
    return store.VectorColumns(
        item_ids=item_ids, corpus_ids=1 + item_ids % 2, vectors=vectors,
        kinds=kinds or ["product" if item_id % 3 == 0 else "text" for item_id in item_ids],
        created_at=1_700_000_000 + item_ids * 86_400,
    )


@pytest.fixture
def collection(settings):
    # Not a base collection (name ending in _v2): the next server test drops it.
    return store.collection(f"{settings.MILVUS_COLLECTION_PREFIX}_bulkload", DIM)


def _import_files_left() -> list:
    folder = engines.current().import_folder()
    return sorted(folder.rglob("*")) if folder is not None and folder.exists() else []


def test_loaded_rows_are_counted_searched_filtered_and_read_back(collection):
    columns = _columns()
    assert collection.load(columns) == ROWS
    collection.wait_indexed(timeout_s=120)

    assert collection.count() == ROWS
    assert collection.count(store.VectorFilter(corpus_ids=[2])) == ROWS // 2
    assert collection.count(store.VectorFilter(kinds=["product"])) == ROWS // 3
    row = 123
    nearest = collection.search(columns.vectors[row], limit=3)
    assert nearest[0].item_id == columns.item_ids[row] and nearest[0].modality == "text"
    assert nearest[0].score == pytest.approx(1.0, abs=1e-4)
    texts_only = collection.search(columns.vectors[row], limit=5, where=store.VectorFilter(kinds=["text"]))
    assert texts_only and all(hit.item_id % 3 != 0 for hit in texts_only)
    later = collection.search(columns.vectors[row], limit=5,
                              where=store.VectorFilter(created_from=int(columns.created_at[row]) + 1))
    assert later and all(hit.item_id > columns.item_ids[row] for hit in later)
    read = collection.vectors([int(columns.item_ids[7])])
    assert np.allclose(read[int(columns.item_ids[7])]["text"], columns.vectors[7], atol=1e-6)
    assert collection.item_ids().tolist() == columns.item_ids.tolist()
    # Deleting loaded rows works as for any others.
    collection.delete_items(columns.item_ids[:100].tolist())
    collection.flush()
    assert collection.count() == ROWS - 100
    assert _import_files_left() == []


@pytest.mark.engines("lite", "server-hnsw")  # refused before the engine sees it: the index type plays no part
@pytest.mark.parametrize("refused, reason", [
    (_columns(40, first_id=1000, kinds=["x" * 40] * 40), "kind 'xxx.*longer than 32 characters"),
    (store.VectorColumns(item_ids=np.arange(1000, 1040), corpus_ids=np.ones(40), kinds=["text"] * 40,
                         created_at=np.zeros(40), vectors=np.ones((40, DIM + 1), dtype=np.float32)), "8-d vectors"),
    (store.VectorColumns(item_ids=np.arange(1000, 1040), corpus_ids=np.ones(39), kinds=["text"] * 40,
                         created_at=np.zeros(40), vectors=np.ones((40, DIM), dtype=np.float32)), "differ in length"),
])
def test_a_load_that_does_not_fit_fails_whole_naming_the_problem_and_leaves_no_rows_or_files(collection, refused,
                                                                                              reason):
    collection.load(_columns(50))
    with pytest.raises(store.StoreError, match=reason):
        collection.load(refused)
    collection.flush()
    assert collection.count() == 50
    assert collection.count(store.VectorFilter(item_ids=refused.item_ids.tolist())) == 0
    assert _import_files_left() == []


@pytest.mark.engines("server-hnsw")
@pytest.mark.django_db(transaction=True)  # committed: the fill writes rows from a thread of its own
def test_bench_scale_on_the_local_server_loads_its_vectors_by_import(settings):
    out = io.StringIO()
    call_command("bench_scale", "--items", "400", "--queries", "3", "--faiss-items", "0",
                 "--engine", settings.MILVUS_URI, stdout=out, stderr=io.StringIO())
    printed = out.getvalue()
    assert "engine milvus-local" in printed
    assert [line.split()[-1] for line in printed.splitlines() if line.startswith("vectors in store")] == ["400"]
    assert "0 items left" in printed
    assert _import_files_left() == []
