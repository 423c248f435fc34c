"""The API's saved searches: list, create, get, delete, see what's new in one and mark it seen.

Each person's own (and the shared ones, read-only to all but their owner), for a session or an API token of any
active user. The rules are `services.saved_searches`'; what's new has the same shape as a search's response.
"""
from django.urls import reverse
from ninja import Router
from ninja.errors import HttpError

from ..models import SavedSearch
from ..services.saved_searches import (
    saved_search_create, saved_search_delete, saved_search_last_visit, saved_search_open, saved_search_summary,
    saved_search_whats_new, saved_searches_visible,
)
from . import api_schemas as schemas
from .api_auth import PersonSession, PersonToken
from .saved_views import saved_links
from .throttling import SearchRateThrottle

router = Router(auth=[PersonToken(), PersonSession()], tags=["saved searches"])
ERRORS = {401: schemas.Error, 429: schemas.Error}


def _get(request, pk: int) -> SavedSearch:
    saved = saved_searches_visible(user=request.user).filter(pk=pk).first()
    if saved is None:  # another person's private search is not there for this caller either
        raise HttpError(404, f"you have no saved search with id {pk}")
    return saved


def _out(request, saved: SavedSearch) -> dict:
    links = saved_links(saved)
    return {**saved_search_summary(saved=saved, user=request.user), "search_url": links["search_url"],
            "whats_new_url": reverse("api:saved-search-whats-new", args=[saved.pk]),
            "feed_url": request.build_absolute_uri(links["feed_url"])}


@router.get("", response={200: list[schemas.SavedSearchOut], **ERRORS},
            summary="Your saved searches and the shared ones")
def saved_searches_list(request):
    """Each with the count of items ingested since you last opened it."""
    return [_out(request, saved) for saved in saved_searches_visible(user=request.user)]


@router.post("", response={201: schemas.SavedSearchOut, 400: schemas.Error, 403: schemas.Error, **ERRORS},
             summary="Save a search under a name")
def saved_search_create_endpoint(request, body: schemas.SavedSearchIn):
    """400 if the search cannot run, holds an uploaded image or recording, or the name is taken; what exists
    now counts as seen. A session must send the CSRF token."""
    saved = saved_search_create(owner=request.user, name=body.name, params=body.params, shared=body.shared)
    return 201, _out(request, saved)


@router.get("/{pk}", response={200: schemas.SavedSearchOut, 404: schemas.Error, **ERRORS}, url_name="saved-search",
            summary="One saved search")
def saved_search_get(request, pk: int):
    return _out(request, _get(request, pk))


@router.delete("/{pk}", response={204: None, 403: schemas.Error, 404: schemas.Error, **ERRORS},
               summary="Delete a saved search of yours (403 for a shared one of another's)")
def saved_search_delete_endpoint(request, pk: int):
    saved_search_delete(saved=_get(request, pk), user=request.user)
    return 204, None


@router.get("/{pk}/new", response={200: schemas.WhatsNew, 400: schemas.Error, 404: schemas.Error, 503: schemas.Error,
                                   **ERRORS},
            exclude_unset=True, throttle=[SearchRateThrottle()], url_name="saved-search-whats-new",
            summary="What's new: items ingested since you last opened it that rank in its top N")
def saved_search_whats_new_endpoint(request, pk: int):
    """The search's response (as POST /api/search's) keeping only items ingested since your last opening among
    its top ``MULTIMODAL_SAVED_SEARCH_TOP_N`` results. Reading it marks nothing as seen (POST .../seen does)."""
    saved = _get(request, pk)
    since_item_id, opened_at = saved_search_last_visit(saved=saved, user=request.user)
    response = saved_search_whats_new(saved=saved, since_item_id=since_item_id)
    return {**response, "saved_search": _out(request, saved), "since": opened_at.isoformat() if opened_at else None}


@router.post("/{pk}/seen", response={200: schemas.SavedSearchOut, 404: schemas.Error, **ERRORS},
             summary="Mark what is new in it as seen (as opening it in the page does)")
def saved_search_seen_endpoint(request, pk: int):
    saved = _get(request, pk)
    saved_search_open(saved=saved, user=request.user)
    return _out(request, saved)
