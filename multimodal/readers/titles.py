"""Short titles people can scan, and Markdown shown as the text it renders to.

A text's title is its heading when it starts with one (a Markdown ``# Heading`` or an underlined
line), else its first sentence, clipped at a word boundary to ``TITLE_CHARS``. Ingest stores it; the page and the API pass titles stored before (a note's whole
first paragraph) through the same `text_title`, so an existing corpus reads the same without a
re-ingest. A part of a recording or video is titled by its recording and its time range
(`part_title`): "talk · 0:07–0:12".
"""
import re
from pathlib import PurePath

from .audio import clock

TITLE_CHARS = 80
MARKDOWN_EXTENSIONS = (".md", ".markdown")

_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+|$)(.*?)(?:[ \t]+#+)?[ \t]*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(?:=+|-+)[ \t]*$")
# Block marks, each pass over the whole text (line by line in Python is ~10x slower on a long note).
_BLOCKS = [
    (re.compile(r"^ {0,3}(?:```|~~~).*\n?", re.M), ""),  # a code fence's line: the code stays
    (re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]+\S.*\n?", re.M), ""),  # a link reference definition
    (re.compile(r"(?<=\S)[ \t]*\n {0,3}(?:=+|-+)[ \t]*$", re.M), ""),  # a heading's underline
    (re.compile(r"^ {0,3}>[ \t]?", re.M), ""),  # a quote's mark
    (re.compile(r"^ {0,3}#{1,6}(?:[ \t]+|$)(.*?)(?:[ \t]+#+)?[ \t]*$", re.M), r"\1"),  # a heading's marks
    (re.compile(r"^([ \t]*)[-*+][ \t]+", re.M), r"\1• "),  # a list item's mark
]
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # an image: its alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # a link: its text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # a reference link: its text
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # an autolink: its address
    (re.compile(r"`+([^`]+?)`+"), r"\1"),  # inline code: the code
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),  # strikethrough
    (re.compile(r"\*(?=\S)(.+?)(?<=\S)\*"), r"\1"),  # emphasis
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # emphasis, never inside snake_case
]
# A sentence ends at . ! ? (closing quotes or brackets may follow) before a space and a capital, digit or quote.
_SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9À-Þ])")
_ABBREVIATIONS = frozenset("mr mrs ms dr st prof sr jr vs etc e.g i.e no fig cf approx".split())


def text_title(text: str, *, fallback: str) -> str:
    """A short title for ``text``: its leading heading, else its first sentence, at most ``TITLE_CHARS``.

    The first sentence is looked for in the first line, or in the first paragraph when that is
    wrapped by hand (its second line goes on in lower case): "Shopping list" over a list stays the
    title, a one-line paragraph gives its first sentence.

    Markdown marks are removed (a title reads as text). A title longer than the limit is cut at a
    word boundary and ends in "…". ``fallback`` (a file name) is the title of a text without words.
    Applying it to its own result changes nothing, so stored titles can be passed through it again.
    """
    lines = text.strip().splitlines()
    if not lines:
        return fallback
    heading = _ATX_HEADING.match(lines[0])
    if heading:
        first = heading.group(1)
    elif len(lines) > 1 and lines[0].strip() and _SETEXT_UNDERLINE.match(lines[1]):
        first = lines[0]
    elif len(lines) > 1 and lines[1][:1].islower():  # a paragraph wrapped by hand: its first sentence
        paragraph = []
        for line in lines:
            if not line.strip():
                break
            paragraph.append(line)
        first = _first_sentence(" ".join(paragraph))
    else:  # a line of its own (a title line, or a whole paragraph on one line)
        first = _first_sentence(lines[0])
    title = " ".join(markdown_plain(first).split())
    return _clip(title) if title else fallback


def part_title(title: str, start_s: float, end_s: float) -> str:
    """A recording's or video's part as people name it: its recording's title and time range."""
    return f"{title} · {clock(start_s)}–{clock(end_s)}"


def is_markdown(name: str) -> bool:
    """Whether a source named ``name`` is Markdown (by its extension)."""
    return PurePath(name).suffix.lower() in MARKDOWN_EXTENSIONS


def markdown_plain(text: str) -> str:
    """``text`` as Markdown renders it, as plain text: no heading marks, emphasis, link syntax or fences.

    Lines stay lines (a heading is still its own line), so callers can cut the result as they
    would the source.
    """
    for pattern, replacement in _BLOCKS + _INLINE:
        text = pattern.sub(replacement, text)
    return text


def _first_sentence(text: str) -> str:
    for end in _SENTENCE_END.finditer(text):
        words = text[:end.start()].split()
        if words and words[-1].lower() not in _ABBREVIATIONS:
            return text[:end.end()]
    return text


def _clip(title: str) -> str:
    if len(title) <= TITLE_CHARS:
        return title
    cut = title[:TITLE_CHARS - 1]  # and the ellipsis: a clipped title is no longer than the limit
    space = cut.rfind(" ")
    if title[len(cut)] != " " and space > TITLE_CHARS // 2:  # not inside a word (unless it is one long word)
        cut = cut[:space]
    return cut.rstrip(" ,;:–—-") + "…"
