"""What an open_clip model reads, made in numpy and Pillow: token ids from texts, pixels from pictures.

Both runtimes prepare inputs here, so an ONNX process never imports torch, torchvision or open_clip.
`ClipTokenizer` is open_clip's `SimpleTokenizer` (OpenAI CLIP's byte-level BPE, MIT licence) over the vocabulary
file open_clip ships, found by path without importing the package. `preprocess_make` is open_clip's inference
transform (`image_transform_v2(cfg, is_train=False)`): torchvision's Resize, CenterCrop and pad on a PIL image
call Pillow's resize, crop and expand, which this calls with the same sizes. tests/encoders/test_clip_inputs.py
checks both against open_clip's own, token for token and pixel for pixel.
"""
import gzip
import html
import importlib.util
import string
from functools import lru_cache
from pathlib import Path
from typing import Callable

import ftfy
import numpy as np
import regex
from PIL import Image, ImageOps

from .base import EncoderLoadError, l2_normalise

# Texts are encoded sorted by length in groups this size, each padded only to its own longest: a group
# of similar lengths wastes little on padding and is still wide enough to keep the cores' vector units busy.
TEXT_GROUP = 16
BPE_FILE = "bpe_simple_vocab_16e6.txt.gz"
BPE_MERGES = 49152 - 256 - 2  # the merges CLIP's vocabulary uses from the file
CLEANERS = ("lower", "whitespace", "canonicalize")


@lru_cache(maxsize=1)
def bpe_path() -> Path:
    """open_clip's vocabulary file, located without running open_clip's __init__ (which imports torch)."""
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderLoadError("open_clip is not installed: its tokeniser vocabulary comes with it")
    return Path(list(spec.submodule_search_locations)[0]) / BPE_FILE


@lru_cache(maxsize=1)
def _byte_letters() -> dict[int, str]:
    """Each byte as a printable character (CLIP's reversible byte-to-unicode table)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    letters = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            letters.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, letters)))


@lru_cache(maxsize=4)
def _vocabulary(special_tokens: tuple[str, ...]) -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    lines = gzip.open(bpe_path()).read().decode("utf-8").split("\n")[1:BPE_MERGES + 1]
    merges = [tuple(line.split()) for line in lines]
    letters = list(_byte_letters().values())
    vocabulary = [*letters, *(letter + "</w>" for letter in letters), *("".join(merge) for merge in merges),
                  *special_tokens]
    return {token: index for index, token in enumerate(vocabulary)}, {merge: rank for rank, merge in enumerate(merges)}


def _clean(text: str, kind: str) -> str:
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    if kind == "canonicalize":
        text = text.replace("_", " ").translate(str.maketrans("", "", string.punctuation)).lower()
        return " ".join(text.split()).strip()
    text = " ".join(text.split()).strip()
    return text.lower() if kind == "lower" else text


class ClipTokenizer:
    """Texts to ``(n, context_length)`` int64 token ids, as open_clip's `SimpleTokenizer` gives them: start token,
    the text's BPE tokens, end token, zeros after; a text too long is cut and ends with the end token."""

    def __init__(self, *, context_length: int = 77, clean: str = "lower", additional_special_tokens=()):
        if clean not in CLEANERS:
            raise EncoderLoadError(f"unknown tokeniser clean function '{clean}'")
        special = ("<start_of_text>", "<end_of_text>", *additional_special_tokens)
        self._ids, self._ranks = _vocabulary(special)
        self._letters = _byte_letters()
        self._cache = {token: token for token in special}
        words = r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
        self._pattern = regex.compile("|".join(special) + words, regex.IGNORECASE)
        self.start_id, self.end_id = self._ids[special[0]], self._ids[special[1]]
        self.context_length = context_length
        self.clean = clean
        self.additional_special_tokens = list(additional_special_tokens)

    def _bpe(self, token: str) -> str:
        if token in self._cache:
            return self._cache[token]
        word = (*token[:-1], token[-1] + "</w>")
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            first, second = min(pairs, key=lambda pair: self._ranks.get(pair, float("inf")))
            if (first, second) not in self._ranks:
                break
            merged, index = [], 0
            while index < len(word):
                if index < len(word) - 1 and word[index] == first and word[index + 1] == second:
                    merged.append(first + second)
                    index += 2
                else:
                    merged.append(word[index])
                    index += 1
            word = tuple(merged)
        self._cache[token] = " ".join(word)
        return self._cache[token]

    def encode(self, text: str) -> list[int]:
        ids = []
        for token in self._pattern.findall(_clean(text, self.clean)):
            letters = "".join(self._letters[byte] for byte in token.encode("utf-8"))
            ids.extend(self._ids[piece] for piece in self._bpe(letters).split(" "))
        return ids

    def __call__(self, texts: list[str]) -> np.ndarray:
        tokens = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.start_id, *self.encode(text), self.end_id]
            if len(ids) > self.context_length:
                ids = ids[:self.context_length]
                ids[-1] = self.end_id
            tokens[row, :len(ids)] = ids
        return tokens

    def describe(self) -> dict:
        """What rebuilds this tokeniser (`tokenizer_from`), for an export's manifest."""
        return {"kind": "clip-bpe", "context_length": self.context_length, "clean": self.clean,
                "additional_special_tokens": self.additional_special_tokens}


def tokenizer_from(description: dict) -> ClipTokenizer:
    return ClipTokenizer(context_length=int(description["context_length"]), clean=description["clean"],
                         additional_special_tokens=tuple(description["additional_special_tokens"]))


