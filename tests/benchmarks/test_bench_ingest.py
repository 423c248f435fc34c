"""`manage.py bench_ingest --csv`: a generated knowledge base ingested as `ingest` does, timed against
the bare text encoder on the same rows, with the real tiny-random CLIP and Milvus Lite."""
import io
import json
import re
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from multimodal import encoders, store
from multimodal.models import Corpus, Item

from ..live_services import ROOT

pytestmark = pytest.mark.django_db


def _bench(*args) -> str:
    out = io.StringIO()
    call_command("bench_ingest", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_csv_benchmark_lands_every_row_prints_both_rates_their_ratio_and_the_edges_and_cleans_up():
    printed = _bench("--csv", "60", "--batch-size", "8")
    assert "CSV knowledge base of 60 rows (sku, title, description, specs), encode batch 8" in printed
    assert "ingest: 60 done, 0 failed" in printed
    ingest_rate = float(re.search(r"= ([\d.]+) items/s", printed).group(1))
    first, first_ratio, last, last_ratio = map(float, re.search(
        r"first 10% of rows: ([\d.]+) items/s, ratio ([\d.]+); last 10%: ([\d.]+) items/s, ratio ([\d.]+)",
        printed).groups())
    bare_rate, ratio = map(float, re.search(r"bare text encoder on the same 60 product texts, taking turns: "
                                            r"([\d.]+) items/s  -> ratio ([\d.]+)", printed).groups())
    assert min(ingest_rate, first, first_ratio, last, last_ratio, bare_rate) > 0
    assert ratio == pytest.approx(ingest_rate / bare_rate, abs=0.02)
    assert not Corpus.objects.filter(name__startswith="bench-").exists()


def test_csv_benchmark_json_with_keep_leaves_every_row_as_a_product_with_its_vector():
    figures = json.loads(_bench("--csv", "25", "--batch-size", "4", "--json", "--keep"))
    assert (figures["rows"], figures["job"]["done"], figures["job"]["failed"]) == (25, 25, 0)
    assert figures["bare_encoder_rows"] == 25 and figures["batch_size"] == 4
    assert figures["ratio_vs_bare_encoder"] == pytest.approx(
        figures["job"]["items_per_s"] / figures["bare_encoder_items_per_s"])
    corpus = Corpus.objects.get(name__startswith="bench-")
    products = corpus.items.filter(kind=Item.Kind.PRODUCT)
    assert products.count() == 26  # the rows and the one-row warm-up
    assert products.filter(external_id__startswith="SKU-").count() == 25
    assert len(set(products.values_list("text", flat=True))) == 26  # every row says something of its own
    assert store.collection_for(encoders.get()).count() == 26


def test_csv_benchmark_refuses_no_rows_and_the_worker():
    with pytest.raises(CommandError, match="--csv must be at least 1"):
        _bench("--csv", "0")
    with pytest.raises(CommandError, match="--worker"):
        _bench("--csv", "5", "--worker")


def test_bench_ingest_has_help_for_both_benchmarks():
    result = subprocess.run([sys.executable, "manage.py", "bench_ingest", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0
    assert "usage: manage.py bench_ingest" in result.stdout and "--csv ROWS" in result.stdout
    assert "--images" in result.stdout
