"""Encoder registry: a configured name -> a lazily loaded, process-cached encoder.

``get()`` returns the encoder named by ``settings.MULTIMODAL_CLIP_MODEL``. Names resolve in order:
names registered with ``register`` (tests add deterministic encoders this way), ``hf:ID_OR_DIR``
for transformers CLIP/SigLIP, and everything else as an open_clip spec (``MODEL:PRETRAINED``,
``MODEL:/path/to/checkpoint.pt``, ``hf-hub:ORG/REPO``, ``local-dir:PATH`` or a bare directory).
Request code asks the registry and never constructs a model.
"""
import threading
from typing import Callable

from django.conf import settings

from .base import Encoder, EncoderLoadError, l2_normalise

__all__ = ["Encoder", "EncoderLoadError", "get", "register", "unregister", "clear_cache", "l2_normalise"]

_factories: dict[str, Callable[[], Encoder]] = {}
_cache: dict[str, Encoder] = {}
_lock = threading.Lock()


def register(name: str, factory: Callable[[], Encoder]) -> None:
    """Make ``name`` resolve to ``factory()`` (called once per process, on first use)."""
    with _lock:
        _factories[name] = factory
        _cache.pop(name, None)


def unregister(name: str) -> None:
    with _lock:
        _factories.pop(name, None)
        _cache.pop(name, None)


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def get(name: str | None = None) -> Encoder:
    """The encoder for ``name`` (default: the configured one), loading it on first use."""
    name = name or settings.MULTIMODAL_CLIP_MODEL
    encoder = _cache.get(name)
    if encoder is not None:
        return encoder
    with _lock:
        if name not in _cache:
            _cache[name] = _build(name)
        return _cache[name]


def _build(name: str) -> Encoder:
    if name in _factories:
        return _factories[name]()
    device = settings.MULTIMODAL_DEVICE
    if name.startswith("hf:"):
        from .transformers_backend import TransformersClipEncoder

        return TransformersClipEncoder(name.removeprefix("hf:"), device=device)
    from .open_clip_backend import OpenClipEncoder

    return OpenClipEncoder(name, device=device)
