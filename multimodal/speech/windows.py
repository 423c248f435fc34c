"""Transcribing audio of any length in bounded windows, cut where the audio is quietest."""
from collections import Counter
from typing import Iterable

import numpy as np

from .base import SAMPLE_RATE, ProgressCallback, SpeechModel, SpeechSegment, Transcript, Word, text_join

FRAME_S = 0.02
# A window ends at the quietest 20 ms of its last few seconds, so a cut rarely splits a word.
CUT_SEARCH_S = 5.0


def transcribe_blocks(model: SpeechModel, blocks: Iterable[np.ndarray], *, window_s: float,
                      word_timestamps: bool = False, on_progress: ProgressCallback | None = None) -> Transcript:
    """One transcript of the audio in ``blocks`` (16 kHz mono float32, in order), times from its start.

    The audio is handed to ``model`` at most ``window_s`` seconds at a time (or the model's own
    ``window_s``, if shorter), so only about one window of samples is held at once.
    """
    window_samples = int(min(window_s, model.window_s) * SAMPLE_RATE)
    pending: list[np.ndarray] = []
    pending_samples = 0
    offset_samples = 0
    segments: list[SpeechSegment] = []
    languages: Counter = Counter()

    def run(samples: np.ndarray) -> None:
        offset_s = offset_samples / SAMPLE_RATE
        progress = (lambda done_s: on_progress(offset_s + done_s)) if on_progress else None
        transcript = model.transcribe(samples, word_timestamps=word_timestamps, on_progress=progress)
        segments.extend(_shifted(segment, offset_s, samples.size / SAMPLE_RATE) for segment in transcript.segments)
        if transcript.language:
            languages[transcript.language] += samples.size
        if on_progress:
            on_progress(offset_s + samples.size / SAMPLE_RATE)

    for block in blocks:
        pending.append(block)
        pending_samples += block.size
        while pending_samples > window_samples:
            buffered = np.concatenate(pending)
            cut = quiet_cut(buffered, window_samples)
            run(buffered[:cut])
            offset_samples += cut
            pending, pending_samples = [buffered[cut:]], buffered.size - cut
    if pending_samples:
        run(np.concatenate(pending))
        offset_samples += pending_samples
    return Transcript(
        text=text_join(segment.text for segment in segments),
        language=languages.most_common(1)[0][0] if languages else None,
        duration_s=offset_samples / SAMPLE_RATE,
        segments=segments,
    )


def quiet_cut(samples: np.ndarray, end: int) -> int:
    """The sample index, at most ``end``, at the quietest 20 ms in the few seconds before ``end``."""
    frame = int(FRAME_S * SAMPLE_RATE)
    search = min(int(CUT_SEARCH_S * SAMPLE_RATE), end // 4) // frame * frame
    if search < frame:
        return end
    region = samples[end - search:end].reshape(-1, frame)
    quietest = int(np.argmin(np.sqrt(np.mean(region ** 2, axis=1))))
    return end - search + quietest * frame + frame // 2


def _shifted(segment: SpeechSegment, offset_s: float, duration_s: float) -> SpeechSegment:
    """``segment`` moved to recording time, its times kept inside the window it came from."""
    def clip(value: float) -> float:
        return offset_s + min(max(value, 0.0), duration_s)

    start_s = clip(segment.start_s)
    words = tuple(Word(clip(word.start_s), max(clip(word.end_s), clip(word.start_s)), word.text) for word in segment.words)
    return SpeechSegment(start_s, max(clip(segment.end_s), start_s), segment.text, words)
