"""Saved searches: a person names the search in front of them and comes back later to what is new in it.

A saved search keeps the search page's URL parameters (`web.search_links`: the text, parts, example items,
filters and options), so opening it is that search page. They are checked by `query_parse` when saved and each
time the search runs: an item or corpus it names may be gone since, and it then says why it cannot run.

Images and recordings added in the page are kept only for the browser session that added them
(`services.query_uploads`), and a program's base64 file would make an address no browser can open: a search
holding one cannot be saved, and the person is told to remove it (its words, items, filters and options can be).

"New" is per person (`SavedSearchVisit`): what was ingested after their last opening, compared by item id (ids
only grow). The saved list counts the new items the search's filters let through (one per document, recording,
video or long text when the search groups its parts, as the page does by default); "what's new" is those of them
that rank in the search's top ``MULTIMODAL_SAVED_SEARCH_TOP_N`` now. Only staff share a search with every
signed-in person; only its owner renames, deletes or renews its feed token.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..errors import UserInputError
from ..models import Item, SavedSearch, SavedSearchVisit, feed_token_new
from ..query.filters import filters_items, filters_where
from ..query.json_input import json_parse
from ..query.parse import query_parse, unknown_names_message
from ..query.parts import UPLOAD_TYPES
from ..query.types import SearchQuery
from ..selectors import search_response
from ..web.search_links import FILTER_PARAMS, QUERY_PARAMS

SAVED_PARAMS = (*QUERY_PARAMS, *FILTER_PARAMS)  # what a search page URL holds; a saved search opens at its page 1
NAME_MAX_CHARS = 100


class SavedSearchInvalid(UserInputError):
    """The search or its name cannot be saved; the message says why."""


def saved_searches_visible(*, user) -> QuerySet[SavedSearch]:
    """The saved searches ``user`` may see and run: their own and the shared ones (none for anonymous visitors)."""
    if not (user.is_authenticated and user.is_active):
        return SavedSearch.objects.none()
    return SavedSearch.objects.filter(Q(owner=user) | Q(shared=True)).select_related("owner")


def saved_search_params_clean(params: Mapping) -> dict[str, str]:
    """``params`` as a search page URL holds them (strings; ``parts`` as JSON), checked: known names only, no
    uploaded image or recording, and a query `query_parse` can read. SavedSearchInvalid or QueryInvalid if not."""
    unknown = set(params) - set(SAVED_PARAMS) - {"page"}
    if unknown:
        raise SavedSearchInvalid(unknown_names_message(unknown, SAVED_PARAMS))
    cleaned = {name: _param_text(name, params[name]) for name in SAVED_PARAMS if params.get(name) not in (None, "")}
    _uploads_refuse(cleaned.get("parts"))
    query_parse(cleaned)
    return cleaned


def _param_text(name: str, value) -> str:
    """One parameter as the URL holds it: lists of parts as JSON, lists of names joined by commas."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if name == "parts" and isinstance(value, (list, tuple)):
        return json.dumps(list(value), separators=(",", ":"))
    if isinstance(value, (list, tuple)):
        return ",".join(str(entry) for entry in value)
    return str(value)


def _uploads_refuse(parts_json: str | None) -> None:
    try:
        parts = json_parse(parts_json) if parts_json else []
    except ValueError:
        return  # query_parse says what is wrong with it
    for index, part in enumerate(parts if isinstance(parts, list) else []):
        if isinstance(part, dict) and part.get("type") in UPLOAD_TYPES:
            what = "an image" if part["type"] == "image" else "a recording"
            raise SavedSearchInvalid(
                f"part {index} is {what} added to the search: images and recordings are kept only for the browser "
                f"session that added them, so a saved search cannot hold them. Remove it, then save the rest "
                f"(words, example items, filters)"
            )


def _name_clean(name: str) -> str:
    name = " ".join(str(name or "").split())
    if not name:
        raise SavedSearchInvalid("give the saved search a name")
    if len(name) > NAME_MAX_CHARS:
        raise SavedSearchInvalid(f"the name is {len(name)} characters; the limit is {NAME_MAX_CHARS}")
    return name


def _newest_item_id() -> int:
    return Item.objects.aggregate(newest=Max("pk"))["newest"] or 0


@transaction.atomic
def saved_search_create(*, owner, name: str, params: Mapping, shared: bool = False) -> SavedSearch:
    """``owner``'s new saved search of the search ``params`` (`saved_search_params_clean`), seen by them as of now.

    SavedSearchInvalid for a bad name, one they already use, or past ``MULTIMODAL_MAX_SAVED_SEARCHES``;
    PermissionDenied if ``shared`` and they are not staff.
    """
    name = _name_clean(name)
    cleaned = saved_search_params_clean(params)
    if shared:
        _share_check(owner)
    limit = settings.MULTIMODAL_MAX_SAVED_SEARCHES
    if SavedSearch.objects.filter(owner=owner).count() >= limit:
        raise SavedSearchInvalid(f"you have {limit} saved searches, the most one person keeps: delete one first")
    newest = _newest_item_id()
    try:
        with transaction.atomic():
            saved = SavedSearch.objects.create(owner=owner, name=name, params=cleaned, shared=shared,
                                               saved_after_item_id=newest)
    except IntegrityError:
        raise SavedSearchInvalid(f"you already have a saved search named “{name}”: choose another name") from None
    SavedSearchVisit.objects.create(saved_search=saved, user=owner, opened_at=timezone.now(), seen_up_to_item_id=newest)
    return saved


