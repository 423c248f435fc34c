"""What a person is told when the search page cannot run a query: plain sentences, no field names.

The API and the ``search`` command keep `QueryInvalid`'s own message, which names each field
("page: Ensure this value is less than or equal to 100."): programs need the names. The page shows
`query_error_plain`'s sentences instead, and learns which fields were at fault, so it can offer a
way on (page 1 again, a new search).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from ..errors import UserInputError
from .parse import QueryInvalid

# How the page's controls are named to people (the labels they see), for the problems said generically.
FIELD_LABELS = {
    "q": "Your text", "corpus": "Corpus", "kind": "Kind", "created_from": "The “Added from” date",
    "created_to": "The “to” date", "fusion": "Fusion", "hybrid": "Keyword channel", "group": "Parts of one file",
    "min_score": "Minimum score", "top_k": "Results per page", "page": "The page number", "item": "The example item",
    "text_weight": "The text's weight", "item_weight": "The example item's weight",
}
PART_PREFIX_RE = re.compile(r"^part \d+: ")


@dataclass
class PlainError:
    text: str  # one or more sentences for people
    fields: set[str] = field(default_factory=set)  # the request's fields at fault ("__all__": the whole query)


def query_error_plain(exc: UserInputError) -> PlainError:
    """``exc`` in words for people: a sentence per problem of a `QueryInvalid`; any other error as it is
    (those are written for people already)."""
    if not isinstance(exc, QueryInvalid):
        return PlainError(str(exc))
    sentences = [_sentence(name, error) for name, errors in exc.details.items() for error in errors]
    return PlainError(" ".join(dict.fromkeys(sentences)), set(exc.details))


def _sentence(name: str, error) -> str:
    params, code = error.params or {}, error.code
    message = " ".join(error.messages)
    if name == "parts":
        if code == "malformed":
            return "The search link is damaged: the parts of its query cannot be read. Start a new search."
        return _capitalised(PART_PREFIX_RE.sub("", message))
    if name == "q" and code == "max_length":
        return f"Your text is {params['show_value']:,} characters; the limit is {params['limit_value']:,}."
    if name == "page":
        if code == "max_value":
            return f"There is no page {params['value']:,}: results stop at page {params['limit_value']:,}."
        return "The page number in the address is not a page number."
    if name == "top_k" and code in ("max_value", "min_value"):
        bound = "can be at most" if code == "max_value" else "must be at least"
        return f"Results per page {bound} {params['limit_value']:,}."
    if name in ("created_from", "created_to") and code == "invalid":
        return f"{FIELD_LABELS[name]} is not a date: use a date such as 2025-01-31."
    if code == "date_order":
        return (f"The “Added from” date ({_day(params['created_from'])}) is after the “to” date "
                f"({_day(params['created_to'])}), so nothing can match: change one of them.")
    if code == "empty":
        return "Type what you are looking for, or add an image or a voice recording."
    label = FIELD_LABELS.get(name)
    return f"{label}: {_lowered(message)}" if label else _capitalised(message)


def _day(day: date) -> str:
    return f"{day.day} {day:%b %Y}"


def _capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lowered(text: str) -> str:
    """Django's 'Enter a number.' as it reads after a label: 'enter a number.'"""
    return text[:1].lower() + text[1:] if text[1:2].islower() else text
