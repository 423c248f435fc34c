"""The contract every speech backend meets, and what a transcription returns."""
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..encoders import EncoderLoadError

SAMPLE_RATE = 16_000


class SpeechLoadError(EncoderLoadError):
    """A configured speech model could not be loaded (bad name, missing weights, no network).

    An EncoderLoadError, so every edge that reports an unavailable model (HTTP 503, a command
    error) reports this one the same way.
    """


@dataclass(frozen=True)
class Word:
    start_s: float
    end_s: float
    text: str  # with its leading space and punctuation, as the model wrote it


@dataclass(frozen=True)
class SpeechSegment:
    """A stretch of speech the model timed: a phrase or sentence, and its words when known."""

    start_s: float
    end_s: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass
class Transcript:
    text: str
    language: str | None  # ISO 639-1 code, or None when the model cannot tell (CTC models)
    duration_s: float  # of the audio that was transcribed
    segments: list[SpeechSegment] = field(default_factory=list)


ProgressCallback = Callable[[float], None]  # seconds of audio transcribed so far


class SpeechModel(Protocol):
    """Turns 16 kHz mono float32 samples into timed text.

    ``transcribe`` returns segments in time order with times in seconds from the first sample,
    within [0, duration]. With ``word_timestamps`` each segment also carries its words (backends
    that cannot time words leave them empty). ``on_progress`` is called now and then with the
    seconds transcribed so far. ``window_s`` is the longest audio one call should be given;
    longer audio is cut into windows by the caller (see `speech.transcribe_blocks`).
    """

    name: str
    window_s: float

    def transcribe(self, samples: np.ndarray, *, word_timestamps: bool = False,
                   on_progress: ProgressCallback | None = None) -> Transcript: ...


def text_join(pieces) -> str:
    """Pieces of transcribed text as one clean string (models put a space before each piece)."""
    return " ".join(" ".join(piece.split()) for piece in pieces if piece and piece.strip())
