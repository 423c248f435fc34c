"""Hugging Face CLIP and SigLIP models through transformers (a hub id or a local directory)."""
import numpy as np
import torch
from PIL import Image

from .base import EncoderLoadError, l2_normalise


def _features(output) -> torch.Tensor:
    # transformers 5 returns an output object from get_*_features; older versions a tensor.
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class TransformersClipEncoder:
    def __init__(self, model_id: str, *, device: str = "cpu"):
        from transformers import AutoModel, AutoProcessor

        try:
            self._model = AutoModel.from_pretrained(model_id).to(device).eval()
            self._processor = AutoProcessor.from_pretrained(model_id)
        except Exception as exc:
            raise EncoderLoadError(
                f"could not load transformers model '{model_id}': {exc}. Offline, use a local directory "
                f"that holds the model and its processor (save_pretrained)."
            ) from exc
        # SigLIP was trained on fixed-length padded text; CLIP pads to the longest in the batch.
        self._text_padding = "max_length" if "siglip" in self._model.config.model_type else True
        self.name = f"hf:{model_id}"
        self.device = device
        self.dim = int(self.encode_text([""]).shape[1])

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> np.ndarray:
        inputs = self._processor(
            text=list(texts), return_tensors="pt", padding=self._text_padding, truncation=True
        ).to(self.device)
        output = self._model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"))
        return l2_normalise(_features(output).float().cpu().numpy())

    @torch.inference_mode()
    def encode_image(self, images: list[Image.Image]) -> np.ndarray:
        inputs = self._processor(images=[image.convert("RGB") for image in images], return_tensors="pt").to(self.device)
        output = self._model.get_image_features(pixel_values=inputs["pixel_values"])
        return l2_normalise(_features(output).float().cpu().numpy())
