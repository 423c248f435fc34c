"""Speech to text for the product: spoken queries, and recordings turned into timed passages.

Both use the configured speech model (`multimodal.speech`), loaded once per process and kept warm.
"""
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from django.conf import settings

from .. import speech
from ..readers.audio import AudioError, AudioInfo, AudioReader, audio_decode
from ..speech.segmenting import Passage, passages_split

RecordingProgress = Callable[[float, float | None], None]  # (seconds transcribed, recording length if known)


def voice_transcribe(audio: bytes, *, name: str) -> dict:
    """What a spoken query says: ``{"text", "language", "duration_s", "transcribe_ms", "model"}``.

    ``transcribe_ms`` covers decoding and transcription. Raises AudioError (a UserInputError,
    naming ``name``) for a file that is not usable audio or is longer than
    ``MULTIMODAL_MAX_VOICE_SECONDS``, and SpeechLoadError when the model cannot be loaded.
    """
    model = speech.get()
    started = time.perf_counter()
    try:
        samples, _ = audio_decode(audio, max_duration_s=settings.MULTIMODAL_MAX_VOICE_SECONDS)
    except AudioError as exc:
        raise AudioError(f"{name}: {exc}") from None
    transcript = speech.transcribe_blocks(model, [samples], window_s=settings.MULTIMODAL_SPEECH_WINDOW_SECONDS)
    return {
        "text": transcript.text,
        "language": transcript.language,
        "duration_s": round(transcript.duration_s, 2),
        "transcribe_ms": round((time.perf_counter() - started) * 1000, 1),
        "model": model.name,
    }


@dataclass
class RecordingTranscript:
    transcript: speech.Transcript
    passages: list[Passage]  # what becomes the recording's searchable segments
    info: AudioInfo
    model: str
    transcribe_s: float


def recording_transcribe(source: bytes | Path, *, model_name: str | None = None,
                         on_progress: RecordingProgress | None = None) -> RecordingTranscript:
    """Transcribe a recording (or a video's sound) with timed words and split it into passages.

    The audio is decoded and transcribed window by window, so memory stays bounded however long
    it is. Raises AudioError for a file that is not usable audio or is longer than
    ``MULTIMODAL_MAX_RECORDING_SECONDS``, and SpeechLoadError when the model cannot be loaded.
    """
    model = speech.get(model_name)
    started = time.perf_counter()
    with AudioReader(source, max_duration_s=settings.MULTIMODAL_MAX_RECORDING_SECONDS) as reader:
        total_s = reader.info.duration_s
        transcript = speech.transcribe_blocks(
            model, reader.blocks(), window_s=settings.MULTIMODAL_SPEECH_WINDOW_SECONDS, word_timestamps=True,
            on_progress=(lambda done_s: on_progress(done_s, total_s)) if on_progress else None,
        )
    passages = passages_split(transcript, min_s=settings.MULTIMODAL_SEGMENT_MIN_SECONDS,
                              max_s=settings.MULTIMODAL_SEGMENT_MAX_SECONDS,
                              pause_s=settings.MULTIMODAL_SEGMENT_PAUSE_SECONDS)
    return RecordingTranscript(transcript=transcript, passages=passages, info=reader.info, model=model.name,
                               transcribe_s=time.perf_counter() - started)
