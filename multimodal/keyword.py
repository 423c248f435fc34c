"""The keyword channel: full-text search over titles, texts, specs and product codes.

One selector, two engines: SQLite FTS5 (ranked by bm25) by default, PostgreSQL full-text search
(ranked by a bm25-like sum of matched words' rarity) when the database is PostgreSQL. Both index
what migration 0004 sets up. A query's words are OR-ed (any of them may match; rare ones weigh
most) and the whole phrase counts extra, so an exact product code such as "SKU-0042" ranks its item
first.
"""
import re

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet

MAX_TERMS = 32
# Weights of the columns (title, body, extra) in both engines: a word in the title or a spec counts more.
COLUMN_WEIGHTS = (5.0, 1.0, 3.0)


def keyword_terms(text: str) -> list[str]:
    """The query's words, lower-cased, in order, without duplicates (at most MAX_TERMS)."""
    seen: dict[str, None] = {}
    for word in re.findall(r"\w+", text.lower()):
        seen.setdefault(word, None)
    return list(seen)[:MAX_TERMS]


def keyword_search(text: str, *, items: QuerySet, limit: int) -> list[tuple[int, float]]:
    """(item id, score) of the items in ``items`` matching ``text``, best first; higher is better."""
    terms = keyword_terms(text)
    if not terms or limit <= 0:
        return []
    try:
        candidates_sql, candidates_params = items.order_by().values("id").query.sql_with_params()
    except EmptyResultSet:  # a filter no item can pass (e.g. a spec value no product has)
        return []
    if connection.vendor == "postgresql":
        return _postgres(text, candidates_sql, candidates_params, limit)
    return _sqlite(terms, candidates_sql, candidates_params, limit)


def _sqlite(terms, candidates_sql, candidates_params, limit):
    alternatives = [f'"{term}"' for term in terms]
    if len(terms) > 1:
        alternatives.append('"' + " ".join(terms) + '"')
    weights = ", ".join(str(weight) for weight in COLUMN_WEIGHTS)
    # The matches are materialised first and filtered after: with "MATCH ... AND rowid IN (...)"
    # SQLite runs one full-text lookup per candidate id (1.3 s for 10k items instead of 9 ms).
    sql = (
        f"WITH matches AS MATERIALIZED (SELECT rowid AS id, -bm25(multimodal_item_fts, {weights}) AS score "
        f"FROM multimodal_item_fts WHERE multimodal_item_fts MATCH %s) "
        f"SELECT id, score FROM matches WHERE id IN ({candidates_sql}) ORDER BY score DESC, id LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [" OR ".join(alternatives), *candidates_params, limit])
        return [(int(item_id), float(score)) for item_id, score in cursor.fetchall()]


# PostgreSQL's text search parser, as the index (migration 0004) reads each item, and its columns
# as the SQLite index has them (title, body, extra), each for its weight.
_POSTGRES_TITLE = "title"
_POSTGRES_EXTRA = "coalesce(metadata->>'specs_text', '') || ' ' || external_id"
POSTGRES_DOCUMENT = f"to_tsvector('simple', {_POSTGRES_TITLE} || ' ' || text || ' ' || {_POSTGRES_EXTRA})"


def _postgres(text, candidates_sql, candidates_params, limit):
    """Rare words weigh most, as with bm25: each matched word scores its inverse document frequency
    times the weight of the best column it is in (COLUMN_WEIGHTS: title, body, extra), and an
    item holding the whole query as a phrase scores double. (ts_rank alone counts every word alike,
    so "garden chair Kjaerholm" put forty garden-chair notes level with the one Kjaerholm.)
    """
    title_weight, body_weight, extra_weight = COLUMN_WEIGHTS
    with connection.cursor() as cursor:
        # The query's words as the index has them: PostgreSQL's parser reads "SKU-0042" as "sku" and
        # "-0042", not as Python's \w+ would.
        cursor.execute("SELECT tsvector_to_array(to_tsvector('simple', %s))", [text])
        lexemes = cursor.fetchone()[0][:MAX_TERMS]
        if not lexemes:
            return []
        any_word = " | ".join(_tsquery_lexeme(lexeme) for lexeme in lexemes)
        sql = (
            f"WITH matches AS MATERIALIZED (SELECT id, tsvector_to_array({POSTGRES_DOCUMENT}) AS words, "
            f"    tsvector_to_array(to_tsvector('simple', {_POSTGRES_TITLE})) AS title_words, "
            f"    tsvector_to_array(to_tsvector('simple', {_POSTGRES_EXTRA})) AS extra_words, "
            f"    {POSTGRES_DOCUMENT} @@ phraseto_tsquery('simple', %s) AS phrase "
            f"  FROM multimodal_item WHERE {POSTGRES_DOCUMENT} @@ %s::tsquery), "
            f"frequencies AS (SELECT word, count(*) AS items FROM matches, unnest(words) AS word "
            f"  WHERE word = ANY(%s) GROUP BY word), "
            f"total AS (SELECT count(*) AS items FROM multimodal_item) "
            f"SELECT matches.id, sum(ln(1 + (total.items - frequencies.items + 0.5) / (frequencies.items + 0.5)) "
            f"  * CASE WHEN frequencies.word = ANY(matches.title_words) THEN {title_weight} "
            f"         WHEN frequencies.word = ANY(matches.extra_words) THEN {extra_weight} ELSE {body_weight} END) "
            f"  * CASE WHEN matches.phrase THEN 2 ELSE 1 END AS score "
            f"FROM matches JOIN frequencies ON frequencies.word = ANY(matches.words) CROSS JOIN total "
            f"WHERE matches.id IN ({candidates_sql}) "
            f"GROUP BY matches.id, matches.phrase ORDER BY score DESC, matches.id LIMIT %s"
        )
        cursor.execute(sql, [text, any_word, lexemes, *candidates_params, limit])
        return [(int(item_id), float(score)) for item_id, score in cursor.fetchall()]


def _tsquery_lexeme(lexeme: str) -> str:
    """``lexeme`` quoted for tsquery input, so no character in it reads as an operator."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"
