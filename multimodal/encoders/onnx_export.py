"""Encoder towers exported to ONNX, into the folder `onnx_cache` names, and measured against PyTorch.

Two families of models are exported: open_clip's (`OpenClipTowers`) and transformers' CLIP and SigLIP
(``hf:`` names, `HfTowers`). When the export's key changes (`onnx_cache.export_key`) the towers are exported
again and the stale folder of that model and precision is removed. int8 and fp16 files are made from the fp32
export. Each export is measured once, when it is made: the cosine between its vectors and PyTorch fp32's over
fixed probe texts and images (mean and min per tower), kept in its manifest. This module imports torch: it runs
in ``manage.py encoder_export`` (which `onnx_cache.export_ready` starts) or in a benchmark's own process.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from PIL import Image

from . import onnx_cache
from .base import EncoderLoadError
from .clip_inputs import image_sides
from .onnx_cache import MANIFEST, OPSET, export_folder, export_key
from .open_clip_backend import OpenClipEncoder, tokenizer_describe, tokenizer_load

TOWERS = ("text", "image")
HF_TEXT_INPUTS = ("input_ids", "attention_mask")  # as `HfInputs.text` gives them
# One protobuf file holds at most 2 GB; larger towers keep their weights in a side file.
PROTOBUF_LIMIT_BYTES = 1_800_000_000
PROBE_TEXTS = [
    "", "red", "a cat", "a photo of a dog on a beach", "stainless steel kettle 1.7 l with blue led light",
    "men's waterproof hiking boots, brown leather, size 44", "invoice number 2024-118 due in thirty days",
    "the quick brown fox jumps over the lazy dog while the band plays on in the rain",
    "Ergonomic office chair with adjustable lumbar support, breathable mesh back, padded armrests, "
    "tilt lock and a five-star aluminium base with smooth-rolling casters for hard floors and carpet",
    "こんにちは世界", "42", "summer dress floral print",
]
PROBE_IMAGES = 6


@dataclass
class TowerExport:
    """How to export one tower: the module, an example input, the inputs' names and which of their axes vary
    (``dynamic_shapes`` for the dynamo exporter; ``dynamic_axes`` for the TorchScript one)."""

    module: torch.nn.Module
    example: tuple
    input_names: list[str]
    dynamic_shapes: tuple | None = None
    dynamic_axes: dict | None = None


class OpenClipTowers:
    """open_clip models: the text tower from token ids (cut to the batch's longest text when the model allows
    it), the image tower from pixels, exported through torch.export (dynamo)."""

    @staticmethod
    def reference(spec: str, device: str) -> OpenClipEncoder:
        return OpenClipEncoder(spec, device=device)

    @staticmethod
    def towers(spec: str, reference: OpenClipEncoder) -> dict[str, TowerExport]:
        text = reference._text
        example = torch.from_numpy(tokenizer_load(spec)(["a photo of a cat", "red"]))
        dims = {0: torch.export.Dim("batch")}
        if text.right_sized:
            dims[1] = torch.export.Dim("length", min=2, max=example.shape[1])
            example = example[:, :8]
        height, width = image_sides(reference._model.visual.preprocess_cfg["size"])
        return {"text": TowerExport(text, (example,), ["tokens"], dynamic_shapes=(dims,)),
                "image": TowerExport(reference._model.visual, (torch.zeros((2, 3, height, width)),), ["pixels"],
                                     dynamic_shapes=({0: torch.export.Dim("batch")},))}

    @staticmethod
    def manifest(reference: OpenClipEncoder) -> dict:
        return {"preprocess": reference._model.visual.preprocess_cfg, "right_sized": reference._text.right_sized,
                "tokenizer": tokenizer_describe(reference._tokenizer)}

    @staticmethod
    def input_side(manifest: dict) -> int:
        return max(image_sides(manifest["preprocess"]["size"]))


class HfTowers:
    """transformers CLIP and SigLIP (``hf:ID_OR_DIR``): the text tower from token ids and attention mask, the
    image tower from pixels, exported through TorchScript (transformers' models trace cleanly, in a tenth
    of torch.export's time)."""

    @staticmethod
    def reference(spec: str, device: str):
        from .transformers_backend import TransformersClipEncoder

        return TransformersClipEncoder(spec.removeprefix("hf:"), device=device)

    @staticmethod
    def towers(spec: str, reference) -> dict[str, TowerExport]:
        text = reference._inputs.text(["a photo of a cat", "red"])
        varying = {0: "batch", 1: "length"}
        size = reference._model.config.vision_config.image_size
        return {
            "text": TowerExport(reference._text, tuple(torch.from_numpy(text[name]) for name in HF_TEXT_INPUTS),
                                list(HF_TEXT_INPUTS), dynamic_axes={name: varying for name in HF_TEXT_INPUTS}),
            "image": TowerExport(reference._image, (torch.zeros((2, 3, size, size)),), ["pixel_values"],
                                 dynamic_axes={"pixel_values": {0: "batch"}}),
        }

    @staticmethod
    def manifest(reference) -> dict:
        return {"model_type": reference._model.config.model_type,
                "image_size": reference._model.config.vision_config.image_size}

    @staticmethod
    def input_side(manifest: dict) -> int:
        return int(manifest["image_size"])


def towers_of(spec: str):
    """The family that exports ``spec``'s towers."""
    return HfTowers() if spec.startswith("hf:") else OpenClipTowers()


def export_ensure(spec: str, precision: str, *, device: str = "cpu", on_step=None) -> Path:
    """The folder holding ``spec``'s towers at ``precision``, exported in this process now if it is missing or
    stale (processes that encode ask `onnx_cache.export_ready`, which runs this in a child)."""
    folder = export_folder(spec, precision)
    if (folder / MANIFEST).exists():
        return folder
    source = export_ensure(spec, "fp32", device=device, on_step=on_step) if precision != "fp32" else None
    started = time.perf_counter()
    family = towers_of(spec)
    reference = family.reference(spec, "cpu")
    working = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(working, ignore_errors=True)
    working.mkdir(parents=True)
    try:
        manifest = _export_into(working, spec, precision, family, reference, source, device=device, on_step=on_step)
    except BaseException:
        shutil.rmtree(working, ignore_errors=True)
        raise
    manifest["export_s"] = round(time.perf_counter() - started, 2)
    (working / MANIFEST).write_text(json.dumps(manifest, indent=2))
    try:
        working.rename(folder)
    except OSError:  # another process finished the same export first: use its files
        shutil.rmtree(working, ignore_errors=True)
    for stale in folder.parent.glob(f"{folder.name.rsplit('-', 1)[0]}-*"):
        if stale != folder and ".tmp-" not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)
    return folder


