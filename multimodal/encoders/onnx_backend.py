"""Encoders run in ONNX Runtime, at fp32, int8 (dynamic quantisation) or fp16 (on a GPU).

The towers come from `onnx_cache` (exported once, by a child process, then loaded from the cache without
building the PyTorch model). Inputs are prepared as the PyTorch encoder prepares them, so the two runtimes see
the same inputs: for open_clip models by `clip_inputs` (numpy and Pillow: an open_clip encoder here imports
neither torch nor open_clip, unless its tokeniser is a Hugging Face or SigLIP one, which only open_clip
builds); for ``hf:`` models by the model's transformers processor (which imports torch).
``runtime`` carries the export's measured agreement with PyTorch fp32.
"""
from pathlib import Path

import numpy as np
from PIL import Image

from .base import EncoderLoadError, l2_normalise
from .clip_inputs import pixels_prepare, preprocess_make, texts_encode, tokenizer_from
from .onnx_cache import export_ready, manifest_read, session_open
from .runtime import RuntimeStamp


def onnx_encoder_build(spec: str, *, precision: str = "fp32", device: str = "cpu", on_step=None):
    """``spec``'s encoder on ONNX Runtime at ``precision``, exported first if it is not in the cache."""
    if precision == "fp16" and not device.startswith("cuda"):
        raise EncoderLoadError("precision fp16 runs on a GPU (MULTIMODAL_DEVICE=cuda); on a CPU use fp32 or int8")
    folder = export_ready(spec, precision, device=device, on_step=on_step)
    manifest = manifest_read(folder)
    encoder = onnx_encoder_open(spec, folder, manifest, precision=precision, device=device)
    encoder.agreement = manifest["agreement"]
    encoder.runtime = RuntimeStamp(runtime="onnx", precision=precision,
                                   agreement=min(tower["min"] for tower in encoder.agreement.values()))
    return encoder


def onnx_encoder_open(spec: str, folder: Path, manifest: dict, *, precision: str, device: str):
    """The encoder over the towers in ``folder`` (its ``runtime`` is set by the caller: the agreement is
    measured with this encoder)."""
    kind = OnnxHfEncoder if spec.startswith("hf:") else OnnxClipEncoder
    return kind(spec, folder, manifest, device=device)


class OnnxClipEncoder:
    """An open_clip model's towers."""

    def __init__(self, spec: str, folder: Path, manifest: dict, *, device: str):
        self._text = export_session(folder, "text", device)
        self._image = export_session(folder, "image", device)
        self._tokenizer = tokenizer_from(manifest["tokenizer"]) if manifest["tokenizer"] else _open_clip_tokenizer(spec)
        self._prepare = preprocess_make(manifest["preprocess"])
        self._right_sized = bool(manifest["right_sized"])
        self.name = f"open_clip:{spec}"
        self.dim = int(manifest["dim"])

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return texts_encode(texts, tokenizer=self._tokenizer, right_sized=self._right_sized, dim=self.dim,
                            run=lambda tokens: self._text.run(None, {"tokens": tokens.astype(np.int64)})[0])

    def encode_image(self, images: list[Image.Image]) -> np.ndarray:
        pixels = pixels_prepare(images, self._prepare)
        return l2_normalise(self._image.run(None, {"pixels": pixels})[0])


def _open_clip_tokenizer(spec: str):
    from .open_clip_backend import tokenizer_load

    return tokenizer_load(spec)


class OnnxHfEncoder:
    """A transformers CLIP or SigLIP model's towers (``hf:ID_OR_DIR``)."""

    def __init__(self, spec: str, folder: Path, manifest: dict, *, device: str):
        from .transformers_backend import HfInputs

        self._text = export_session(folder, "text", device)
        self._image = export_session(folder, "image", device)
        self._inputs = HfInputs(spec.removeprefix("hf:"), manifest["model_type"])
        self.name = spec
        self.dim = int(manifest["dim"])

    def encode_text(self, texts: list[str]) -> np.ndarray:
        return l2_normalise(self._text.run(None, self._inputs.text(texts))[0])

    def encode_image(self, images: list[Image.Image]) -> np.ndarray:
        return l2_normalise(self._image.run(None, {"pixel_values": self._inputs.image(images)})[0])


def export_session(folder, tower: str, device: str):
    try:
        return session_open(folder / f"{tower}.onnx", device=device)
    except EncoderLoadError:
        raise
    except Exception as exc:  # a damaged cache file: say which, so it can be deleted
        raise EncoderLoadError(f"could not open the ONNX export {folder / tower}.onnx: {exc}; delete {folder} "
                               f"to export it again") from exc