def saved_search_rename(*, saved: SavedSearch, user, name: str) -> SavedSearch:
    _owner_check(saved, user, "rename")
    saved.name = _name_clean(name)
    if SavedSearch.objects.filter(owner=saved.owner, name=saved.name).exclude(pk=saved.pk).exists():
        raise SavedSearchInvalid(f"you already have a saved search named “{saved.name}”: choose another name")
    saved.save(update_fields=["name", "updated_at"])
    return saved


def saved_search_share(*, saved: SavedSearch, user, shared: bool) -> SavedSearch:
    """Share ``saved`` with every signed-in person, or stop: its owner, and only if they are staff."""
    _owner_check(saved, user, "share")
    _share_check(user)
    saved.shared = shared
    saved.save(update_fields=["shared", "updated_at"])
    return saved


def saved_search_delete(*, saved: SavedSearch, user) -> None:
    _owner_check(saved, user, "delete")
    saved.delete()


def saved_search_feed_token_renew(*, saved: SavedSearch, user) -> str:
    """A new feed token: the feed's old address stops working."""
    _owner_check(saved, user, "renew the feed address of")
    saved.feed_token = feed_token_new()
    saved.save(update_fields=["feed_token", "updated_at"])
    return saved.feed_token


def _owner_check(saved: SavedSearch, user, action: str) -> None:
    if saved.owner_id != user.pk:
        raise PermissionDenied(f"only its owner, {saved.owner.get_username()}, may {action} “{saved.name}”")


def _share_check(user) -> None:
    if not user.is_staff:
        raise PermissionDenied("only staff may share a saved search with everyone")


def saved_search_query(*, saved: SavedSearch) -> SearchQuery:
    """The saved search as a query, read again now (QueryInvalid if what it names has gone)."""
    return query_parse(saved.params)


def saved_search_open(*, saved: SavedSearch, user) -> SavedSearchVisit:
    """``user`` opens ``saved`` (or marks what is new in it as seen): nothing ingested until now is new to them."""
    visit, _ = SavedSearchVisit.objects.update_or_create(
        saved_search=saved, user=user,
        defaults={"opened_at": timezone.now(), "seen_up_to_item_id": _newest_item_id()},
    )
    return visit


def saved_search_last_visit(*, saved: SavedSearch, user) -> tuple[int, datetime | None]:
    """The newest item ``user`` had when they last opened ``saved``, and when; a shared search they never
    opened counts from when it was saved (``None``: never opened)."""
    visit = SavedSearchVisit.objects.filter(saved_search=saved, user=user).first() if user.is_authenticated else None
    if visit is None:
        return saved.saved_after_item_id, None
    return visit.seen_up_to_item_id, visit.opened_at


def saved_search_new_count(*, saved: SavedSearch, user) -> int:
    """How many items the search's filters let through were ingested since ``user`` last opened it.

    One per document, recording, video or long text when the search groups their parts; UserInputError if
    the search cannot run any more.
    """
    since_item_id, _ = saved_search_last_visit(saved=saved, user=user)
    query = saved_search_query(saved=saved)
    items = filters_items(query, filters_where(query)).filter(pk__gt=since_item_id)
    if query.group:
        return items.annotate(result=Coalesce("parent_id", "pk")).values("result").distinct().count()
    return items.count()


def saved_search_whats_new(*, saved: SavedSearch, since_item_id: int) -> dict:
    """The search's response (`selectors.search_response`, the same shape as the API's) keeping only the
    results ingested after item ``since_item_id`` among its top ``MULTIMODAL_SAVED_SEARCH_TOP_N``, best first."""
    query = saved_search_query(saved=saved)
    query.top_k = min(settings.MULTIMODAL_SAVED_SEARCH_TOP_N, settings.MULTIMODAL_MAX_TOP_K)
    query.page = 1
    response = search_response(query=query)
    results = [result for result in response["results"] if result["id"] > since_item_id]
    weak = sum((result.get("relevance") or {}).get("label") == "weak" for result in results)
    return {
        **response,
        "results": results,
        "page": {**response["page"], "has_more": False, "total": len(results), "total_is_lower_bound": False},
        "match": {"good": len(results) - weak, "weak": weak},
    }


def saved_search_summary(*, saved: SavedSearch, user) -> dict:
    """What the saved list and the API show of ``saved`` to ``user``: its new items' count, or why it cannot run."""
    _, opened_at = saved_search_last_visit(saved=saved, user=user)
    new_count, error = None, None
    try:
        new_count = saved_search_new_count(saved=saved, user=user)
    except UserInputError as exc:
        error = str(exc)
    return {
        "id": saved.pk,
        "name": saved.name,
        "params": saved.params,
        "shared": saved.shared,
        "owner": saved.owner.get_username(),
        "mine": saved.owner_id == user.pk,
        "created_at": saved.created_at.isoformat(),
        "last_opened_at": opened_at.isoformat() if opened_at else None,
        "new_count": new_count,
        "error": error,
    }
