"""Splitting long text into passages short enough for a text encoder to see whole.

CLIP reads at most 77 tokens, about 50 English words: the rest of a longer text is invisible to
its vector. ``text_passages`` cuts a text into passages of at most ``max_words`` words, preferring
to end a passage where a paragraph ends, then where a sentence ends, and never inside a word. A
passage cut inside a paragraph shares its last ``overlap_words`` words with the next (moved forward
to a sentence start when one is among them), so a phrase that straddles the cut is whole in one of
the two. Each passage knows its character span in the text, for highlighting it there.

Nothing here touches Django.
"""
import re
from dataclasses import dataclass

_WORD = re.compile(r"\S+")
# A word that ends a sentence: a full stop, question or exclamation mark (or an ellipsis), possibly
# followed by closing quotes or brackets.
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class TextPassage:
    text: str  # the source text's characters [start, end), as they are there
    start: int
    end: int


def text_passages(text: str, *, max_words: int, overlap_words: int) -> list[TextPassage]:
    """``text`` cut into passages of at most ``max_words`` words, in order (see the module's docstring).

    A text of ``max_words`` words or fewer is one passage; a text without words is none.
    ``overlap_words`` is held below ``max_words // 2`` so every passage moves on.
    """
    if max_words < 1:
        raise ValueError("max_words must be at least 1")
    words = [(match.start(), match.end()) for match in _WORD.finditer(text)]
    if not words:
        return []
    overlap_words = max(0, min(overlap_words, max_words // 2))
    # After word i: does a paragraph end there, does a sentence end there?
    paragraph_ends = {index for index in range(len(words) - 1)
                      if _PARAGRAPH_BREAK.search(text, words[index][1], words[index + 1][0])}
    sentence_ends = {index for index, (start, end) in enumerate(words) if _SENTENCE_END.search(text[start:end])}
    passages = []
    first = 0
    while first < len(words):
        last = min(first + max_words, len(words)) - 1  # inclusive
        at_paragraph_end = True
        if last < len(words) - 1:
            last, at_paragraph_end = _cut(first, last, max_words, paragraph_ends, sentence_ends)
        passages.append(TextPassage(text=text[words[first][0]:words[last][1]], start=words[first][0],
                                    end=words[last][1]))
        if last == len(words) - 1:
            break
        next_first = last + 1
        if not at_paragraph_end and overlap_words:
            window = range(max(first + 1, last + 1 - overlap_words), last + 1)
            sentence_starts = [index for index in window if index - 1 in sentence_ends]
            next_first = sentence_starts[0] if sentence_starts else window.start if window else next_first
        first = next_first
    return passages


def _cut(first: int, last: int, max_words: int, paragraph_ends: set[int],
         sentence_ends: set[int]) -> tuple[int, bool]:
    """Where the passage from word ``first`` ends (at most at ``last``), and whether a paragraph ends there.

    The latest paragraph end that leaves the passage at least a quarter full, else the latest
    sentence end that leaves it at least half full, else ``last`` (a sentence longer than a passage).
    """
    for index in range(last, first + max(max_words // 4, 1) - 2, -1):
        if index in paragraph_ends:
            return index, True
    for index in range(last, first + max(max_words // 2, 1) - 2, -1):
        if index in sentence_ends:
            return index, False
    return last, False
