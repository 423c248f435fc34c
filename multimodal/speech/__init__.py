"""Speech model registry: a configured name -> a lazily loaded, process-cached speech model.

``get()`` returns the model named by ``settings.MULTIMODAL_SPEECH_MODEL``, loading it on first use
behind a lock and keeping it warm, so a voice query never waits for a model load after the first.
Names resolve in order: names registered with ``register``; ``hf:ID_OR_DIR`` (or a bare
``openai/whisper-*`` id) for Whisper through transformers; ``wav2vec2:ID_OR_DIR`` for a CTC model
through transformers; everything else for faster-whisper (a size name such as ``tiny.en``, a
CTranslate2 model repo id, or a local directory). Request code asks the registry and never
constructs a model.
"""
import threading
from typing import Callable

from django.conf import settings

from .base import SAMPLE_RATE, SpeechLoadError, SpeechModel, SpeechSegment, Transcript, Word
from .windows import transcribe_blocks

__all__ = ["SAMPLE_RATE", "SpeechLoadError", "SpeechModel", "SpeechSegment", "Transcript", "Word", "clear_cache",
           "get", "register", "transcribe_blocks", "unregister"]

_factories: dict[str, Callable[[], SpeechModel]] = {}
_cache: dict[str, SpeechModel] = {}
_lock = threading.Lock()


def register(name: str, factory: Callable[[], SpeechModel]) -> None:
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


def get(name: str | None = None) -> SpeechModel:
    """The speech model for ``name`` (default: the configured one), loading it on first use."""
    name = name or settings.MULTIMODAL_SPEECH_MODEL
    model = _cache.get(name)
    if model is not None:
        return model
    with _lock:
        if name not in _cache:
            _cache[name] = _build(name)
        return _cache[name]


def _build(name: str) -> SpeechModel:
    if name in _factories:
        return _factories[name]()
    device = settings.MULTIMODAL_DEVICE
    language = settings.MULTIMODAL_SPEECH_LANGUAGE or None
    if name.startswith("wav2vec2:"):
        from .transformers_backend import Wav2Vec2Model

        return Wav2Vec2Model(name.removeprefix("wav2vec2:"), device=device)
    if name.startswith("hf:") or name.startswith("openai/whisper-"):
        from .transformers_backend import TransformersWhisperModel

        return TransformersWhisperModel(name.removeprefix("hf:"), device=device, language=language)
    from .faster_whisper_backend import FasterWhisperModel

    return FasterWhisperModel(name, device=device, compute_type=settings.MULTIMODAL_SPEECH_COMPUTE_TYPE,
                              language=language, beam_size=settings.MULTIMODAL_SPEECH_BEAM_SIZE)
