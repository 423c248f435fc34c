"""Encoder registry: a configured name -> a lazily loaded, process-cached encoder.

``get()`` returns the encoder named by ``settings.MULTIMODAL_CLIP_MODEL``. Names resolve in order:
names registered with ``register`` (tests add deterministic encoders this way), ``hf:ID_OR_DIR``
for transformers CLIP/SigLIP, and everything else as an open_clip spec (``MODEL:PRETRAINED``,
``MODEL:/path/to/checkpoint.pt``, ``hf-hub:ORG/REPO``, ``local-dir:PATH`` or a bare directory).
Request code asks the registry and never constructs a model.
"""
from django.conf import settings

from ..registry import ModelRegistry
from .base import Encoder, EncoderLoadError, l2_normalise

__all__ = ["Encoder", "EncoderLoadError", "get", "loaded", "register", "unregister", "clear_cache",
           "l2_normalise"]


def _build(name: str) -> Encoder:
    device = settings.MULTIMODAL_DEVICE
    if name.startswith("hf:"):
        from .transformers_backend import TransformersClipEncoder

        return TransformersClipEncoder(name.removeprefix("hf:"), device=device)
    from .open_clip_backend import OpenClipEncoder

    return OpenClipEncoder(name, device=device)


_registry: ModelRegistry[Encoder] = ModelRegistry(default_name=lambda: settings.MULTIMODAL_CLIP_MODEL, build=_build)
register, unregister, clear_cache, get, loaded = (_registry.register, _registry.unregister, _registry.clear_cache,
                                                 _registry.get, _registry.loaded)
