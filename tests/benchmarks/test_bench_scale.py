"""bench_scale as a user runs it, on a tiny corpus in Milvus Lite with the tiny random CLIP."""
import io
import json
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from multimodal import encoders, store
from multimodal.models import Corpus, Item

pytestmark = pytest.mark.django_db


def _bench(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("bench_scale", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _row(printed: str, label: str) -> list[str]:
    """The cells after ``label`` in the printed table (two spaces or more between cells)."""
    line = next(line for line in printed.splitlines() if line.startswith(label))
    return re.split(r"\s{2,}", line[len(label):].strip())


@pytest.mark.django_db(transaction=True)  # committed: rows are written by a thread of their own, as in a real run
def test_a_tiny_run_prints_every_figure_and_leaves_nothing_behind():
    printed, progress = _bench("--items", "150,300", "--queries", "5")
    assert "fill " in progress and "300/300" in progress
    assert _row(printed, "figure") == ["150", "300"]
    assert _row(printed, "keyword index rows") == ["150", "300"]
    assert _row(printed, "vectors in store") == ["150", "300"]
    for label in ("store recall@10, as the product asks", "store recall@10, top 10 only", "faiss recall@10"):
        assert all(float(value) >= 0.9 for value in _row(printed, label)), label
    for label in ("end to end, 1 (text) parts", "end to end, 3 (text + image - text) parts",
                  "store search alone, as the product asks", "store search alone, top 10 only",
                  "numpy exact", "keyword alone, rare word", "keyword alone, product code", "hydrate alone (10 results)",
                  "filtered by spec, end to end"):
        for cell in _row(printed, label):
            p50, p95 = (float(value) for value in cell.split(" / "))
            assert 0 < p50 <= p95, (label, cell)
    assert all(int(value.replace(",", "")) > 0 for value in _row(printed, "fill items/s (db + keyword + vectors)"))
    assert "store p50 growth: 150→300" in printed
    assert re.search(r"corpus deleted in [\d.]+ s, 0 items left", printed)
    assert not Corpus.objects.exists() and not Item.objects.exists()
    assert store.collection_for(encoders.get()).count() == 0


def test_json_figures_hold_the_keyword_probes_and_the_kept_corpus(tmp_path):
    printed, _ = _bench("--items", "200", "--queries", "3", "--faiss-items", "0", "--keep", "--json",
                        "--out", str(tmp_path / "figures.json"))
    figures = json.loads(printed)
    assert json.loads((tmp_path / "figures.json").read_text()) == figures
    (engine,) = figures["engines"]
    (size,) = engine["sizes"]
    assert size["items"] == 200 and size["fill"]["items_in_database"] == 200 and engine["kept"]
    assert size["keyword"]["rare word"]["matches"] >= 1
    assert size["keyword"]["product code"]["first_is_the_product"]
    assert "faiss_hnsw" not in size and size["store"]["recall_at_10"] >= 0.9
    corpus = Corpus.objects.get(name=engine["corpus"])
    assert corpus.items.filter(kind="product").count() == 100
    assert corpus.items.filter(kind="product").first().metadata["specs"].keys() == {"colour", "material", "legs"}


@pytest.mark.parametrize("items", ["10,5", "abc", "5"])
def test_bad_sizes_are_a_clear_command_error(items):
    with pytest.raises(CommandError, match="--items"):
        _bench("--items", items)
