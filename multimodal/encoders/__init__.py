"""Encoder registry: a configured name -> a lazily loaded, process-cached encoder.

``get()`` returns the encoder named by ``settings.MULTIMODAL_CLIP_MODEL``, run by
MULTIMODAL_ENCODER_RUNTIME at MULTIMODAL_ENCODER_PRECISION. Names resolve in order:
names registered with ``register`` (tests add deterministic encoders this way), ``hf:ID_OR_DIR``
for transformers CLIP/SigLIP, and everything else as an open_clip spec (``MODEL:PRETRAINED``,
``MODEL:/path/to/checkpoint.pt``, ``hf-hub:ORG/REPO``, ``local-dir:PATH`` or a bare directory).
Request code asks the registry and never constructs a model.
"""
from django.conf import settings
from django.core.signals import setting_changed

from ..registry import ModelRegistry
from .base import Encoder, EncoderLoadError, l2_normalise
from .runtime import EncoderRuntimeMismatch, RuntimeStamp, configured_runtime, runtime_check, runtime_of

__all__ = ["Encoder", "EncoderLoadError", "EncoderRuntimeMismatch", "RuntimeStamp", "encoder_build", "get", "loaded",
           "register", "unregister", "clear_cache", "l2_normalise", "runtime_check", "runtime_of"]

# Settings that change which encoder a name builds: a cached encoder built under old values is dropped.
_BUILD_SETTINGS = {"MULTIMODAL_ENCODER_RUNTIME", "MULTIMODAL_ENCODER_PRECISION", "MULTIMODAL_DEVICE",
                   "MULTIMODAL_ENCODER_THREADS", "MULTIMODAL_ENCODER_CACHE_DIR"}


def encoder_build(name: str, *, runtime: str, precision: str, on_step=None) -> Encoder:
    """A new encoder for ``name`` on ``runtime`` at ``precision`` (benchmarks compare runtimes this way;
    everything else asks `get`). ``on_step(message)`` hears about a first-use export."""
    device = settings.MULTIMODAL_DEVICE
    if runtime == "onnx":
        from .onnx_backend import onnx_encoder_build

        return onnx_encoder_build(name, precision=precision, device=device, on_step=on_step)
    if name.startswith("hf:"):
        from .transformers_backend import TransformersClipEncoder

        return TransformersClipEncoder(name.removeprefix("hf:"), device=device)
    from .open_clip_backend import OpenClipEncoder

    return OpenClipEncoder(name, device=device)


def _build(name: str) -> Encoder:
    runtime, precision = configured_runtime()
    return encoder_build(name, runtime=runtime, precision=precision)


_registry: ModelRegistry[Encoder] = ModelRegistry(default_name=lambda: settings.MULTIMODAL_CLIP_MODEL, build=_build)
register, unregister, clear_cache, get, loaded = (_registry.register, _registry.unregister, _registry.clear_cache,
                                                 _registry.get, _registry.loaded)


def _runtime_setting_changed(*, setting, **kwargs):
    if setting in _BUILD_SETTINGS:
        clear_cache()


setting_changed.connect(_runtime_setting_changed)