def _export_into(working: Path, spec: str, precision: str, family, reference, source: Path | None, *, device: str,
                 on_step) -> dict:
    """Write both towers into ``working`` (exported from ``reference``'s model, or converted from the fp32 files
    in ``source``) and measure them against ``reference``; returns the manifest."""
    towers = family.towers(spec, reference)
    for tower in TOWERS:
        if on_step:
            on_step(f"{'exporting' if source is None else f'converting to {precision}:'} the {tower} tower of {spec}")
        if source is None:
            _tower_export(towers[tower], working / f"{tower}.onnx")
        else:
            _tower_convert(source / f"{tower}.onnx", working / f"{tower}.onnx", precision)
    manifest = {"key": export_key(spec, precision), **family.manifest(reference), "dim": reference.dim}
    from .onnx_backend import onnx_encoder_open

    if on_step:
        on_step(f"measuring the {precision} towers against PyTorch fp32")
    exported = onnx_encoder_open(spec, working, manifest, precision=precision, device=device)
    manifest["agreement"] = _agreement(reference, exported, family.input_side(manifest))
    return manifest


def _tower_export(tower: TowerExport, path: Path) -> None:
    large = sum(parameter.numel() * parameter.element_size()
                for parameter in tower.module.parameters()) > PROTOBUF_LIMIT_BYTES
    dynamo = tower.dynamic_shapes is not None
    options = ({"dynamic_shapes": tower.dynamic_shapes, "optimize": True, "external_data": large} if dynamo
               else {"dynamic_axes": tower.dynamic_axes})
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(tower.module, tower.example, str(path), input_names=tower.input_names,
                          output_names=["features"], opset_version=OPSET, dynamo=dynamo, verbose=False, **options)


def _tower_convert(source: Path, target: Path, precision: str) -> None:
    if precision == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                         op_types_to_quantize=onnx_cache.INT8_OPS,
                         use_external_data_format=source.stat().st_size > PROTOBUF_LIMIT_BYTES,
                         **onnx_cache.INT8_OPTIONS)
    elif precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        # Inputs and outputs stay fp32: callers pass and receive the same arrays at every precision.
        onnx.save(convert_float_to_float16(onnx.load(str(source)), keep_io_types=True), str(target))
    else:
        raise EncoderLoadError(f"unknown precision '{precision}'")


def probe_images(size: int, count: int = PROBE_IMAGES) -> list[Image.Image]:
    """Seeded photo-like pictures, a little larger than the model reads."""
    return photo_like_pictures(count, int(size * 1.5), seed=7)


def photo_like_pictures(count: int, side: int, *, seed: int) -> list[Image.Image]:
    """``count`` different ``side``-pixel squares like photos (smooth colour fields with edges and noise), the same
    for the same seed: export probes here, the encode benchmark's inputs."""
    rng = np.random.default_rng(seed)
    axis = np.linspace(0, 1, side, dtype=np.float32)
    images = []
    for _ in range(count):
        slope = rng.uniform(-150, 150, (2, 3)).astype(np.float32)
        field = rng.uniform(0, 255, 3) + axis[:, None, None] * slope[0] + axis[None, :, None] * slope[1]
        top, left = rng.integers(0, side // 2, 2)
        field[top:top + side // 3, left:left + side // 4] = rng.uniform(0, 255, 3)
        images.append(Image.fromarray(np.clip(field + rng.normal(0, 10, field.shape), 0, 255).astype(np.uint8)))
    return images


def _agreement(reference, exported, side: int) -> dict:
    """{tower: {"mean", "min"}}: cosines between ``exported``'s vectors and ``reference``'s (PyTorch fp32) on the
    probe texts and on probe pictures a little larger than the model's ``side``."""
    images = probe_images(side)
    cosines = {"text": (reference.encode_text(PROBE_TEXTS) * exported.encode_text(PROBE_TEXTS)).sum(axis=1),
               "image": (reference.encode_image(images) * exported.encode_image(images)).sum(axis=1)}
    return {tower: {"mean": float(values.mean()), "min": float(values.min())} for tower, values in cosines.items()}
