"""Speech model registry: a configured name -> a lazily loaded, process-cached speech model.

``get()`` returns the model named by ``settings.MULTIMODAL_SPEECH_MODEL``, loading it on first use
behind a lock and keeping it warm, so a voice query never waits for a model load after the first.
Names resolve in order: names registered with ``register``; ``hf:ID_OR_DIR`` (or a bare
``openai/whisper-*`` id) for Whisper through transformers; ``wav2vec2:ID_OR_DIR`` for a CTC model
through transformers; everything else for faster-whisper (a size name such as ``tiny.en``, a
CTranslate2 model repo id, or a local directory). Request code asks the registry and never
constructs a model.
"""
from django.conf import settings

from ..registry import ModelRegistry
from .base import SAMPLE_RATE, SpeechLoadError, SpeechModel, SpeechSegment, Transcript, Word
from .windows import transcribe_blocks

__all__ = ["SAMPLE_RATE", "SpeechLoadError", "SpeechModel", "SpeechSegment", "Transcript", "Word", "clear_cache",
           "get", "loaded", "register", "transcribe_blocks", "unregister"]


def _build(name: str) -> SpeechModel:
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


_registry: ModelRegistry[SpeechModel] = ModelRegistry(default_name=lambda: settings.MULTIMODAL_SPEECH_MODEL,
                                                      build=_build)
register, unregister, clear_cache, get, loaded = (_registry.register, _registry.unregister, _registry.clear_cache,
                                                 _registry.get, _registry.loaded)
