"""The ONNX Runtime encoder against PyTorch, its export cache, and collections that record their runtime.

The tiny-random towers are exported once for the module (fp32, then int8 from it) into a folder of its own,
by the child process a web process would start.
"""
import fcntl
import io
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from PIL import Image

from multimodal import encoders
from multimodal.encoders import onnx_cache, onnx_export
from multimodal.encoders.open_clip_backend import OpenClipEncoder

TEXTS = ["", "red", "a red bicycle against a brick wall",
         "a very long product description " * 12,  # past the 77-token context: truncated alike
         "blue chair", "a sleeping cat on a green sofa in the afternoon sun"]


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(3)
    sizes = [(40, 30), (30, 40), (1000, 700), (96, 96)]  # (1000, 700): reduced before the resize
    return [Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)) for width, height in sizes]

# Every test here is a database test, so pytest-django keeps them together and the module's export (~15 s) is
# made once; with one database test among plain ones it ran apart, and the export was made twice.
pytestmark = pytest.mark.django_db


def _refused(*args, **kwargs):
    raise AssertionError("exported in this process")


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory):
    """The module's export folder, with tiny-random exported at fp32 and int8 (by one `encoder_export` child:
    int8 is made from fp32); yields the two encoders and the export's progress lines."""
    cache = tmp_path_factory.mktemp("encoder-cache")
    steps = []
    with override_settings(MULTIMODAL_ENCODER_CACHE_DIR=cache), pytest.MonkeyPatch.context() as patch:
        patch.setattr(onnx_export, "_tower_export", _refused)
        patch.setattr(onnx_export, "_tower_convert", _refused)
        built = {precision: encoders.encoder_build("tiny-random", runtime="onnx", precision=precision,
                                                   on_step=steps.append)
                 for precision in ("int8", "fp32")}
    yield cache, built, steps
    encoders.clear_cache()


@pytest.fixture
def onnx_settings(settings, export_cache):
    settings.MULTIMODAL_ENCODER_CACHE_DIR = export_cache[0]
    return settings


