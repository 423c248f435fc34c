"""Encoder towers exported to ONNX once, kept in MULTIMODAL_ENCODER_CACHE_DIR, and measured against PyTorch.

Two families of models are exported: open_clip's (`OpenClipTowers`) and transformers' CLIP and SigLIP
(``hf:`` names, `HfTowers`). An export lives in a folder of its own, named by the model and a digest of
everything the files depend on (`export_key`: the model name and its weights files, the precision, the
exporter's, the model library's and the runtime's versions, this module's format). When any of those change
the folder's name changes, so the towers are exported again and the stale folder of that model and precision
is removed. int8 and fp16 files are made from the fp32 export. Each export is measured once, when it is made:
the cosine between its vectors and PyTorch fp32's over fixed probe texts and images (mean and min per tower),
kept in its manifest.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import open_clip
import torch
from django.conf import settings
from PIL import Image

from .base import EncoderLoadError
from .open_clip_backend import OpenClipEncoder, files_fingerprint, tokenizer_load, weights_fingerprint
from .runtime import cpu_threads

# Bumped when this module changes what it writes: every cached export is then made again.
EXPORT_FORMAT = 1
OPSET = 18
MANIFEST = "manifest.json"
TOWERS = ("text", "image")
HF_TEXT_INPUTS = ("input_ids", "attention_mask")  # as `HfInputs.text` gives them
# Dynamic quantisation of the matrix products, where the time goes; the patch embedding (a convolution)
# stays fp32: ONNX Runtime's integer convolution is slower on CPUs than its fp32 one. Weights per output
# channel, in 7 bits: on CPUs without VNNI the 8-bit u8*s8 products saturate, and ViT-B-32's image vectors
# then agree with fp32 only to ~0.994 (0.9997 with both).
INT8_OPS = ["MatMul", "Gemm"]
INT8_OPTIONS = {"per_channel": True, "reduce_range": True}
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

    library = "open_clip"
    version = open_clip.__version__

    @staticmethod
    def weights(spec: str) -> str:
        return weights_fingerprint(spec)

    @staticmethod
    def reference(spec: str, device: str) -> OpenClipEncoder:
        return OpenClipEncoder(spec, device=device)

    @staticmethod
    def towers(spec: str, reference: OpenClipEncoder) -> dict[str, TowerExport]:
        text = reference._text
        example = tokenizer_load(spec)(["a photo of a cat", "red"])
        dims = {0: torch.export.Dim("batch")}
        if text.right_sized:
            dims[1] = torch.export.Dim("length", min=2, max=example.shape[1])
            example = example[:, :8]
        height, width = _sides(reference._model.visual.preprocess_cfg["size"])
        return {"text": TowerExport(text, (example,), ["tokens"], dynamic_shapes=(dims,)),
                "image": TowerExport(reference._model.visual, (torch.zeros((2, 3, height, width)),), ["pixels"],
                                     dynamic_shapes=({0: torch.export.Dim("batch")},))}

    @staticmethod
    def manifest(reference: OpenClipEncoder) -> dict:
        return {"preprocess": reference._model.visual.preprocess_cfg, "right_sized": reference._text.right_sized}

    @staticmethod
    def input_side(manifest: dict) -> int:
        return max(_sides(manifest["preprocess"]["size"]))


class HfTowers:
    """transformers CLIP and SigLIP (``hf:ID_OR_DIR``): the text tower from token ids and attention mask, the
    image tower from pixels, exported through TorchScript (transformers' models trace cleanly, in a tenth
    of torch.export's time)."""

    library = "transformers"

    @property
    def version(self) -> str:
        import transformers

        return transformers.__version__

    @staticmethod
    def weights(spec: str) -> str:
        return files_fingerprint(spec, Path(spec.removeprefix("hf:")))

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


def _sides(size) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else tuple(size)


def export_key(spec: str, precision: str) -> dict:
    family = towers_of(spec)
    return {
        "format": EXPORT_FORMAT, "spec": spec, "weights": family.weights(spec), "precision": precision,
        "opset": OPSET, "int8": {"ops": INT8_OPS, **INT8_OPTIONS} if precision == "int8" else None,
        family.library: family.version, "torch": torch.__version__, "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
    }


def export_folder(spec: str, precision: str) -> Path:
    slug = re.sub(r"[^0-9a-zA-Z]+", "-", spec).strip("-").lower()[-60:]
    digest = hashlib.sha256(json.dumps(export_key(spec, precision), sort_keys=True).encode()).hexdigest()[:12]
    return Path(settings.MULTIMODAL_ENCODER_CACHE_DIR) / f"{slug}-{precision}-{digest}"


def manifest_read(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def session_open(path: Path, *, device: str = "cpu") -> ort.InferenceSession:
    """An ONNX Runtime session on ``device``'s provider, with the machine's thread count (intra-op), one
    inter-op thread (a tower is one chain of operators: nothing runs beside it) and every graph fusion.

    Its threads sleep between operators instead of spinning: on a shared 2-core machine a spinning thread
    takes a core from the one doing the work (ViT-B-32 int8, 16 pictures: 1.53 s of CPU without spinning,
    1.82 s with; fp32 2.41 s against 2.91 s; the same vectors).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise EncoderLoadError(f"MULTIMODAL_DEVICE={device}, but this onnxruntime has no CUDA provider "
                                   f"(install onnxruntime-gpu, or run on the cpu)")
        providers = [("CUDAExecutionProvider", {"device_id": int(device.partition(":")[2] or 0)}), "CPUExecutionProvider"]
    return ort.InferenceSession(str(path), options, providers=providers)


def export_ensure(spec: str, precision: str, *, device: str = "cpu", on_step=None) -> Path:
    """The folder holding ``spec``'s towers at ``precision`` (exported now if it is missing or stale)."""
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

        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=INT8_OPS,
                         use_external_data_format=source.stat().st_size > PROTOBUF_LIMIT_BYTES, **INT8_OPTIONS)
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
