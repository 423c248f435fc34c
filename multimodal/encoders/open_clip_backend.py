"""open_clip models: ``MODEL:PRETRAINED`` tags, checkpoint files, ``hf-hub:`` ids and local dirs.

`OpenClipEncoder` runs the model in PyTorch (the reference runtime); `onnx_backend` runs the same towers,
exported, in ONNX Runtime. Both tokenise and preprocess here, the same way.
"""
from pathlib import Path
from typing import Callable

import numpy as np
import open_clip
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from torchvision import transforms
from PIL import Image

from .base import EncoderLoadError, l2_normalise
from .runtime import REFERENCE

CONFIG_DIR = Path(__file__).parent / "configs"
# Our own configs (tiny test models) join open_clip's registry, so they go through the same door.
open_clip.add_model_config(CONFIG_DIR)
LOCAL_CONFIG_NAMES = {path.stem for path in CONFIG_DIR.glob("*.json")}
RANDOM_INIT_SEED = 0
# Texts are encoded sorted by length in groups this size, each padded only to its own longest: a group
# of similar lengths wastes little on padding and is still wide enough to keep the cores' vector units busy.
TEXT_GROUP = 16


def _parse_spec(spec: str) -> tuple[str, str | None]:
    """Split a spec into open_clip's (model_name, pretrained).

    ``hf-hub:org/repo`` and ``local-dir:/path`` pass through whole; a bare directory becomes
    ``local-dir:``; otherwise ``MODEL:PRETRAINED`` where PRETRAINED is a tag or a checkpoint path,
    or ``random``: the architecture with seeded random weights, for offline speed and memory
    benchmarks at real model size (its rankings are meaningless).
    """
    if spec.startswith(("hf-hub:", "local-dir:")):
        return spec, None
    if Path(spec).is_dir():
        return f"local-dir:{spec}", None
    model_name, _, pretrained = spec.partition(":")
    if not pretrained:
        if model_name not in LOCAL_CONFIG_NAMES:
            raise EncoderLoadError(
                f"CLIP model '{spec}' names no weights: use MODEL:PRETRAINED "
                f"(e.g. ViT-B-32:laion2b_s34b_b79k), a checkpoint path, hf-hub:ORG/REPO or local-dir:PATH"
            )
        return model_name, None
    if pretrained == "random":
        return model_name, None
    return model_name, pretrained


def _load_failed(spec: str, exc: Exception) -> EncoderLoadError:
    return EncoderLoadError(
        f"could not load open_clip model '{spec}': {exc}. Real weights are downloaded on "
        f"first use; offline, point MULTIMODAL_CLIP_MODEL at a local checkpoint or directory."
    )


def model_load(spec: str, *, device: str = "cpu") -> torch.nn.Module:
    """The model ``spec`` names, in eval mode (random-weight specs seeded: every process builds the same)."""
    model_name, pretrained = _parse_spec(spec)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(RANDOM_INIT_SEED)
            model = open_clip.create_model(model_name, pretrained=pretrained, device=device)
    except Exception as exc:  # open_clip raises many types; the user needs one clear message
        raise _load_failed(spec, exc) from exc
    return model.eval()


def tokenizer_load(spec: str):
    try:
        return open_clip.get_tokenizer(_parse_spec(spec)[0])
    except Exception as exc:
        raise _load_failed(spec, exc) from exc


def weights_fingerprint(spec: str) -> str:
    """What identifies ``spec``'s weights: the spec, plus the size and time of the files it points at
    (a checkpoint overwritten in place is new weights); tags and hub ids name fixed releases."""
    model_name, pretrained = _parse_spec(spec)
    if not (pretrained or model_name.startswith("local-dir:")):
        return spec
    return files_fingerprint(spec, Path(pretrained) if pretrained else Path(model_name.removeprefix("local-dir:")))


def files_fingerprint(spec: str, local: Path) -> str:
    """``spec`` plus the name, size and time of each file at ``local`` (a file or a folder), if it exists."""
    if not local.exists():
        return spec
    files = sorted(local.rglob("*")) if local.is_dir() else [local]
    return spec + "".join(f"|{path.name}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
                          for path in files if path.is_file())


