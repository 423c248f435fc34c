"""A query's filters (`SearchFilters`) in the two forms the search needs, written once here.

`filters_where` is the vector store's filter (each engine turns `store.VectorFilter` into its own
expression); `filters_items` is the same filter as a database query of items, for the keyword
channel and for a spec filter's matching ids. Both exclude the query's example items.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time as day_time, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL

from .. import store
from ..errors import QueryError
from ..models import PARENT_KINDS, Item
from .types import SearchQuery


def filters_where(query: SearchQuery) -> store.VectorFilter:
    """The vector store's filter for ``query``; a spec filter becomes the ids of the items it matches
    (QueryError past ``MULTIMODAL_MAX_FILTER_ITEMS`` of them)."""
    filters = query.filters
    where = store.VectorFilter(
        corpus_ids=[corpus.pk for corpus in filters.corpora] or None,
        kinds=list(filters.kinds) or None,
        created_from=_day_start(filters.created_from),
        created_to=_day_after(filters.created_to),
        exclude_item_ids=[part.item.pk for part in query.parts if part.item is not None] or None,
        modalities=list(filters.modalities) or None,
    )
    if not filters.specs:
        return where
    limit = settings.MULTIMODAL_MAX_FILTER_ITEMS
    item_ids = list(filters_items(query, where).values_list("pk", flat=True)[:limit + 1])
    if len(item_ids) > limit:
        raise QueryError(f"the spec filter matches more than {limit:,} items; add a corpus or another spec to narrow it")
    return replace(where, item_ids=item_ids)


def filters_items(query: SearchQuery, where: store.VectorFilter, *, item_by_item: bool = False) -> QuerySet:
    """The items ``where`` (from `filters_where`, maybe narrowed to some corpora) and the query's specs let through.

    Recordings, videos and documents are left out: they are searched through their children and have no vectors
    of their own. ``item_by_item`` is for a caller that only asks whether a bounded number of given items pass
    (the keyword channel): each item's specs are then looked up by index, where otherwise the database reads
    every item having the specs, which grows with the corpus (40 ms for two specs at a million items).
    """
    items = Item.objects.all()
    if where.corpus_ids is not None:
        items = items.filter(corpus_id__in=where.corpus_ids)
    if where.kinds is not None:
        items = items.filter(kind__in=where.kinds)
    if where.created_from is not None:
        items = items.filter(created_at__gte=datetime.fromtimestamp(where.created_from, dt_timezone.utc))
    if where.created_to is not None:
        items = items.filter(created_at__lt=datetime.fromtimestamp(where.created_to, dt_timezone.utc))
    if query.filters.specs and item_by_item:
        items = items.filter(_spec_held(query.filters.specs))
    elif query.filters.specs:  # the same items as where.item_ids, without sending their ids back to the database
        items = items.filter(pk__in=_spec_items(query.filters.specs))
    if where.exclude_item_ids:
        items = items.exclude(pk__in=where.exclude_item_ids)
    return items.exclude(kind__in=PARENT_KINDS)


def _spec_items(specs: dict[str, str]) -> RawSQL:
    """Ids of the items having every spec name = value (values compared case-insensitively).

    Looked up in the spec index that migration 0006 keeps (name, lower-cased value, item id), not
    in each item's JSON: that read every item. The name is only ever a name, never a lookup: "max__load"
    or "colour__regex" are spec names like any other.
    """
    lookup = "SELECT item_id FROM multimodal_item_spec WHERE name = %s AND value = lower(%s)"
    return RawSQL(" INTERSECT ".join([lookup] * len(specs)), [text for spec in specs.items() for text in spec])


def _spec_held(specs: dict[str, str]) -> RawSQL:
    """Whether an item has every spec name = value: one index seek per spec (see `_spec_items`)."""
    held = ("EXISTS (SELECT 1 FROM multimodal_item_spec WHERE name = %s AND value = lower(%s) "
            "AND item_id = multimodal_item.id)")
    return RawSQL(" AND ".join([held] * len(specs)), [text for spec in specs.items() for text in spec],
                  output_field=BooleanField())


def _day_start(day: date | None) -> int | None:
    if day is None:
        return None
    return int(datetime.combine(day, day_time.min, tzinfo=dt_timezone.utc).timestamp())


def _day_after(day: date | None) -> int | None:
    """Where an inclusive ``created_to`` ends: the next day's start; None (no end) for the last day there is."""
    if day is None or day == date.max:
        return None
    return _day_start(day + timedelta(days=1))
