"""Snippets with the query's words marked, as plain data so every client escapes them itself.

A highlighted snippet is a list of ``{"text": ..., "match": bool}`` pieces whose texts joined give
the snippet. The page wraps matching pieces in ``<mark>`` after escaping; the API returns the list.
Words match whole and case-insensitively, and a query word also matches longer words it begins
("bicycle" marks "bicycles"), the way people read a hit. Function words ("a", "the", "of") are not
marked unless the query holds nothing else: marking every "a" of a transcript hides the real hits.
"""
import re

SNIPPET_CHARS = 280
# Words shorter than this are marked only when they match exactly ("a" does not mark "apple").
PREFIX_MIN_CHARS = 3
_WORD_RE = re.compile(r"\w+")
FUNCTION_WORDS = frozenset(
    "a an and are as at be but by for from has have i in is it its of on or so that the this to was "
    "were what when where which who will with you your".split()
)


def marked_terms(terms: list[str]) -> list[str]:
    """The query words worth marking: without function words, unless that would leave none."""
    content = [term for term in terms if term not in FUNCTION_WORDS]
    return content or terms


def snippet_window(text: str, terms: list[str], limit: int = SNIPPET_CHARS) -> str:
    """At most ``limit`` characters of ``text`` (whitespace collapsed), cut at word boundaries.

    The window starts shortly before the first matching word, so a match deep in a long text is
    shown; with no match it is the start of the text. Ellipses mark the cuts.
    """
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    terms = marked_terms(terms)
    first = next((match.start() for match in _WORD_RE.finditer(flat) if _matches(match.group(), terms)), 0)
    start = max(0, first - limit // 4)
    if start:
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < first else start
    window = flat[start:start + limit]
    if start + limit < len(flat):
        window = window.rsplit(" ", 1)[0] + "…"
    return ("…" if start else "") + window


def highlight_spans(text: str, terms: list[str]) -> list[dict]:
    """``text`` split into pieces, the words matching ``terms`` (see `marked_terms`) marked."""
    terms = marked_terms(terms)
    spans: list[dict] = []
    position = 0
    for match in _WORD_RE.finditer(text):
        if not _matches(match.group(), terms):
            continue
        if match.start() > position:
            spans.append({"text": text[position:match.start()], "match": False})
        spans.append({"text": match.group(), "match": True})
        position = match.end()
    if position < len(text):
        spans.append({"text": text[position:], "match": False})
    return spans


def _matches(word: str, terms: list[str]) -> bool:
    word = word.lower()
    return any(word == term or (len(term) >= PREFIX_MIN_CHARS and word.startswith(term)) for term in terms)
