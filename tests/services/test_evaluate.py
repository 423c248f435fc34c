"""The evaluate command: known queries through the real search path and store, scored as by hand."""
import io
import json
import re
import subprocess

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from multimodal.models import Corpus

from ..adapter_domain import catalogue_write
from ..conftest import image_bytes, ingest_files

# Lite and a real server; IVF_FLAT's ranking is tested in tests/store/test_store_ranking.py.
pytestmark = [pytest.mark.django_db, pytest.mark.engines("lite", "server-hnsw")]
GROUP_COLUMNS = ("queries", "R@1", "R@5", "R@10", "MRR", "nDCG@10", "p50", "p95")


@pytest.fixture
def colours(deterministic_encoder):
    corpus = Corpus.objects.create(name="colours")
    ingest_files(corpus, {
        "red.png": image_bytes((255, 0, 0)), "yellow.png": image_bytes((255, 255, 0)),
        "blue.png": image_bytes((0, 0, 255)), "cyan.png": image_bytes((0, 255, 255)),
        "bike.txt": b"red bicycle", "chair.txt": b"a chair",
    })
    return corpus


def _queries(folder, lines) -> str:
    (folder / "q-red.png").write_bytes(image_bytes((250, 5, 5)))
    path = folder / "queries.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return str(path)


