"""The keyword channel: full-text search over titles, texts, specs and product codes.

One selector, two engines: SQLite FTS5 (ranked by bm25) by default, PostgreSQL full-text search
(ranked by a bm25-like sum of matched words' rarity) when the database is PostgreSQL. Both index
what migration 0004 sets up. A query's words are OR-ed (any of them may match; rare ones weigh
most) and the whole phrase counts extra, so an exact product code such as "SKU-0042" ranks its item
first.

The cost of a query is bounded whatever the corpus size. A word matching more than
MAX_RANKED_MATCHES items is a common word: it is left out of a query that has rarer words (its
weight there is next to nothing, yet it was nearly all the work; it still counts inside the
whole-phrase match), and those are ranked by bm25 (SQLite) over their few matches. A query of
common words only asks for the items holding all of them, or, when none does, any of them; at most
the newest MAX_RANKED_MATCHES matches are ranked, by each word's best column and the whole phrase,
not bm25, which would first count every item holding each word (see `_sqlite_common`). Matches are
then kept if the search's filters let them through (each checked by primary key): a filter costs
what the matches cost, not what the corpus holds, and a narrow filter with only common words may
find fewer keyword matches.
"""
import heapq
import re

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import QuerySet

MAX_TERMS = 32
# A word in more items than this is a common word; and at most this many matches of a query are ranked
# (the newest): bm25 reads each match's column sizes and, for the whole phrase, its positions (5-10 µs
# a match in SQLite).
MAX_RANKED_MATCHES = 2_000
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
    common = [_sqlite_term_is_common(term) for term in terms]
    if all(common):
        return _sqlite_common(terms, candidates_sql, candidates_params, limit)
    rare = [term for term, is_common in zip(terms, common) if not is_common]
    phrase = ['"' + " ".join(terms) + '"'] if len(terms) > 1 else []
    weights = ", ".join(str(weight) for weight in COLUMN_WEIGHTS)
    # The newest matches, up to the bound, with their bm25 (the matches of rare words only: few by
    # definition); then each is looked up in the candidates by primary key (see _SQLITE_FILTERED).
    sql = _SQLITE_FILTERED.format(
        matches=f"SELECT rowid AS id, -bm25(multimodal_item_fts, {weights}) AS score FROM multimodal_item_fts "
                f"WHERE multimodal_item_fts MATCH %s ORDER BY rowid DESC LIMIT %s",
        candidates=candidates_sql, order="ORDER BY matches.score DESC, matches.id LIMIT %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [" OR ".join([*(f'"{term}"' for term in rare), *phrase]), MAX_RANKED_MATCHES,
                             *candidates_params, limit])
        return [(int(item_id), float(score)) for item_id, score in cursor.fetchall()]


# A bounded list of matches ("matches": id[, score]) kept if the candidates hold them, each looked up
# by primary key (CROSS JOIN keeps the matches the outer loop). Bounding before the filter keeps a
# selective filter (a spec, a month) from walking every match of a common word. ("MATCH ... AND
# rowid IN (candidates)" instead ran one full-text lookup per candidate, and "id IN (candidates)"
# built a table of every candidate.)
_SQLITE_FILTERED = ("WITH matches AS MATERIALIZED ({matches}) SELECT matches.* FROM matches "
                    "CROSS JOIN ({candidates}) AS candidates ON candidates.id = matches.id {order}")


def _sqlite_common(terms, candidates_sql, candidates_params, limit):
    """A query of common words only: the newest matches holding all of them, else any of them, ranked
    as the PostgreSQL engine ranks them (each word its best column's weight, the whole phrase doubling
    the sum; common words' rarities are all capped alike, so they drop out), newest first among equals.

    Not bm25: FTS5's bm25 first counts every item holding each word of the query, which for a word in
    most of a million items cost 40 ms before the first match was scored. Here each word's columns are
    found by queries that walk the matches' own stretch of the index (rowids from the oldest kept match
    on), combined with the match so FTS5 skips what does not match it.
    """
    every = " AND ".join(f'"{term}"' for term in terms)
    attempts = [(every, True)] + ([(" OR ".join(f'"{term}"' for term in terms), False)] if len(terms) > 1 else [])
    sql = _SQLITE_FILTERED.format(
        matches="SELECT rowid AS id FROM multimodal_item_fts WHERE multimodal_item_fts MATCH %s "
                "ORDER BY rowid DESC LIMIT %s", candidates=candidates_sql, order="")
    title_weight, body_weight, extra_weight = COLUMN_WEIGHTS
    columns = sorted([("title", title_weight), ("body", body_weight), ("extra", extra_weight)], key=lambda c: c[1])
    with connection.cursor() as cursor:
        for match, holds_all in attempts:
            cursor.execute(sql, [match, MAX_RANKED_MATCHES, *candidates_params])
            ids = [item_id for item_id, in cursor.fetchall()]
            if not ids:
                continue
            low = min(ids)

            def rows_matching(expression: str) -> list[int]:
                cursor.execute("SELECT rowid FROM multimodal_item_fts WHERE multimodal_item_fts MATCH %s "
                               "AND rowid >= %s", [f"({expression}) AND ({match})", low])
                return [rowid for rowid, in cursor.fetchall()]

            scores = dict.fromkeys(ids, 0.0)
            for term in terms:
                # Lightest column first, so a heavier one found later overwrites it. When every match holds
                # every word, a word in neither title nor extra is in the body: that column needs no query.
                best = dict.fromkeys(ids, body_weight) if holds_all else {}
                for column, weight in columns:
                    if not (holds_all and weight <= body_weight):
                        best.update((rowid, weight) for rowid in rows_matching(f'{{{column}}} : "{term}"'))
                for rowid, weight in best.items():
                    if rowid in scores:
                        scores[rowid] += weight
            if holds_all and len(terms) > 1:
                for rowid in rows_matching('"' + " ".join(terms) + '"'):
                    if rowid in scores:
                        scores[rowid] *= 2
            return heapq.nlargest(limit, scores.items(), key=lambda entry: (entry[1], entry[0]))
    return []


