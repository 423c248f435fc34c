"""Where an encoder's ONNX export lives, opening it, and making it in a process of its own when it is missing.

An export lives in a folder of MULTIMODAL_ENCODER_CACHE_DIR named by the model and a digest of everything the
files depend on (`export_key`: the model name and its weights files, the precision, the exporter's, the model
library's and the runtime's versions, the export's format). When any of those change the folder's name changes,
so the towers are exported again. Nothing here imports torch: a process that only encodes finds and opens the
files; the export itself (`onnx_export`, which needs torch and, for ViT-B-32, ~3.5 GB at its peak) runs in
``manage.py encoder_export``, started by `export_ready` when the folder is missing, so the memory it takes is
given back when it ends.
"""
import fcntl
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

import onnxruntime as ort
from django.conf import settings

from .base import EncoderLoadError
from .open_clip_specs import files_fingerprint, weights_fingerprint
from .runtime import cpu_threads

logger = logging.getLogger(__name__)

# Bumped when `onnx_export` changes what it writes: every cached export is then made again.
# 2: the manifest records the tokeniser (ONNX processes tokenise without open_clip).
EXPORT_FORMAT = 2
OPSET = 18
MANIFEST = "manifest.json"
# Dynamic quantisation of the matrix products, where the time goes; the patch embedding (a convolution)
# stays fp32: ONNX Runtime's integer convolution is slower on CPUs than its fp32 one. Weights per output
# channel, in 7 bits: on CPUs without VNNI the 8-bit u8*s8 products saturate, and ViT-B-32's image vectors
# then agree with fp32 only to ~0.994 (0.9997 with both).
INT8_OPS = ["MatMul", "Gemm"]
INT8_OPTIONS = {"per_channel": True, "reduce_range": True}
# Error lines of a failed export shown to the user (the rest is in the log).
ERROR_TAIL_LINES = 3


def _version(distribution: str) -> str:
    """An installed distribution's version, read from its metadata (importing torch to ask costs ~0.5 GB)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def export_key(spec: str, precision: str) -> dict:
    """Everything an export's files depend on (its folder is named by a digest of this)."""
    if spec.startswith("hf:"):
        library, weights = {"transformers": _version("transformers")}, files_fingerprint(spec, Path(spec[3:]))
    else:
        library, weights = {"open_clip": _version("open_clip_torch")}, weights_fingerprint(spec)
    return {
        "format": EXPORT_FORMAT, "spec": spec, "weights": weights, "precision": precision,
        "opset": OPSET, "int8": {"ops": INT8_OPS, **INT8_OPTIONS} if precision == "int8" else None,
        **library, "torch": _version("torch"), "onnx": _version("onnx"), "onnxruntime": ort.__version__,
    }


def export_folder(spec: str, precision: str, cache_dir: Path | None = None) -> Path:
    slug = re.sub(r"[^0-9a-zA-Z]+", "-", spec).strip("-").lower()[-60:]
    digest = hashlib.sha256(json.dumps(export_key(spec, precision), sort_keys=True).encode()).hexdigest()[:12]
    return Path(cache_dir or settings.MULTIMODAL_ENCODER_CACHE_DIR) / f"{slug}-{precision}-{digest}"


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


def export_command(spec: str, precision: str, *, device: str) -> list[str]:
    """The command that makes ``spec``'s export at ``precision`` into the configured cache."""
    return [sys.executable, "-m", "django", "encoder_export", spec, "--precision", precision, "--device", device,
            "--cache-dir", str(settings.MULTIMODAL_ENCODER_CACHE_DIR)]


def export_ready(spec: str, precision: str, *, device: str = "cpu", on_step=None) -> Path:
    """The folder holding ``spec``'s towers at ``precision``; a missing one is exported first, by `export_command`
    in a child process (its progress lines go to ``on_step`` and the log). Processes of this machine that need
    the same export at once (the site and a worker starting together) wait for one child rather than each run
    their own. Raises EncoderLoadError naming the cause when the export fails."""
    folder = export_folder(spec, precision)
    if (folder / MANIFEST).exists():
        return folder
    with open(export_lock_path(folder), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / MANIFEST).exists():  # else another process made it while this one waited
            _export_in_child(spec, precision, folder, device=device, on_step=on_step)
    return folder


def export_lock_path(folder: Path) -> Path:
    """The file whose lock one exporting process holds for ``folder``. It lives with the system's temporary files:
    the cache folder may not exist yet, or not be writable (the export then says so)."""
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"multimodal-encoder-export-{digest}.lock"


def _export_in_child(spec: str, precision: str, folder: Path, *, device: str, on_step) -> None:
    command = export_command(spec, precision, device=device)
    logger.info("exporting %s to ONNX (%s) in a child process: %s", spec, precision, " ".join(command[1:]))
    environment = dict(os.environ)
    if settings.SETTINGS_MODULE:  # else (settings configured in code) the environment names it
        environment["DJANGO_SETTINGS_MODULE"] = settings.SETTINGS_MODULE
    with tempfile.TemporaryFile(mode="w+") as errors:
        child = subprocess.Popen(command, cwd=settings.BASE_DIR, env=environment, stdout=subprocess.PIPE,
                                 stderr=errors, text=True)
        for line in child.stdout:
            logger.info("encoder_export: %s", line.rstrip())
            if on_step:
                on_step(line.rstrip())
        returncode = child.wait()
        errors.seek(0)
        error_lines = [line for line in errors.read().splitlines() if line.strip()]
    if returncode != 0 or not (folder / MANIFEST).exists():
        raise EncoderLoadError(_export_failure(spec, precision, command, returncode, error_lines))


def _export_failure(spec: str, precision: str, command: list[str], returncode: int, error_lines: list[str]) -> str:
    if returncode < 0:
        cause = f"it was killed by signal {-returncode}" + (" (out of memory?)" if returncode == -9 else "")
    elif error_lines:
        cause = " / ".join(line.strip() for line in error_lines[-ERROR_TAIL_LINES:])
    else:
        cause = f"it exited with status {returncode} and wrote no export"
    if error_lines:
        logger.error("encoder_export failed:\n%s", "\n".join(error_lines))
    return (f"exporting {spec} to ONNX ({precision}) failed: {cause}. The export runs as "
            f"`manage.py {' '.join(command[3:])}`; run it to see all of its output")