def texts_encode(texts: list[str], *, tokenizer, run: Callable[[np.ndarray], np.ndarray], right_sized: bool,
                 dim: int) -> np.ndarray:
    """``(len(texts), dim)`` unit vectors in the texts' order; ``run(token_ids)`` returns a group's features.

    Texts go sorted by length in groups of TEXT_GROUP, each cut to its longest text when ``right_sized``.
    """
    vectors = np.empty((len(texts), dim), dtype=np.float32)
    tokens = np.asarray(tokenizer(list(texts)), dtype=np.int64)
    lengths = tokens.argmax(axis=1) + 1  # through the end-of-text token (the highest id)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), TEXT_GROUP):
        rows = order[start:start + TEXT_GROUP]
        vectors[rows] = run(tokens[rows, :int(lengths[rows].max())] if right_sized else tokens[rows])
    return l2_normalise(vectors)


def image_sides(size) -> tuple[int, int]:
    """(height, width) from open_clip's ``size`` (one int for a square)."""
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def _resized_shortest(image: Image.Image, short_side: int, resample: int) -> Image.Image:
    """torchvision's Resize(int): the shorter side to ``short_side``, the longer scaled and truncated."""
    width, height = image.size
    short, long = min(width, height), max(width, height)
    new_short, new_long = short_side, int(short_side * long / short)
    size = (new_short, new_long) if width <= height else (new_long, new_short)
    return image if size == image.size else image.resize(size, resample)


def _resized_keep_ratio(image: Image.Image, target: tuple[int, int], longest: float, resample: int) -> Image.Image:
    """open_clip's ResizeKeepRatio (from timm) without its random scale and aspect."""
    height, width = image.height, image.width
    ratio_h, ratio_w = height / target[0], width / target[1]
    ratio = max(ratio_h, ratio_w) * longest + min(ratio_h, ratio_w) * (1.0 - longest)
    size = (round(width / ratio), round(height / ratio))
    return image if size == image.size else image.resize(size, resample)


def _center_crop_or_pad(image: Image.Image, target: tuple[int, int], fill: int) -> Image.Image:
    """torchvision's center_crop (fill 0) and open_clip's center_crop_or_pad: pad a short side evenly (the
    extra pixel on the right/bottom), then cut the centre."""
    crop_height, crop_width = target
    if crop_width > image.width or crop_height > image.height:
        left = (crop_width - image.width) // 2 if crop_width > image.width else 0
        top = (crop_height - image.height) // 2 if crop_height > image.height else 0
        right = (crop_width - image.width + 1) // 2 if crop_width > image.width else 0
        bottom = (crop_height - image.height + 1) // 2 if crop_height > image.height else 0
        image = ImageOps.expand(image, border=(left, top, right, bottom), fill=(fill,) * len(image.getbands()))
        if image.size == (crop_width, crop_height):
            return image
    top = int(round((image.height - crop_height) / 2.0))
    left = int(round((image.width - crop_width) / 2.0))
    return image.crop((left, top, left + crop_width, top + crop_height))


def _geometry(config: dict) -> Callable[[Image.Image], Image.Image]:
    """open_clip's inference resize and crop for ``config`` (a PreprocessCfg as a dict), on an RGB picture."""
    target = image_sides(config.get("size", 224))
    resample = Image.BILINEAR if config.get("interpolation", "bicubic") == "bilinear" else Image.BICUBIC
    mode, fill = config.get("resize_mode") or "shortest", int(config.get("fill_color", 0))
    if mode == "longest":
        return lambda image: _center_crop_or_pad(_resized_keep_ratio(image, target, 1.0, resample), target, fill)
    if mode == "squash":
        return lambda image: image if image.size == target[::-1] else image.resize(target[::-1], resample)
    if mode != "shortest":
        raise EncoderLoadError(f"open_clip resize_mode '{mode}' is not supported here")
    if target[0] == target[1]:
        return lambda image: _center_crop_or_pad(_resized_shortest(image, target[0], resample), target, 0)
    # open_clip builds this ResizeKeepRatio with its default (bicubic) interpolation, whatever the config says.
    return lambda image: _center_crop_or_pad(_resized_keep_ratio(image, target, 0.0, Image.BICUBIC), target, 0)


def preprocess_make(preprocess_cfg: dict) -> Callable[[Image.Image], np.ndarray]:
    """The model's own inference transform (resize, crop, to floats, normalise) as a ``(3, H, W)`` float32 array.

    A picture several times the model's input size is first box-averaged by the largest whole factor that
    keeps it at least that size (Pillow's reduce: one pass, no filter), so the bicubic resize that follows
    reads a few times fewer pixels (ingest keeps pictures at up to 1024 px; the model reads 224).
    """
    if preprocess_cfg.get("mode", "RGB") != "RGB":
        raise EncoderLoadError(f"open_clip image mode '{preprocess_cfg['mode']}' is not supported here")
    geometry = _geometry(preprocess_cfg)
    height, width = image_sides(preprocess_cfg.get("size", 224))
    mean = np.asarray(preprocess_cfg["mean"], dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(preprocess_cfg["std"], dtype=np.float32).reshape(-1, 1, 1)

    def prepare(image: Image.Image) -> np.ndarray:
        image = image if image.mode == "RGB" else image.convert("RGB")
        factor = int(min(image.width / width, image.height / height))
        picture = geometry(image.reduce(factor) if factor >= 2 else image)
        pixels = np.asarray(picture, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
        return (pixels - mean) / std

    return prepare


def pixels_prepare(images: list[Image.Image], prepare) -> np.ndarray:
    return np.stack([prepare(image) for image in images])
