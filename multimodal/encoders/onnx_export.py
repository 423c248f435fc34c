"""open_clip towers exported to ONNX once, kept in MULTIMODAL_ENCODER_CACHE_DIR, and measured against PyTorch.

An export lives in a folder of its own, named by the model and a digest of everything the files depend
on (`export_key`: the model spec and its weights files, the precision, the exporter's and the runtime's
versions, this module's format). When any of those change the folder's name changes, so the towers
are exported again and the stale folder of that model and precision is removed. int8 and fp16 files are
made from the fp32 export. Each export is measured once, when it is made: the cosine between its vectors
and PyTorch fp32's over fixed probe texts and images (mean and min per tower), kept in its manifest.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import open_clip
import torch
from django.conf import settings
from PIL import Image

from .base import EncoderLoadError, l2_normalise
from .open_clip_backend import TextTower, model_load, pixels_prepare, preprocess_make, texts_encode, tokenizer_load, \
    weights_fingerprint
from .runtime import cpu_threads

# Bumped when this module changes what it writes: every cached export is then made again.
EXPORT_FORMAT = 1
OPSET = 18
MANIFEST = "manifest.json"
TOWERS = ("text", "image")
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


def export_key(spec: str, precision: str) -> dict:
    return {
        "format": EXPORT_FORMAT, "spec": spec, "weights": weights_fingerprint(spec), "precision": precision,
        "opset": OPSET, "int8": {"ops": INT8_OPS, **INT8_OPTIONS} if precision == "int8" else None, "open_clip": open_clip.__version__,
        "torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": ort.__version__,
    }


def export_folder(spec: str, precision: str) -> Path:
    slug = re.sub(r"[^0-9a-zA-Z]+", "-", spec).strip("-").lower()[-60:]
    digest = hashlib.sha256(json.dumps(export_key(spec, precision), sort_keys=True).encode()).hexdigest()[:12]
    return Path(settings.MULTIMODAL_ENCODER_CACHE_DIR) / f"{slug}-{precision}-{digest}"


def manifest_read(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def session_open(path: Path, *, device: str = "cpu") -> ort.InferenceSession:
    """An ONNX Runtime session on ``device``'s provider, with the machine's thread count (intra-op), one
    inter-op thread (a tower is one chain of operators: nothing runs beside it) and every graph fusion."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
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
    model = model_load(spec)
    working = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(working, ignore_errors=True)
    working.mkdir(parents=True)
    try:
        manifest = _export_into(working, spec, precision, model, source, device=device, on_step=on_step)
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


def _export_into(working: Path, spec: str, precision: str, model, source: Path | None, *, device: str,
                 on_step) -> dict:
    """Write both towers into ``working`` (exported from ``model``, or converted from the fp32 files in
    ``source``) and measure them; returns the manifest."""
    text = TextTower(model)
    for tower in TOWERS:
        if on_step:
            on_step(f"{'exporting' if source is None else f'converting to {precision}:'} the {tower} tower of {spec}")
        if source is None:
            _tower_export(text if tower == "text" else model.visual, tower, working / f"{tower}.onnx", spec, model)
        else:
            _tower_convert(source / f"{tower}.onnx", working / f"{tower}.onnx", precision)
    manifest = {"key": export_key(spec, precision), "preprocess": model.visual.preprocess_cfg,
                "right_sized": text.right_sized}
    manifest["agreement"], manifest["dim"] = _agreement(spec, model, text, working, manifest, device=device)
    return manifest


def _tower_export(tower: torch.nn.Module, name: str, path: Path, spec: str, model: torch.nn.Module) -> None:
    if name == "text":
        example = tokenizer_load(spec)(["a photo of a cat", "red"])
        dims = {0: torch.export.Dim("batch")}
        if tower.right_sized:
            dims[1] = torch.export.Dim("length", min=2, max=example.shape[1])
            example = example[:, :8]
        input_name = "tokens"
    else:
        size = model.visual.preprocess_cfg["size"]
        height, width = (size, size) if isinstance(size, int) else size
        example = torch.zeros((2, 3, height, width))
        dims = {0: torch.export.Dim("batch")}
        input_name = "pixels"
    large = sum(parameter.numel() * parameter.element_size() for parameter in tower.parameters()) > PROTOBUF_LIMIT_BYTES
    with torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(tower, (example,), str(path), input_names=[input_name], output_names=["features"],
                          dynamic_shapes=(dims,), opset_version=OPSET, dynamo=True, optimize=True,
                          external_data=large, verbose=False)


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


def _agreement(spec: str, model, text: TextTower, folder: Path, manifest: dict, *, device: str) -> tuple[dict, int]:
    """{tower: {"mean", "min"}} cosines between the export's vectors and PyTorch fp32's on the probes; the dim."""
    tokenizer = tokenizer_load(spec)
    prepare = preprocess_make(manifest["preprocess"])
    size = manifest["preprocess"]["size"]
    images = probe_images(size if isinstance(size, int) else max(size))
    sessions = {tower: session_open(folder / f"{tower}.onnx", device=device) for tower in TOWERS}
    with torch.inference_mode():
        reference_text = texts_encode(PROBE_TEXTS, tokenizer=tokenizer, right_sized=text.right_sized,
                                      dim=_dim(model, tokenizer),
                                      run=lambda tokens: text(torch.from_numpy(tokens)).float().numpy())
        reference_image = l2_normalise(model.visual(torch.from_numpy(pixels_prepare(images, prepare))).float().numpy())
    exported_text = texts_encode(PROBE_TEXTS, tokenizer=tokenizer, right_sized=text.right_sized,
                                 dim=reference_text.shape[1],
                                 run=lambda tokens: sessions["text"].run(None, {"tokens": tokens.astype(np.int64)})[0])
    exported_image = l2_normalise(sessions["image"].run(None, {"pixels": pixels_prepare(images, prepare)})[0])
    cosines = {"text": (reference_text * exported_text).sum(axis=1),
               "image": (reference_image * exported_image).sum(axis=1)}
    return ({tower: {"mean": float(values.mean()), "min": float(values.min())} for tower, values in cosines.items()},
            int(reference_text.shape[1]))


def _dim(model, tokenizer) -> int:
    return int(model.encode_text(tokenizer([""])).shape[1])
