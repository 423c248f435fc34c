"""Why a result matched, in plain sentences for people ("Matches your picture strongly.").

The numbers behind them (fusion mode, weights, similarities, contributions) stay in the result's
``explanation`` for the technically minded; these sentences say the same without them, from the
result's `relevance.Judgement` and the query's words found in the item's title, text or details.
"""
from __future__ import annotations

import re

from .relevance import Judgement

HOW = {"strong": "strongly", "fair": "fairly well", "weak": "only weakly"}


def part_named(part) -> str:
    """A query part as a sentence names it: "your words “red bicycle”", "your picture"."""
    if part.type == "image":
        return "your picture"
    if part.type == "voice":
        return f"what you said (“{part.text}”)" if part.text else "what you said"
    if part.type == "item":
        return f"“{part.item.title}”" if part.item is not None else "the example you chose"
    return f"your words “{part.text}”"


def explanation_sentences(judgement: Judgement | None, parts: list, *, terms: list[str],
                          fields: dict[str, str]) -> list[str]:
    """Plain sentences on why a result is where it is.

    ``parts`` are the query's parts (`query.types.QueryPart`), indexed as the judgement's sources
    ("part 2") name them; ``terms`` the words the keyword channel looked for (empty when it was off);
    ``fields`` the item's texts by what people call them ({"title": ..., "text": ..., "details": ...}).
    """
    sentences = []
    if judgement is not None:
        for judged in judgement.parts:
            if judged.z is None or not judged.source.startswith("part "):
                continue
            named = part_named(parts[int(judged.source.split()[1])])
            if judged.weight > 0:
                sentences.append(f"Matches {named} {HOW[judged.label]}.")
            elif judged.label == "weak":
                sentences.append(f"Looks unlike {named}, which you marked “less like this”.")
            else:
                sentences.append(f"Resembles {named}, which you marked “less like this”, so it is ranked lower.")
    sentences.extend(_words_found(terms, fields))
    if judgement is not None and not judgement.good and judgement.z is not None:
        sentences.append("It is hardly closer to your query than the rest of the collection.")
    return sentences


def _words_found(terms: list[str], fields: dict[str, str]) -> list[str]:
    """"The word ‘moon’ is in the title.": each query word, once, in the first field that holds it."""
    sentences, said = [], set()
    for where, text in fields.items():
        words = set(re.findall(r"\w+", (text or "").lower()))
        found = [term for term in terms if term in words and term not in said]
        if not found:
            continue
        said.update(found)
        quoted = [f"‘{term}’" for term in found]
        listed = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
        sentences.append(f"The word{'s' if len(found) > 1 else ''} {listed} {'are' if len(found) > 1 else 'is'} "
                         f"in the {where}.")
    return sentences