class TextTower(torch.nn.Module):
    """The model's text tower, from token ids to (unnormalised) features.

    ``right_sized``: the tower gives the same features on tokens cut after the batch's longest text.
    True for open_clip's own text transformer: its causal mask keeps padding from reaching earlier
    positions, and it pools at the end-of-text token (the highest id, hence argmax), which the cut keeps.
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.right_sized = (isinstance(model, open_clip.CLIP) and model.attn_mask is not None
                            and model.text_pool_type == "argmax")
        self.train(model.training)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        model = self.model
        if not self.right_sized:
            return model.encode_text(tokens)
        length = tokens.shape[1]
        cast_dtype = model.transformer.get_cast_dtype()
        x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
        x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        return model.text_projection(x) if isinstance(model.text_projection, torch.nn.Linear) else x @ model.text_projection


def texts_encode(texts: list[str], *, tokenizer, run: Callable[[np.ndarray], np.ndarray], right_sized: bool,
                 dim: int) -> np.ndarray:
    """``(len(texts), dim)`` unit vectors in the texts' order; ``run(token_ids)`` returns a group's features.

    Texts go sorted by length in groups of TEXT_GROUP, each cut to its longest text when ``right_sized``.
    """
    vectors = np.empty((len(texts), dim), dtype=np.float32)
    tokens = tokenizer(list(texts)).numpy()
    lengths = tokens.argmax(axis=1) + 1  # through the end-of-text token (the highest id)
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), TEXT_GROUP):
        rows = order[start:start + TEXT_GROUP]
        vectors[rows] = run(tokens[rows, :int(lengths[rows].max())] if right_sized else tokens[rows])
    return l2_normalise(vectors)


def preprocess_make(preprocess_cfg: dict) -> Callable[[Image.Image], np.ndarray]:
    """The model's own inference transform (resize, crop, to floats, normalise) as a ``(3, H, W)`` float32 array.

    A picture several times the model's input size is first box-averaged by the largest whole factor that
    keeps it at least that size (Pillow's reduce: one pass, no filter), so the bicubic resize that follows
    reads a few times fewer pixels (ingest keeps pictures at up to 1024 px; the model reads 224). The
    transform's Pillow steps run as they are; its last two (to a tensor, normalise) run in numpy: the same
    arithmetic, without torch's thread pool, which on a busy machine spends ~60 ms an image waking threads
    for 0.6 ms of work.
    """
    config = PreprocessCfg(**preprocess_cfg)
    transform = image_transform_v2(config, is_train=False)
    if [type(step).__name__ for step in transform.transforms[-2:]] != ["MaybeToTensor", "Normalize"]:
        raise EncoderLoadError(f"open_clip's transform changed shape (ends {transform.transforms[-2:]}): "
                               f"update preprocess_make")
    pillow_steps = transforms.Compose(transform.transforms[:-2])
    mean = np.asarray(config.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(config.std, dtype=np.float32)[:, None, None]
    height, width = (config.size, config.size) if isinstance(config.size, int) else config.size

    def prepare(image: Image.Image) -> np.ndarray:
        image = image if image.mode == "RGB" else image.convert("RGB")
        factor = int(min(image.width / width, image.height / height))
        picture = pillow_steps(image.reduce(factor) if factor >= 2 else image)
        pixels = np.asarray(picture, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
        return (pixels - mean) / std

    return prepare


def pixels_prepare(images: list[Image.Image], prepare) -> np.ndarray:
    return np.stack([prepare(image) for image in images])


class OpenClipEncoder:
    """The reference runtime: the model in PyTorch at fp32."""

    runtime = REFERENCE

    def __init__(self, spec: str, *, device: str = "cpu"):
        self._model = model_load(spec, device=device)
        self._text = TextTower(self._model)
        self._prepare = preprocess_make(self._model.visual.preprocess_cfg)
        self._tokenizer = tokenizer_load(spec)
        self.name = f"open_clip:{spec}"
        self.device = device
        with torch.inference_mode():
            self.dim = int(self._model.encode_text(self._tokenizer([""]).to(device)).shape[1])

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        return texts_encode(
            texts, tokenizer=self._tokenizer, right_sized=self._text.right_sized, dim=self.dim,
            run=lambda tokens: self._text(torch.from_numpy(tokens).to(self.device)).float().cpu().numpy(),
        )

    @torch.inference_mode()
    def encode_image(self, images: list[Image.Image]) -> np.ndarray:
        pixels = torch.from_numpy(pixels_prepare(images, self._prepare)).to(self.device)
        return l2_normalise(self._model.encode_image(pixels).float().cpu().numpy())
