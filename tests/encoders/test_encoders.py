"""The encoder registry and the real loading code paths, on tiny configs written by the tests."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from multimodal import encoders
from multimodal.encoders import EncoderLoadError

from .hf_models import tiny_clip

IMAGES = [Image.new("RGB", (40, 30), (200, 30, 30)), Image.new("RGB", (30, 40), (20, 30, 200))]
TEXTS = ["a red bicycle", "a blue chair", ""]


def _assert_unit_rows(vectors: np.ndarray, rows: int, dim: int):
    assert vectors.dtype == np.float32 and vectors.shape == (rows, dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_tiny_random_is_seeded_normalised_and_cached_per_process():
    encoder = encoders.get("tiny-random")
    assert encoder is encoders.get("tiny-random")
    assert encoder.name == "open_clip:tiny-random" and encoder.dim == 32
    _assert_unit_rows(encoder.encode_text(TEXTS), 3, 32)
    _assert_unit_rows(encoder.encode_image(IMAGES), 2, 32)
    from multimodal.encoders.open_clip_backend import OpenClipEncoder

    rebuilt = OpenClipEncoder("tiny-random")  # another process would build exactly this
    np.testing.assert_allclose(rebuilt.encode_text(TEXTS), encoder.encode_text(TEXTS), atol=1e-6)


def test_configured_name_selects_the_encoder(settings):
    settings.MULTIMODAL_CLIP_MODEL = "tiny-random"
    assert encoders.get().name == "open_clip:tiny-random"


def test_open_clip_checkpoint_file_loads_through_the_pretrained_path(tmp_path):
    source = encoders.get("tiny-random")
    weights = {name: value + 0.01 for name, value in source._model.state_dict().items()}
    checkpoint = tmp_path / "tuned.pt"
    torch.save(weights, checkpoint)
    loaded = encoders.get(f"tiny-random:{checkpoint}")
    assert loaded.name == f"open_clip:tiny-random:{checkpoint}"
    # The file's weights were used: vectors differ from the random init, and match a model given them.
    assert not np.allclose(loaded.encode_text(TEXTS), source.encode_text(TEXTS), atol=1e-4)
    source._model.load_state_dict(weights)
    try:
        np.testing.assert_allclose(loaded.encode_image(IMAGES), source.encode_image(IMAGES), atol=1e-5)
    finally:
        encoders.clear_cache()


def test_any_architecture_with_random_weights_builds_offline_for_benchmarks():
    seeded = encoders.get("tiny-random:random")
    assert seeded.name == "open_clip:tiny-random:random"
    np.testing.assert_allclose(seeded.encode_text(TEXTS), encoders.get("tiny-random").encode_text(TEXTS), atol=1e-6)


def test_open_clip_local_directory_loads_like_an_hf_hub_repo(tmp_path):
    source = encoders.get("tiny-random")
    config = json.loads((encoders.open_clip_backend.CONFIG_DIR / "tiny-random.json").read_text())
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": config, "preprocess_cfg": {}}))
    torch.save(source._model.state_dict(), tmp_path / "open_clip_pytorch_model.bin")
    for spec in (f"local-dir:{tmp_path}", str(tmp_path)):
        loaded = encoders.get(spec)
        np.testing.assert_allclose(loaded.encode_text(TEXTS), source.encode_text(TEXTS), atol=1e-5)


def test_transformers_clip_from_a_local_directory(tmp_path):
    model_dir = tiny_clip(tmp_path)

    encoder = encoders.get(f"hf:{model_dir}")
    assert encoder.name == f"hf:{model_dir}" and encoder.dim == 16
    _assert_unit_rows(encoder.encode_text(TEXTS), 3, 16)
    _assert_unit_rows(encoder.encode_image(IMAGES), 2, 16)
    assert not np.allclose(*encoder.encode_text(TEXTS[:2]))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("ViT-B-32", "names no weights: use MODEL:PRETRAINED"),
        ("no-such-model:whatever", "could not load open_clip model 'no-such-model:whatever'"),
        ("tiny-random:/nonexistent/weights.pt", "could not load open_clip model"),
        ("hf:/nonexistent/model-dir", "could not load transformers model '/nonexistent/model-dir'"),
    ],
)
def test_unloadable_models_raise_one_clear_error(spec, message):
    with pytest.raises(EncoderLoadError, match=message):
        encoders.get(spec)


def test_registered_encoders_win_over_backends():
    class Fixed:
        name, dim = "fixed", 2

        def encode_text(self, texts):
            return np.ones((len(texts), 2), dtype=np.float32) / np.sqrt(2)

        encode_image = encode_text

    encoders.register("fixed", Fixed)
    try:
        assert encoders.get("fixed").encode_text(["x"]).shape == (1, 2)
    finally:
        encoders.unregister("fixed")
