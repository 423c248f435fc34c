"""The ONNX Runtime encoder against PyTorch, its export cache, and collections that record their runtime.

The tiny-random towers are exported once for the module (fp32, then int8 from it) into a folder of its own.
"""
import io

import numpy as np
import pytest
from django.core.management import call_command
from django.test import override_settings
from PIL import Image

from multimodal import encoders
from multimodal.encoders import onnx_export
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


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory):
    """The module's export folder, with tiny-random exported at fp32 and int8; yields the two encoders."""
    cache = tmp_path_factory.mktemp("encoder-cache")
    with override_settings(MULTIMODAL_ENCODER_CACHE_DIR=cache):
        built = {precision: encoders.encoder_build("tiny-random", runtime="onnx", precision=precision)
                 for precision in ("fp32", "int8")}
    yield cache, built
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
        full = encoder._model.encode_text(encoder._tokenizer(TEXTS)).numpy()
    np.testing.assert_allclose(encoder.encode_text(TEXTS), encoders.l2_normalise(full), atol=1e-5)


def test_an_export_is_reused_and_made_again_when_its_settings_change(onnx_settings, export_cache, monkeypatch):
    cache = export_cache[0]

    def exports() -> list[str]:
        return sorted(path.name for path in cache.glob("tiny-random-*"))

    before = exports()

    def refused(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(onnx_export, "_tower_export", refused)
    monkeypatch.setattr(onnx_export, "_tower_convert", refused)
    encoders.encoder_build("tiny-random", runtime="onnx", precision="int8")  # reused: nothing exported
    assert exports() == before

    monkeypatch.undo()
    monkeypatch.setattr(onnx_export, "_tower_export", refused)  # fp32 stays as it is
    monkeypatch.setattr(onnx_export, "INT8_OPS", ["MatMul"])  # an int8 export setting changes
    rebuilt = encoders.encoder_build("tiny-random", runtime="onnx", precision="int8")
    after = exports()
    fp32 = [name for name in before if "-fp32-" in name]
    assert [name for name in after if "-fp32-" in name] == fp32
    int8_before, int8_after = ([name for name in names if "-int8-" in name] for names in (before, after))
    assert len(int8_after) == 1 and int8_after != int8_before  # made again; the stale one removed
    assert onnx_export.manifest_read(cache / int8_after[0])["key"]["int8"]["ops"] == ["MatMul"]
    assert rebuilt.runtime.agreement >= 0.98


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


def test_bench_encode_prints_its_table(onnx_settings):
    onnx_settings.MULTIMODAL_CLIP_MODEL = "tiny-random"
    out = io.StringIO()
    call_command("bench_encode", "--runtimes", "onnx:fp32", "--texts", "6", "--images", "2", "--image-side", "64",
                 "--repeats", "1", "--queries", "3", stdout=out, stderr=io.StringIO())
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("encoder: open_clip:tiny-random")
    assert lines[1].split()[:4] == ["runtime", "texts/s", "x", "torch"]
    rows = {" ".join(line.split()[:2]): line.split()[2:] for line in lines[2:]}
    assert set(rows) == {"torch fp32", "onnx fp32"}
    assert rows["torch fp32"][1] == "1.00" and rows["torch fp32"][4] == "1.0000/1.0000"
    text_min, image_min = (float(rows["onnx fp32"][column].split("/")[1]) for column in (4, 5))
    assert text_min >= 0.999 and image_min >= 0.999 and float(rows["onnx fp32"][0]) > 0
