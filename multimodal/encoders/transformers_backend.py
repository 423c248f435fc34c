"""Hugging Face CLIP and SigLIP models through transformers (a hub id or a local directory).

`TransformersClipEncoder` runs the model in PyTorch (the reference runtime); `onnx_backend` runs its towers,
exported (`HfTextTower`, `HfImageTower`), in ONNX Runtime. Both prepare inputs here (`HfInputs`), the same way.
"""
import numpy as np
import torch
from PIL import Image

from .base import EncoderLoadError, l2_normalise
from .runtime import REFERENCE


def _features(output) -> torch.Tensor:
    # transformers 5 returns an output object from get_*_features; older versions a tensor.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _load_failed(model_id: str, exc: Exception) -> EncoderLoadError:
    return EncoderLoadError(f"could not load transformers model '{model_id}': {exc}. Offline, use a local directory "
                            f"that holds the model and its processor (save_pretrained).")


def model_load(model_id: str, *, device: str = "cpu") -> torch.nn.Module:
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(model_id).to(device).eval()
    except Exception as exc:
        raise _load_failed(model_id, exc) from exc


class HfInputs:
    """The model's processor, giving numpy arrays: token ids with their attention mask, and pixels."""

    def __init__(self, model_id: str, model_type: str):
        from transformers import AutoProcessor

        try:
            self._processor = AutoProcessor.from_pretrained(model_id)
        except Exception as exc:
            raise _load_failed(model_id, exc) from exc
        # SigLIP was trained on fixed-length padded text; CLIP pads to the longest in the batch.
        self._text_padding = "max_length" if "siglip" in model_type else True

    def text(self, texts: list[str]) -> dict[str, np.ndarray]:
        """``input_ids`` and ``attention_mask`` (all ones where the processor gives none, as SigLIP's), int64."""
        inputs = self._processor(text=list(texts), return_tensors="np", padding=self._text_padding, truncation=True)
        ids = inputs["input_ids"].astype(np.int64)
        mask = inputs.get("attention_mask")
        return {"input_ids": ids, "attention_mask": np.ones_like(ids) if mask is None else mask.astype(np.int64)}

    def image(self, images: list[Image.Image]) -> np.ndarray:
        pixels = self._processor(images=[image.convert("RGB") for image in images], return_tensors="np")["pixel_values"]
        return pixels.astype(np.float32)


class HfTextTower(torch.nn.Module):
    """Token ids and attention mask to (unnormalised) text features."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return _features(self.model.get_text_features(input_ids=input_ids, attention_mask=attention_mask))


class HfImageTower(torch.nn.Module):
    """Pixels to (unnormalised) image features."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return _features(self.model.get_image_features(pixel_values=pixel_values))


class TransformersClipEncoder:
    """The reference runtime for transformers models: the model in PyTorch at fp32."""

    runtime = REFERENCE

    def __init__(self, model_id: str, *, device: str = "cpu"):
        self._model = model_load(model_id, device=device)
        self._inputs = HfInputs(model_id, self._model.config.model_type)
        self._text, self._image = HfTextTower(self._model), HfImageTower(self._model)
        self.name = f"hf:{model_id}"
        self.device = device
        self.dim = int(self.encode_text([""]).shape[1])

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        inputs = {name: torch.from_numpy(array).to(self.device) for name, array in self._inputs.text(texts).items()}
        return l2_normalise(self._text(**inputs).float().cpu().numpy())

    @torch.inference_mode()
    def encode_image(self, images: list[Image.Image]) -> np.ndarray:
        pixels = torch.from_numpy(self._inputs.image(images)).to(self.device)
        return l2_normalise(self._image(pixels).float().cpu().numpy())