def _evaluate(*args) -> str:
    out = io.StringIO()
    call_command("evaluate", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _groups(printed: str) -> dict[str, dict[str, float]]:
    """The table's rows: modality -> column -> value."""
    groups = {}
    for line in printed.splitlines():
        words = line.split()
        if len(words) == 9 and words[0].isdigit():
            groups[words[1]] = dict(zip(GROUP_COLUMNS, map(float, [words[0], *words[2:]])))
    return groups


# The deterministic encoder's vectors (tests/conftest.py) fix every ranking:
#  "blue" -> blue.png (cosine 1); "chair" -> chair.txt (1); the red image -> red.png (1);
#  more like blue.png -> cyan.png ((e1+e2)/√2 . e2 = 0.71, every other item 0);
#  "bicycle" + red image -> "red bicycle" (1); "red" -> red.png (1 + keyword), then "red bicycle"
#  (0.71 + keyword) ahead of yellow (0.71, no keyword match): the relevant bike.txt is 2nd.
LINES = [
    {"text": "blue", "relevant": ["blue.png"]},
    {"text": "chair", "relevant": ["chair.txt"]},
    {"text": "red", "relevant": ["bike.txt"]},
    {"image": "q-red.png", "relevant": ["red.png"]},
    {"item": "blue.png", "relevant": ["cyan.png"]},
    {"parts": [{"type": "text", "value": "bicycle"}, {"type": "image", "path": "q-red.png"}], "relevant": ["bike.txt"]},
]


def test_evaluate_prints_recall_mrr_ndcg_and_latency_overall_and_per_modality(colours, tmp_path):
    printed = _evaluate(_queries(tmp_path, LINES))
    assert printed.splitlines()[0].startswith("6 queries, top 10 each; encoder test-deterministic; searched in colours: base vectors")
    groups = _groups(printed)
    assert set(groups) == {"all", "text", "image", "item", "text+image"}
    third_query_ndcg = 1 / 1.5849625  # found at rank 2: 1/log2(3)
    assert groups["text"] == pytest.approx({
        "queries": 3, "R@1": 2 / 3, "R@5": 1, "R@10": 1, "MRR": (1 + 1 + 0.5) / 3, "nDCG@10": (2 + third_query_ndcg) / 3,
        "p50": groups["text"]["p50"], "p95": groups["text"]["p95"]}, abs=1e-4)
    for single in ("image", "item", "text+image"):
        assert [groups[single][name] for name in ("queries", "R@1", "MRR", "nDCG@10")] == [1, 1, 1, 1]
    assert groups["all"]["R@1"] == pytest.approx(5 / 6, abs=1e-4)
    assert groups["all"]["MRR"] == pytest.approx(5.5 / 6, abs=1e-4)
    assert 0 < groups["all"]["p50"] <= groups["all"]["p95"]


def test_evaluate_json_has_the_same_figures_and_each_query_s_rank(colours, tmp_path):
    report = json.loads(_evaluate(_queries(tmp_path, LINES), "--json"))
    assert report["queries"] == 6 and report["indexes"] == {"colours": "base vectors"}
    assert [row["first_relevant_rank"] for row in report["per_query"]] == [1, 1, 2, 1, 1, 1]
    assert set(report["groups"]["all"]) == {"queries", "recall@1", "recall@5", "recall@10", "mrr", "ndcg@10",
                                            "latency_p50_ms", "latency_p95_ms"}
    assert report["groups"]["all"]["mrr"] == pytest.approx(5.5 / 6, abs=1e-4)
    # --fusion applies to every line; rrf finds the same first results here.
    rrf = json.loads(_evaluate(_queries(tmp_path, LINES), "--json", "--fusion", "rrf"))
    assert [row["first_relevant_rank"] for row in rrf["per_query"]][:2] == [1, 1]


@pytest.mark.parametrize("line, message", [
    ('{"text": "blue", "relevant": ["blue.png"]', "queries.jsonl line 2: not valid JSON"),
    ({"text": "blue", "relevant": [99999]}, "queries.jsonl line 2 relevant: no item with id 99999"),
    ({"text": "blue", "relevant": ["nothing.png"]}, "queries.jsonl line 2 relevant: no item named 'nothing.png'"),
    ({"image": "missing.png", "relevant": [1]}, "queries.jsonl line 2: image 'missing.png' is not a file"),
    ({"text": "blue"}, 'queries.jsonl line 2: "relevant" must be a non-empty list'),
    ({"txt": "blue", "relevant": [1]}, "queries.jsonl line 2: unknown key txt"),
    ({"relevant": [1]}, "queries.jsonl line 2: nothing to search for"),
    ({"text": "blue", "relevant": ["blue.png"], "kind": "planet"}, "queries.jsonl line 2: kind: unknown kind planet"),
])
def test_a_bad_query_line_is_named_with_its_problem(colours, tmp_path, line, message):
    with pytest.raises(CommandError, match=message):
        _evaluate(_queries(tmp_path, [LINES[0], line]))


def test_evaluate_needs_queries_or_a_corpus_and_a_known_corpus(colours, tmp_path):
    with pytest.raises(CommandError, match="give a QUERIES file or --from-corpus"):
        _evaluate()
    with pytest.raises(CommandError, match="no corpus named 'nope'"):
        _evaluate(_queries(tmp_path, LINES), "--corpus", "nope")
    with pytest.raises(CommandError, match="holds no image-text pairs"):
        _evaluate("--from-corpus", "colours")


def test_a_spoken_query_is_transcribed_and_scored_like_the_others(deterministic_encoder, tmp_path):
    notes = Corpus.objects.create(name="notes")
    ingest_files(notes, {"bike.txt": b"A red bicycle against the wall", "cat.txt": b"A cat on a green chair"})
    # Real Whisper tiny hears this espeak-ng sentence well enough ("rent bicycle ... against ...").
    subprocess.run(["espeak-ng", "-w", str(tmp_path / "spoken.wav"), "a red bicycle leaning against a brick wall"],
                   check=True)
    lines = [{"voice": "spoken.wav", "relevant": ["bike.txt"]}, {"text": "green chair", "relevant": ["cat.txt"]}]
    report = json.loads(_evaluate(_queries(tmp_path, lines), "--json", "--corpus", "notes"))
    assert set(report["groups"]) == {"all", "voice", "text"}
    assert [row["first_relevant_rank"] for row in report["per_query"]] == [1, 1]
    assert report["groups"]["voice"]["latency_p50_ms"] > report["groups"]["text"]["latency_p50_ms"]  # it transcribes


# Each field set once, on the default engine and on a real server with the product's index: the flow's ~20 s is
# paid twice. IVF_FLAT is the store's business (tests/store/test_store_ranking.py, the adapter activation tests).
@pytest.mark.parametrize("store_engine, titles_and_specs", [("lite", True), ("server-hnsw", False)],
                         ids=["lite-titles-descriptions-specs", "server-hnsw-descriptions"], indirect=["store_engine"])
def test_the_product_flow_ingest_evaluate_train_activate_evaluate_shows_the_improvement(domain_encoder, tmp_path,
                                                                                        titles_and_specs):
    """As a new user: a paired catalogue in, measured, an adapter trained and activated, measured again.

    With titles and specs, the indexed text differs from the description people search with; the
    adapter must still serve the description.
    """
    catalogue_write(tmp_path / "catalogue", range(200), titles_and_specs=titles_and_specs)
    call_command("ingest", str(tmp_path / "catalogue"), "--corpus", "shop", stdout=io.StringIO(), stderr=io.StringIO())
    before = _groups(_evaluate("--from-corpus", "shop"))["all"]
    train = io.StringIO()
    call_command("train_adapter", "--corpus", "shop", stdout=train, stderr=io.StringIO())
    assert re.search(r"text->image +before", train.getvalue()) and re.search(r"text->image +after", train.getvalue())
    saved = tmp_path / "held-out.jsonl"
    before_held_out = _groups(_evaluate("--from-corpus", "shop", "--holdout-of", "1", "--write-queries", str(saved)))["all"]
    call_command("activate_adapter", "1", "--corpus", "shop", stdout=io.StringIO(), stderr=io.StringIO())
    after_printed = _evaluate("--from-corpus", "shop")
    assert "searched in shop: adapter v1" in after_printed
    after = _groups(after_printed)["all"]
    after_held_out = _groups(_evaluate(str(saved)))["all"]  # the saved held-out queries, run again
    assert (before["queries"], before_held_out["queries"]) == (200, 40)
    assert before["R@1"] < 0.05 and before["MRR"] < 0.1  # 200 images: chance is 0.005
    assert after["R@1"] > 0.9 and after["MRR"] > 0.9
    assert before_held_out["R@10"] < 0.3 and after_held_out["R@1"] > 0.8  # pairs it never trained on


def test_modality_image_matches_products_by_their_picture_alone(domain_encoder, tmp_path, client):
    catalogue_write(tmp_path / "catalogue", range(30))
    call_command("ingest", str(tmp_path / "catalogue"), "--corpus", "shop", stdout=io.StringIO(), stderr=io.StringIO())
    description = domain_encoder.captions[4]
    by_text = client.get("/api/search", {"q": description, "top_k": 1, "hybrid": "false"}).json()
    assert (by_text["results"][0]["external_id"], by_text["results"][0]["score"]) == ("SKU-4", pytest.approx(1.0, abs=1e-5))
    by_picture = client.get("/api/search", {"q": description, "top_k": 30, "modality": "image"}).json()
    assert by_picture["query"]["filters"]["modality"] == ["image"] and by_picture["query"]["hybrid"] is False
    scores = {result["external_id"]: result["score"] for result in by_picture["results"]}
    assert len(scores) == 30 and scores["SKU-4"] < 0.9  # its image vector is unrelated until an adapter aligns them
    assert client.get("/api/search", {"q": "x", "modality": "smell"}).json()["error"] == \
        "modality: unknown modality smell: use image, text"
