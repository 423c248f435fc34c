"""open_clip models: ``MODEL:PRETRAINED`` tags, checkpoint files, ``hf-hub:`` ids and local dirs."""
from pathlib import Path

import numpy as np
import open_clip
import torch
from PIL import Image

from .base import EncoderLoadError, l2_normalise

CONFIG_DIR = Path(__file__).parent / "configs"
# Our own configs (tiny test models) join open_clip's registry, so they go through the same door.
open_clip.add_model_config(CONFIG_DIR)
LOCAL_CONFIG_NAMES = {path.stem for path in CONFIG_DIR.glob("*.json")}
RANDOM_INIT_SEED = 0


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


class OpenClipEncoder:
    def __init__(self, spec: str, *, device: str = "cpu"):
        model_name, pretrained = _parse_spec(spec)
        try:
            with torch.random.fork_rng():
                # Seeded so random-weight configs give the same vectors in every process.
                torch.manual_seed(RANDOM_INIT_SEED)
                model, _, preprocess = open_clip.create_model_and_transforms(
                    model_name, pretrained=pretrained, device=device
                )
            tokenizer = open_clip.get_tokenizer(model_name)
        except Exception as exc:  # open_clip raises many types; the user needs one clear message
            raise EncoderLoadError(
                f"could not load open_clip model '{spec}': {exc}. Real weights are downloaded on "
                f"first use; offline, point MULTIMODAL_CLIP_MODEL at a local checkpoint or directory."
            ) from exc
        self.name = f"open_clip:{spec}"
        self.device = device
        self._model = model.eval()
        self._preprocess = preprocess
        self._tokenizer = tokenizer
        self.dim = int(self.encode_text([""]).shape[1])

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        tokens = self._tokenizer(list(texts)).to(self.device)
        return l2_normalise(self._model.encode_text(tokens).float().cpu().numpy())

    @torch.inference_mode()
    def encode_image(self, images: list[Image.Image]) -> np.ndarray:
        pixels = torch.stack([self._preprocess(image.convert("RGB")) for image in images]).to(self.device)
        return l2_normalise(self._model.encode_image(pixels).float().cpu().numpy())
