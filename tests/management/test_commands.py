"""The search and ingest commands as a user runs them."""
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from multimodal.models import Corpus

from ..conftest import image_bytes, ingest_files

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def corpus(deterministic_encoder):
    corpus = Corpus.objects.create(name="cli")
    files = {"red.png": image_bytes((255, 0, 0)), "blue.png": image_bytes((0, 0, 255)), "bike.txt": b"red bicycle"}
    ingest_files(corpus, files)
    return corpus


def _search(*args) -> str:
    out = io.StringIO()
    call_command("search", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_search_prints_a_ranked_table(corpus):
    lines = _search("red", "--top-k", "2", "--no-keyword").splitlines()
    assert len(lines) == 2
    assert lines[0].split()[0] == "1" and lines[0].endswith("red") and "image" in lines[0] and "1.0000" in lines[0]
    assert lines[1].split()[0] == "2"


def test_search_json_matches_the_api(corpus, client, tmp_path):
    query_image = tmp_path / "q.png"
    query_image.write_bytes(image_bytes((0, 0, 250)))
    printed = json.loads(_search("--image", str(query_image), "--top-k", "2", "--json"))
    with query_image.open("rb") as handle:
        api = client.post("/api/search", {"image": handle, "top_k": 2}).json()
    assert printed["results"] == api["results"]
    assert printed["results"][0]["title"] == "blue"
    assert printed["query"]["image"]["name"] == "q.png"


@pytest.mark.parametrize(
    "args, message",
    [((), "nothing to search for"), (("red", "--top-k", "0"), "top_k:"),
     (("red", "--corpus", "nope"), "no corpus named 'nope'"), (("--image", "/nonexistent.png"), "No such file")],
)
def test_search_bad_input_is_a_clear_command_error(corpus, args, message):
    with pytest.raises(CommandError, match=message):
        _search(*args)


def test_ingest_rejects_a_bad_corpus_name(tmp_path):
    with pytest.raises(CommandError, match="may hold only letters, digits"):
        call_command("ingest", str(tmp_path), "--corpus", "bad name!", stdout=io.StringIO())


@pytest.mark.parametrize("command", ["ingest", "search", "reindex", "evaluate", "train_adapter", "activate_adapter", "milvus",
                                     "transcribe", "bench_voice"])
def test_every_command_has_help(command):
    result = subprocess.run(
        [sys.executable, "manage.py", command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0
    assert "usage: manage.py " + command in result.stdout


def test_bench_search_prints_stage_timings_per_query_shape_and_a_baseline_and_cleans_up():
    out = io.StringIO()
    call_command("bench_search", "--items", "12", "--queries", "2", "--fusion", "vector,rrf",
                 stdout=out, stderr=io.StringIO())
    printed = out.getvalue()
    assert "12 items" in printed and "2 queries per row" in printed
    for shape in ("1 part (text), vector", "2 parts (text + image), rrf", "3 parts (text + image - text), vector"):
        assert shape in printed
    # Per-part Milvus searches (rrf) and per-modality encoding are reported separately.
    assert "search.part 0" in printed and "search.part 1" in printed and "encode.image" in printed
    assert "baseline exact numpy search" in printed
    assert not Corpus.objects.filter(name__startswith="bench-").exists()


def test_bench_search_rejects_unknown_shapes_and_modes():
    with pytest.raises(CommandError, match="--parts"):
        call_command("bench_search", "--parts", "4", stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="--fusion"):
        call_command("bench_search", "--fusion", "magic", stdout=io.StringIO(), stderr=io.StringIO())
