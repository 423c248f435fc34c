"""open_clip models: ``MODEL:PRETRAINED`` tags, checkpoint files, ``hf-hub:`` ids and local dirs.

`OpenClipEncoder` runs the model in PyTorch (the reference runtime); `onnx_backend` runs the same towers,
exported, in ONNX Runtime. Both tokenise and preprocess with `clip_inputs` (numpy and Pillow), the same way.
"""
import numpy as np
import open_clip
import torch
from open_clip import tokenizer as open_clip_tokenizer
from PIL import Image

from .base import EncoderLoadError, l2_normalise
from .clip_inputs import ClipTokenizer, pixels_prepare, preprocess_make, texts_encode
from .open_clip_specs import CONFIG_DIR, spec_parse
from .runtime import REFERENCE

# Our own configs (tiny test models) join open_clip's registry, so they go through the same door.
open_clip.add_model_config(CONFIG_DIR)
RANDOM_INIT_SEED = 0
# Texts whose tokens a `ClipTokenizer` must reproduce before it stands in for open_clip's tokeniser.
TOKENIZER_PROBES = ["", "a photo of a cat", "Café & CRÈME brûlée — 2×€3.50!", "こんにちは世界 😀",
                    "&amp;lt;b&gt; tags", "don't   stop_believing\tnow", "word " * 100]


def _load_failed(spec: str, exc: Exception) -> EncoderLoadError:
    return EncoderLoadError(
        f"could not load open_clip model '{spec}': {exc}. Real weights are downloaded on "
        f"first use; offline, point MULTIMODAL_CLIP_MODEL at a local checkpoint or directory."
    )


def model_load(spec: str, *, device: str = "cpu") -> torch.nn.Module:
    """The model ``spec`` names, in eval mode (random-weight specs seeded: every process builds the same)."""
    model_name, pretrained = spec_parse(spec)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(RANDOM_INIT_SEED)
            model = open_clip.create_model(model_name, pretrained=pretrained, device=device)
    except Exception as exc:  # open_clip raises many types; the user needs one clear message
        raise _load_failed(spec, exc) from exc
    return model.eval()


def tokenizer_load(spec: str):
    """``spec``'s tokeniser, giving numpy token ids: a `ClipTokenizer` (torch-free, and what an ONNX export
    records in its manifest, `tokenizer_describe`) where it gives open_clip's tokens, else open_clip's own."""
    try:
        tokenizer = open_clip.get_tokenizer(spec_parse(spec)[0])
    except Exception as exc:
        raise _load_failed(spec, exc) from exc
    ours = _clip_bpe_equivalent(tokenizer)
    return ours if ours is not None else OpenClipTokenizer(tokenizer)


def tokenizer_describe(tokenizer) -> dict | None:
    """What rebuilds ``tokenizer`` without torch (`clip_inputs.tokenizer_from`), or None: only open_clip has it."""
    return tokenizer.describe() if isinstance(tokenizer, ClipTokenizer) else None


class OpenClipTokenizer:
    """open_clip's tokeniser (a Hugging Face or SigLIP one), giving numpy token ids."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __call__(self, texts: list[str]) -> np.ndarray:
        return self._tokenizer(list(texts)).numpy()


def _clip_bpe_equivalent(tokenizer) -> ClipTokenizer | None:
    if type(tokenizer) is not open_clip_tokenizer.SimpleTokenizer or tokenizer.reduction_fn is not None:
        return None
    cleaners = [name for name in ("lower", "whitespace", "canonicalize")
                if tokenizer.clean_fn is open_clip_tokenizer.get_clean_fn(name)]
    if not cleaners:
        return None
    extra = [tokenizer.decoder[token_id] for token_id in tokenizer.all_special_ids[2:]]
    ours = ClipTokenizer(context_length=tokenizer.context_length, clean=cleaners[0], additional_special_tokens=extra)
    return ours if np.array_equal(ours(TOKENIZER_PROBES), tokenizer(TOKENIZER_PROBES).numpy()) else None


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
            self.dim = int(self._model.encode_text(torch.from_numpy(self._tokenizer([""])).to(device)).shape[1])

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