def _sqlite_term_is_common(term: str) -> bool:
    """Whether ``term`` is in more than MAX_RANKED_MATCHES items (counting stops there)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM (SELECT 1 FROM multimodal_item_fts WHERE multimodal_item_fts MATCH %s "
                       "LIMIT %s)", [f'"{term}"', MAX_RANKED_MATCHES + 1])
        return cursor.fetchone()[0] > MAX_RANKED_MATCHES


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

    A word's document frequency is counted up to MAX_RANKED_MATCHES + 1 (past that it is a common
    word, see the module's docstring), and the item count comes from the planner's statistics once
    the table is large (an exact count(*) of a million rows on every query was most of its time).
    """
    title_weight, body_weight, extra_weight = COLUMN_WEIGHTS
    with connection.cursor() as cursor:
        # The query's words as the index has them: PostgreSQL's parser reads "SKU-0042" as "sku" and
        # "-0042", not as Python's \w+ would.
        cursor.execute("SELECT tsvector_to_array(to_tsvector('simple', %s))", [text])
        lexemes = cursor.fetchone()[0][:MAX_TERMS]
        if not lexemes:
            return []
        frequencies = [_postgres_items_with(cursor, lexeme) for lexeme in lexemes]
        rare = [_tsquery_lexeme(lexeme) for lexeme, items in zip(lexemes, frequencies) if items <= MAX_RANKED_MATCHES]
        if rare:
            matches = [" | ".join(rare)]
        else:  # common words only: the items holding all of them, else any of them (see the module's docstring)
            every = [_tsquery_lexeme(lexeme) for lexeme in lexemes]
            matches = [" & ".join(every), " | ".join(every)] if len(every) > 1 else every
        sql = (
            f"WITH matches AS MATERIALIZED (SELECT multimodal_item.id, "
            f"    tsvector_to_array({POSTGRES_DOCUMENT}) AS words, "
            f"    tsvector_to_array(to_tsvector('simple', {_POSTGRES_TITLE})) AS title_words, "
            f"    tsvector_to_array(to_tsvector('simple', {_POSTGRES_EXTRA})) AS extra_words, "
            f"    {POSTGRES_DOCUMENT} @@ phraseto_tsquery('simple', %s) AS phrase "
            f"  FROM multimodal_item WHERE {POSTGRES_DOCUMENT} @@ %s::tsquery ORDER BY multimodal_item.id DESC LIMIT %s), "
            f"frequencies AS (SELECT word, items FROM unnest(%s::text[], %s::bigint[]) AS counted (word, items) "
            f"  WHERE items > 0), "
            f"total AS (SELECT CASE WHEN reltuples >= 100000 THEN reltuples::bigint "
            f"  ELSE (SELECT count(*) FROM multimodal_item) END AS items "
            f"  FROM pg_class WHERE oid = 'multimodal_item'::regclass) "
            f"SELECT matches.id, "
            f"  sum(ln(1 + greatest(total.items - frequencies.items + 0.5, 0.5) / (frequencies.items + 0.5)) "
            f"  * CASE WHEN frequencies.word = ANY(matches.title_words) THEN {title_weight} "
            f"         WHEN frequencies.word = ANY(matches.extra_words) THEN {extra_weight} ELSE {body_weight} END) "
            f"  * CASE WHEN matches.phrase THEN 2 ELSE 1 END AS score "
            f"FROM matches JOIN ({candidates_sql}) AS candidates ON candidates.id = matches.id "
            f"  JOIN frequencies ON frequencies.word = ANY(matches.words) CROSS JOIN total "
            f"GROUP BY matches.id, matches.phrase ORDER BY score DESC, matches.id LIMIT %s"
        )
        for match in matches:
            cursor.execute(sql, [text, match, MAX_RANKED_MATCHES, lexemes, frequencies, *candidates_params, limit])
            if found := cursor.fetchall():
                return [(int(item_id), float(score)) for item_id, score in found]
        return []


def _postgres_items_with(cursor, lexeme: str) -> int:
    """How many items hold ``lexeme``, counted up to MAX_RANKED_MATCHES + 1."""
    cursor.execute(f"SELECT count(*) FROM (SELECT 1 FROM multimodal_item WHERE {POSTGRES_DOCUMENT} @@ %s::tsquery "
                   f"LIMIT %s) AS found", [_tsquery_lexeme(lexeme), MAX_RANKED_MATCHES + 1])
    return cursor.fetchone()[0]


def _tsquery_lexeme(lexeme: str) -> str:
    """``lexeme`` quoted for tsquery input, so no character in it reads as an operator."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"
