"""The torch-free tokeniser and image preprocessing give open_clip's own token ids and pixels."""
from dataclasses import asdict

import numpy as np
import pytest
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image

from multimodal.encoders.clip_inputs import ClipTokenizer, preprocess_make

TEXTS = [
    "", "a photo of a cat", "A RED Bicycle, leaning against a brick wall.", "it's what they'd've done — we'll see",
    "Café crème brûlée für 3,50 € (naïve)", "こんにちは世界", "東京タワーの夜景", "مرحبا بالعالم", "😀🎉 party 🥳",
    "&amp;lt;b&amp;gt;bold&lt;/b&gt; &quot;quoted&quot;", "tabs\tand\nnew   lines  ", "snake_case_name and CamelCase",
    "12345 67.89 1e-3 #42 @user", "<start_of_text> inside <end_of_text> text",
    "supercalifragilisticexpialidocious" * 3,
    "a very long product description with many words " * 12,  # past the context length: cut, ending in end-of-text
    "x" * 500, "Ｆｕｌｌｗｉｄｔｈ ＬＥＴＴＥＲＳ and mojibake Ã©tÃ©",
]


@pytest.mark.parametrize("options", [
    {},  # ViT-B-32 and every open_clip model with the default tokeniser
    {"context_length": 32, "clean": "canonicalize"},
    {"context_length": 64, "clean": "whitespace", "additional_special_tokens": ["<mask>"]},
])
def test_tokens_match_open_clips_tokenizer(options):
    expected = SimpleTokenizer(**options)(TEXTS).numpy()
    tokens = ClipTokenizer(**options)(TEXTS)
    assert tokens.dtype == np.int64 and tokens.shape == expected.shape
    np.testing.assert_array_equal(tokens, expected)
    assert (tokens[:, -1] != 0).sum() >= 2  # the long texts filled the context and were cut


def _pictures() -> list[Image.Image]:
    rng = np.random.default_rng(11)

    def noise(width: int, height: int, channels: int = 3) -> np.ndarray:
        return rng.integers(0, 256, (height, width, channels), dtype=np.uint8)

    rgb = [Image.fromarray(noise(width, height)) for width, height in
           ((1, 1), (7, 300), (300, 7), (225, 224), (224, 225), (41, 33), (447, 300), (64, 64), (31, 33))]
    return rgb + [
        Image.fromarray(noise(50, 37, 4)), Image.fromarray(noise(45, 60, 1)[:, :, 0]),
        Image.fromarray(noise(60, 45)).convert("P"), Image.fromarray(noise(33, 70)).convert("CMYK"),
        Image.fromarray(noise(40, 40, 2)), Image.fromarray(noise(90, 50)).convert("1"),
        Image.fromarray(rng.integers(0, 65535, (30, 52), dtype=np.uint16)),  # 16-bit grey
    ]


@pytest.mark.parametrize("overrides", [
    {},  # ViT-B-32: 224, shortest side, bicubic
    {"size": (32, 32)},  # the tiny test model
    {"size": (48, 64), "interpolation": "bilinear"},  # not square: ResizeKeepRatio, then crop or pad
    {"size": 48, "resize_mode": "longest", "fill_color": 127},
    {"size": (40, 56), "resize_mode": "squash", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)},
])
def test_pixels_match_open_clips_inference_transform(overrides):
    config = {**asdict(PreprocessCfg()), **overrides}
    transform = image_transform_v2(PreprocessCfg(**config), is_train=False)
    prepare = preprocess_make(config)
    for picture in _pictures():
        # Both runtimes read a picture in RGB (open_clip's transform converts after resizing; ours before).
        rgb = picture.convert("RGB")
        width, height = (config["size"], config["size"]) if isinstance(config["size"], int) else config["size"][::-1]
        factor = int(min(rgb.width / width, rgb.height / height))
        # A picture at least twice the input size is box-reduced first, by design (see preprocess_make).
        expected = transform(rgb.reduce(factor) if factor >= 2 else rgb).numpy()
        pixels = prepare(picture)
        assert pixels.dtype == np.float32 and pixels.shape == expected.shape, (picture.mode, picture.size)
        np.testing.assert_array_equal(pixels, expected, err_msg=f"{picture.mode} {picture.size}")
