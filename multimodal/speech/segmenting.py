"""Splitting a timed transcript into the passages that become searchable segments."""
from dataclasses import dataclass

from .base import Transcript, Word, text_join

SENTENCE_ENDS = (".", "?", "!", "…", "。", "？", "！")
# Playback starts a little before the first word (and runs a little past the last), so word
# timings that are a fraction late do not clip the speech.
PADDING_S = 0.2


@dataclass(frozen=True)
class Passage:
    start_s: float
    end_s: float
    text: str


def passages_split(transcript: Transcript, *, min_s: float, max_s: float, pause_s: float) -> list[Passage]:
    """The transcript as passages in time order, each ending at a sentence end once it is at least
    ``min_s`` long, at any pause of ``pause_s`` or more, and before it would grow past ``max_s``.

    Timed words are used where the model gave them, else its segments. Passages do not overlap.
    """
    pieces = [
        word
        for segment in transcript.segments
        for word in (segment.words or (Word(segment.start_s, segment.end_s, segment.text),))
        if word.text.strip()
    ]
    groups: list[list[Word]] = []
    for piece in pieces:
        current = groups[-1] if groups else None
        if current is None or _ends_before(current, piece, min_s=min_s, max_s=max_s, pause_s=pause_s):
            groups.append([piece])
        else:
            current.append(piece)
    passages = []
    for index, group in enumerate(groups):
        previous_end_s = groups[index - 1][-1].end_s if index else 0.0
        next_start_s = groups[index + 1][0].start_s if index + 1 < len(groups) else transcript.duration_s
        passages.append(Passage(
            start_s=round(max(group[0].start_s - PADDING_S, (previous_end_s + group[0].start_s) / 2, 0.0), 2),
            end_s=round(min(group[-1].end_s + PADDING_S, (group[-1].end_s + next_start_s) / 2,
                            max(transcript.duration_s, group[-1].end_s)), 2),
            text=text_join(piece.text for piece in group),
        ))
    return passages


def _ends_before(current: list[Word], piece: Word, *, min_s: float, max_s: float, pause_s: float) -> bool:
    """Whether the passage ``current`` is complete, so ``piece`` starts the next one."""
    last = current[-1]
    length_s = last.end_s - current[0].start_s
    if piece.start_s - last.end_s >= pause_s or piece.end_s - current[0].start_s > max_s:
        return True
    return last.text.rstrip().endswith(SENTENCE_ENDS) and length_s >= min_s