def _cosines(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return (left * right).sum(axis=1)


def test_onnx_vectors_agree_with_pytorch_at_fp32_and_int8(export_cache):
    reference = encoders.get("tiny-random")
    assert encoders.runtime_of(reference).label == "torch fp32"
    texts, images = reference.encode_text(TEXTS), reference.encode_image(_images())
    for precision, floor in (("fp32", 0.999), ("int8", 0.98)):
        encoder = export_cache[1][precision]
        assert encoder.name == reference.name and encoder.dim == reference.dim
        assert encoder.runtime.label == f"onnx {precision}" and encoder.runtime.agreement >= floor
        assert _cosines(encoder.encode_text(TEXTS), texts).min() >= floor, precision
        assert _cosines(encoder.encode_image(_images()), images).min() >= floor, precision


def test_texts_cut_to_their_batchs_longest_give_the_full_context_vectors():
    encoder = OpenClipEncoder("tiny-random")
    assert encoder._text.right_sized
    import torch

    with torch.inference_mode():
        full = encoder._model.encode_text(torch.from_numpy(encoder._tokenizer(TEXTS))).numpy()
    np.testing.assert_allclose(encoder.encode_text(TEXTS), encoders.l2_normalise(full), atol=1e-5)


def test_an_export_is_reused_and_made_again_when_its_settings_change(onnx_settings, export_cache, monkeypatch):
    cache = export_cache[0]

    def exports() -> list[str]:
        return sorted(path.name for path in cache.glob("tiny-random-*"))

    before = exports()
    monkeypatch.setattr(onnx_cache, "export_command", _refused)  # no child process starts
    encoders.encoder_build("tiny-random", runtime="onnx", precision="int8")  # reused: nothing exported
    assert exports() == before

    monkeypatch.setattr(onnx_export, "_tower_export", _refused)  # fp32 stays as it is
    monkeypatch.setattr(onnx_cache, "INT8_OPS", ["MatMul"])  # an int8 export setting changes
    onnx_export.export_ensure("tiny-random", "int8")  # what the child runs, here to see the changed setting
    rebuilt = encoders.encoder_build("tiny-random", runtime="onnx", precision="int8")
    after = exports()
    fp32 = [name for name in before if "-fp32-" in name]
    assert [name for name in after if "-fp32-" in name] == fp32
    int8_before, int8_after = ([name for name in names if "-int8-" in name] for names in (before, after))
    assert len(int8_after) == 1 and int8_after != int8_before  # made again; the stale one removed
    assert onnx_cache.manifest_read(cache / int8_after[0])["key"]["int8"]["ops"] == ["MatMul"]
    assert rebuilt.runtime.agreement >= 0.98


def test_a_missing_export_is_made_by_a_child_process_that_reports_progress_and_failure(settings, export_cache,
                                                                                      tmp_path):
    steps = export_cache[2]
    assert any("exporting the text tower of tiny-random" in step for step in steps)
    assert any("converting to int8: the image tower" in step for step in steps)
    assert steps[-1].split("] ", 1)[1].startswith(f"ready: {export_cache[0]}/tiny-random-int8-")
    # An export that fails says why, and which command to run to see all of it.
    settings.MULTIMODAL_ENCODER_CACHE_DIR = tmp_path / "not-a-folder"
    settings.MULTIMODAL_ENCODER_CACHE_DIR.write_text("")
    with pytest.raises(encoders.EncoderLoadError) as failed:
        encoders.encoder_build("tiny-random", runtime="onnx", precision="fp32")
    message = str(failed.value)
    assert message.startswith(f"exporting tiny-random to ONNX (fp32) failed: CommandError: cannot write the export "
                              f"cache {tmp_path / 'not-a-folder'} (MULTIMODAL_ENCODER_CACHE_DIR): [Errno 17] File exists")
    assert f"`manage.py encoder_export tiny-random --precision fp32 --device cpu --cache-dir {tmp_path}" in message


def test_a_process_that_needs_an_export_another_is_making_waits_for_it_instead_of_making_its_own(
        settings, export_cache, tmp_path, monkeypatch):
    settings.MULTIMODAL_ENCODER_CACHE_DIR = tmp_path / "cache"
    folder = onnx_cache.export_folder("tiny-random", "int8")
    monkeypatch.setattr(onnx_cache, "export_command", _refused)  # no child process starts
    built = []
    with open(onnx_cache.export_lock_path(folder), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process is exporting
        waiting = threading.Thread(target=lambda: built.append(
            encoders.encoder_build("tiny-random", runtime="onnx", precision="int8")))
        waiting.start()
        waiting.join(timeout=1)
        assert waiting.is_alive() and not built
        shutil.copytree(next(export_cache[0].glob("tiny-random-int8-*")), folder)  # what it made
    waiting.join(timeout=30)
    assert built and built[0].runtime.label == "onnx int8" and built[0].encode_text(["red"]).shape == (1, 32)


TORCH_FREE_SEARCH = """
import io, json, sys
import django
django.setup()
from django.core.management import call_command
from django.test import Client
call_command("migrate", verbosity=0)
call_command("ingest", sys.argv[1], "--corpus", "shop", stdout=io.StringIO(), stderr=io.StringIO())
response = Client().get("/api/search", {"q": "a sleeping cat on a sofa"}, HTTP_HOST="localhost")
print(json.dumps({"status": response.status_code, "titles": [r["title"] for r in response.json().get("results", [])],
                  "imported": sorted({name.split(".")[0] for name in sys.modules}
                                     & {"torch", "torchvision", "open_clip", "transformers"})}))
"""


def test_a_process_on_the_onnx_runtime_searches_without_importing_torch(export_cache, tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    for name, text in {"bike": "a red bicycle against a brick wall", "cat": "a sleeping cat on a sofa"}.items():
        (folder / f"{name}.txt").write_text(text)
    environment = {key: value for key, value in os.environ.items() if key not in ("DJANGO_TEST_DB", "MILVUS_URI")}
    environment |= {"MULTIMODAL_DATA_DIR": str(tmp_path / "data"), "MILVUS_URI": str(tmp_path / "lite.db"),
                    "MULTIMODAL_CLIP_MODEL": "tiny-random", "MULTIMODAL_ENCODER_RUNTIME": "onnx",
                    "MULTIMODAL_ENCODER_PRECISION": "int8", "MULTIMODAL_ENCODER_CACHE_DIR": str(export_cache[0]),
                    "CELERY_BROKER_URL": "", "MULTIMODAL_OCR": "0", "DJANGO_SETTINGS_MODULE": "searchsite.settings"}
    run = subprocess.run([sys.executable, "-c", TORCH_FREE_SEARCH, str(folder)], cwd=Path(__file__).parents[2],
                         env=environment, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    outcome = json.loads(run.stdout.splitlines()[-1])
    assert outcome["status"] == 200 and outcome["titles"][0] == "a sleeping cat on a sofa"
    assert outcome["imported"] == []


def _texts_ingest(tmp_path, corpus: str, texts: dict[str, str]) -> str:
    folder = tmp_path / corpus
    folder.mkdir()
    for name, text in texts.items():
        (folder / f"{name}.txt").write_text(text)
    out = io.StringIO()
    call_command("ingest", str(folder), "--corpus", corpus, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_collection_refuses_a_runtime_that_disagrees_and_search_runs_on_onnx(onnx_settings, client, tmp_path):
    onnx_settings.MULTIMODAL_ENCODER_RUNTIME, onnx_settings.MULTIMODAL_ENCODER_PRECISION = "onnx", "int8"
    _texts_ingest(tmp_path, "shop", {"bike": "a red bicycle against a brick wall", "cat": "a sleeping cat on a sofa"})
    # Searched with the runtime that built it, the exact text finds its item first.
    found = client.get("/api/search", {"q": "a sleeping cat on a sofa"})
    assert found.status_code == 200 and found.json()["results"][0]["title"] == "a sleeping cat on a sofa"

    onnx_settings.MULTIMODAL_ENCODER_RUNTIME, onnx_settings.MULTIMODAL_ENCODER_PRECISION = "torch", "fp32"
    # int8 agrees with torch fp32 to about 0.99 (measured at export): within the default 0.98, not within 0.9999.
    assert client.get("/api/search", {"q": "a red bicycle"}).status_code == 200
    onnx_settings.MULTIMODAL_ENCODER_AGREEMENT_MIN = 0.9999
    refused = client.get("/api/search", {"q": "a red bicycle"})
    assert refused.status_code == 503
    message = refused.json()["error"]
    assert "made with onnx int8" in message and "torch fp32" in message and "reindex --drop" in message
    with pytest.raises(encoders.EncoderRuntimeMismatch, match="made with onnx int8"):  # nor may it write there
        _texts_ingest(tmp_path, "more", {"dog": "a dog on a beach"})


def _recall_corpus(tmp_path) -> Path:
    """A corpus "shop" of three texts and two pictures, and a query file asking for each by its own text or picture
    (so each is found first whatever the weights: an input's own vector is the nearest to it)."""
    folder = tmp_path / "shop"
    folder.mkdir()
    texts = {"bike": "a red bicycle against a brick wall", "cat": "a sleeping cat on a green sofa",
             "kettle": "a steel kettle on a gas stove"}
    for name, text in texts.items():
        (folder / f"{name}.txt").write_text(text)
    gradient = np.linspace(0, 255, 64, dtype=np.uint8)
    Image.new("RGB", (64, 64), (200, 30, 20)).save(folder / "red.png")
    Image.fromarray(np.stack([np.tile(gradient, (64, 1))] * 2 + [np.full((64, 64), 230, np.uint8)], axis=2)).save(
        folder / "sky.png")
    call_command("ingest", str(folder), "--corpus", "shop", stdout=io.StringIO(), stderr=io.StringIO())
    queries = tmp_path / "queries.jsonl"
    queries.write_text("\n".join(json.dumps(line) for line in [
        {"text": texts["bike"], "relevant": ["bike.txt"]},
        {"text": texts["cat"], "relevant": ["cat.txt"], "modality": "text"},
        {"image": "shop/sky.png", "relevant": ["sky.png"], "modality": "image"},
        {"image": "shop/red.png", "relevant": ["red.png"]},
    ]))
    return queries


def test_bench_encode_prints_its_table_with_recall_per_runtime(onnx_settings, tmp_path):
    onnx_settings.MULTIMODAL_CLIP_MODEL = "tiny-random"
    queries = _recall_corpus(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    call_command("bench_encode", "--runtimes", "onnx:fp32", "--texts", "6", "--images", "2", "--image-side", "64",
                 "--repeats", "1", "--queries", "3", "--evaluate", str(queries), "--corpus", "shop",
                 stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("encoder: open_clip:tiny-random")
    assert lines[1].startswith("recall: 4 queries of ") and "the 5 items of corpus 'shop'" in lines[1]
    assert lines[2].split()[:4] == ["runtime", "texts/s", "x", "torch"]
    assert lines[2].split()[-7:] == ["R@1/5/10", "MRR", "nDCG@10", "change", "R@k", "change", "MRR"]
    rows = {" ".join(line.split()[:2]): line.split()[2:] for line in lines[3:]}
    assert set(rows) == {"torch fp32", "onnx fp32"}
    assert rows["torch fp32"][1] == "1.00" and rows["torch fp32"][4] == "1.0000/1.0000"
    text_min, image_min = (float(rows["onnx fp32"][column].split("/")[1]) for column in (4, 5))
    assert text_min >= 0.999 and image_min >= 0.999 and float(rows["onnx fp32"][0]) > 0
    # Recall on the query set, per runtime, and its change from torch fp32: onnx fp32's vectors are torch's.
    for row in rows.values():
        assert row[10:] == ["1.000/1.000/1.000", "1.000", "1.000", "+0.000/+0.000/+0.000", "+0.000"]
    progress = err.getvalue()
    assert "torch fp32: encoding corpus 'shop': 5/5 items" in progress and "onnx fp32: encoding corpus 'shop'" in progress


def test_bench_encode_refuses_a_query_set_it_cannot_score(tmp_path):
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"text": "a red bicycle", "relevant": ["bike.txt"]}) + "\n"
                       + json.dumps({"text": "a dog", "relevant": ["dog.txt"]}))
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "bike.txt").write_text("a red bicycle")
    call_command("ingest", str(tmp_path / "shop"), "--corpus", "shop", stdout=io.StringIO(), stderr=io.StringIO())
    run = ["bench_encode", "--runtimes", "torch:fp32", "--evaluate"]
    with pytest.raises(CommandError, match=r"queries.jsonl line 2 relevant: no item named 'dog.txt' in corpus shop"):
        call_command(*run, str(queries), "--corpus", "shop")
    with pytest.raises(CommandError, match="--corpus: no corpus named 'shops'"):
        call_command(*run, str(queries), "--corpus", "shops")
    with pytest.raises(CommandError, match="missing.jsonl: No such file"):
        call_command(*run, str(tmp_path / "missing.jsonl"), "--corpus", "shop")
