"""transformers CLIP and SigLIP (hf:) on ONNX Runtime against their PyTorch selves.

Tiny random models are written and exported once for the module (CLIP at fp32 and int8, SigLIP at fp32).
"""
import numpy as np
import pytest
from django.test import override_settings
from PIL import Image

from multimodal import encoders
from multimodal.encoders import onnx_cache

from .hf_models import tiny_clip, tiny_siglip

TEXTS = ["", "red", "a red bicycle against a brick wall", "a very long product description " * 12, "blue chair"]
EXPORTS = (("clip", "fp32", 0.999), ("clip", "int8", 0.98), ("siglip", "fp32", 0.999))
pytestmark = pytest.mark.django_db  # as in test_onnx_runtime: the module's tests stay together, exported once


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(5)
    return [Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
            for width, height in ((40, 30), (30, 40), (300, 200))]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{(model, precision): (torch encoder, ONNX encoder)} and the module's export cache."""
    models = tmp_path_factory.mktemp("hf-models")
    folders = {"clip": tiny_clip(models), "siglip": tiny_siglip(models)}
    cache = tmp_path_factory.mktemp("hf-encoder-cache")
    references = {model: encoders.encoder_build(f"hf:{folder}", runtime="torch", precision="fp32")
                  for model, folder in folders.items()}
    with override_settings(MULTIMODAL_ENCODER_CACHE_DIR=cache):
        # int8 first: its export process makes fp32 on the way, so CLIP's two take one process, not two.
        built = {(model, precision): (references[model], encoders.encoder_build(f"hf:{folders[model]}", runtime="onnx",
                                                                                 precision=precision))
                 for model, precision, _ in sorted(EXPORTS, key=lambda export: export[1] != "int8")}
    yield built, cache
    encoders.clear_cache()


def test_hf_clip_and_siglip_run_on_onnx_and_agree_with_pytorch(exported):
    built, cache = exported
    for model, precision, floor in EXPORTS:
        reference, encoder = built[(model, precision)]
        assert encoder.name == reference.name and encoder.dim == reference.dim
        assert encoder.runtime.label == f"onnx {precision}" and encoder.runtime.agreement >= floor, (model, precision)
        texts = (encoder.encode_text(TEXTS) * reference.encode_text(TEXTS)).sum(axis=1)
        images = (encoder.encode_image(_images()) * reference.encode_image(_images())).sum(axis=1)
        assert texts.min() >= floor and images.min() >= floor, (model, precision, texts, images)
    # Each export is kept under its model, precision and settings, with its measured agreement.
    folders = sorted(path.name.rsplit("-", 1)[0] for path in cache.iterdir())
    assert [name.rsplit("-", 2)[-2:] for name in folders] == [["clip", "fp32"], ["clip", "int8"], ["siglip", "fp32"]]
    with override_settings(MULTIMODAL_ENCODER_CACHE_DIR=cache):
        manifest = onnx_cache.manifest_read(onnx_cache.export_folder(built[("clip", "int8")][0].name, "int8"))
    assert manifest["key"]["transformers"] and manifest["agreement"]["text"]["min"] >= 0.98
