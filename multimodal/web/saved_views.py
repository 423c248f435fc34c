"""The saved searches pages: save the search on screen, list them with what is new, open one, see what is new,
rename, share (staff), delete; and each one's Atom feed. Thin: the rules are `services.saved_searches`'.

Pages are for signed-in people (others are sent to log in). A feed is read by a feed reader, which has no
session: it is found by the secret token in its address, for private and shared searches alike (shared means
with the site's signed-in people, not with the world), and without the right token there is no such feed (404).
Its owner renews the token to cut off an address that leaked. The feed lists what came after the search was
saved, not after the last visit: a feed reader keeps its own read state, and opening the page must not empty it.
"""
import logging
import secrets

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.syndication.views import Feed
from django.http import Http404, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.views.decorators.http import require_POST, require_safe

from .. import store
from ..encoders import EncoderLoadError
from ..errors import UserInputError
from ..models import Item, SavedSearch
from ..services.saved_searches import (
    saved_search_create, saved_search_delete, saved_search_feed_token_renew, saved_search_last_visit,
    saved_search_open, saved_search_rename, saved_search_share, saved_search_summary, saved_search_whats_new,
    saved_searches_visible,
)
from .search_links import query_parts_listed, results_linked, search_params, search_url

logger = logging.getLogger(__name__)
signed_in = login_required(login_url="admin:login")


def _visible_get(request, pk: int) -> SavedSearch:
    return get_object_or_404(saved_searches_visible(user=request.user), pk=pk)


def saved_links(saved: SavedSearch) -> dict:
    """Where a saved search leads: its search page (as it opens), what's new, and its feed (with its token)."""
    return {
        "search_url": search_url(saved.params),
        "open_url": reverse("multimodal:saved-open", args=[saved.pk]),
        "whats_new_url": reverse("multimodal:saved-whats-new", args=[saved.pk]),
        "feed_url": f"{reverse('multimodal:saved-feed', args=[saved.pk])}?token={saved.feed_token}",
    }


def _described(params: dict) -> str:
    """The search in a line: its words and parts, then the corpus and kind it is narrowed to."""
    pieces = [f"“{params['q']}”"] if params.get("q") else []
    pieces += [part["label"] for part in query_parts_listed(params, uploads={})]
    narrowed = [f"{name} {params[name]}" for name in ("corpus", "kind") if params.get(name)]
    return " + ".join(pieces) + (f" · {', '.join(narrowed)}" if narrowed else "")


@signed_in
@require_POST
def saved_create(request):
    """Save the search whose query string the results page sent (``search``) under ``name``."""
    params = search_params(QueryDict(request.POST.get("search", "")))
    params.pop("page", None)
    try:
        saved = saved_search_create(owner=request.user, name=request.POST.get("name", ""), params=params)
    except UserInputError as exc:
        messages.error(request, f"The search was not saved: {exc}.")
        return redirect(search_url(params))
    messages.success(request, f"Saved “{saved.name}”. Items added from now on are counted here.")
    return redirect(f"{reverse('multimodal:saved-list')}#saved-{saved.pk}")


@signed_in
@require_safe
def saved_list(request):
    rows = [{**saved_search_summary(saved=saved, user=request.user), **saved_links(saved),
             "opened_at": saved_search_last_visit(saved=saved, user=request.user)[1],
             "description": _described(saved.params)}
            for saved in saved_searches_visible(user=request.user)]
    return render(request, "multimodal/saved_list.html", {"rows": rows})


@signed_in
@require_safe
def saved_open(request, pk: int):
    """Run the saved search (its search page); what was ingested until now is no longer new to this person."""
    saved = _visible_get(request, pk)
    saved_search_open(saved=saved, user=request.user)
    return redirect(search_url(saved.params))


@signed_in
@require_safe
def saved_whats_new(request, pk: int):
    """The items ingested since this person last opened the search that rank in its top N now."""
    saved = _visible_get(request, pk)
    since_item_id, opened_at = saved_search_last_visit(saved=saved, user=request.user)
    response, error, status = None, None, 200
    try:
        response = saved_search_whats_new(saved=saved, since_item_id=since_item_id)
    except UserInputError as exc:
        error, status = f"This search cannot run any more: {exc}.", 400
    except EncoderLoadError as exc:
        error, status = str(exc), 503
    except store.StoreUnavailable as exc:
        logger.warning("what's new answered 503: %s", exc)
        error, status = store.unavailable_message(exc), 503
    if response:
        response = {**response, "results": results_linked(response["results"], saved.params)}
    context = {"saved": saved, "response": response, "error": error, "opened_at": opened_at,
               "description": _described(saved.params), **saved_links(saved)}
    return render(request, "multimodal/saved_whats_new.html", context, status=status)


@signed_in
@require_POST
def saved_seen(request, pk: int):
    saved = _visible_get(request, pk)
    saved_search_open(saved=saved, user=request.user)
    messages.success(request, f"Everything in “{saved.name}” until now is marked as seen.")
    return redirect("multimodal:saved-list")


@signed_in
@require_POST
def saved_rename(request, pk: int):
    saved = _visible_get(request, pk)
    try:
        saved_search_rename(saved=saved, user=request.user, name=request.POST.get("name", ""))
    except UserInputError as exc:
        messages.error(request, f"Not renamed: {exc}.")
    return redirect("multimodal:saved-list")


@signed_in
@require_POST
def saved_share(request, pk: int):
    saved = _visible_get(request, pk)
    shared = request.POST.get("shared") == "true"
    saved_search_share(saved=saved, user=request.user, shared=shared)
    messages.success(request, f"“{saved.name}” is {'now listed for everyone' if shared else 'yours alone again'}.")
    return redirect("multimodal:saved-list")


@signed_in
@require_POST
def saved_delete(request, pk: int):
    saved = _visible_get(request, pk)
    saved_search_delete(saved=saved, user=request.user)
    messages.success(request, f"Deleted “{saved.name}”.")
    return redirect("multimodal:saved-list")


@signed_in
@require_POST
def saved_feed_token(request, pk: int):
    saved = _visible_get(request, pk)
    saved_search_feed_token_renew(saved=saved, user=request.user)
    messages.success(request, f"“{saved.name}” has a new feed address; the old one no longer works.")
    return redirect("multimodal:saved-list")


class SavedSearchFeed(Feed):
    """Atom: one entry per item ingested since the search was saved that ranks in its top N, newest first."""

    feed_type = Atom1Feed
    author_name = "Multimodal search"  # Atom wants an author for the feed when its entries name none

    def get_object(self, request, pk: int) -> SavedSearch:
        saved = SavedSearch.objects.select_related("owner").filter(pk=pk).first()
        token = request.GET.get("token", "")
        if saved is None or not secrets.compare_digest(token.encode(), saved.feed_token.encode()):
            raise Http404("no such feed")  # a wrong token says nothing of whether the search exists
        return saved

    def title(self, saved: SavedSearch) -> str:
        return f"New in “{saved.name}” — Multimodal search"

    def link(self, saved: SavedSearch) -> str:
        return search_url(saved.params)

    def subtitle(self, saved: SavedSearch) -> str:
        return f"Items added since it was saved that rank among the best results of {_described(saved.params)}"

    def items(self, saved: SavedSearch) -> list[dict]:
        try:
            results = saved_search_whats_new(saved=saved, since_item_id=saved.saved_after_item_id)["results"]
        except UserInputError:
            return []  # the search no longer runs (an item or corpus it names is gone): nothing is new in it
        added = Item.objects.in_bulk([result["id"] for result in results])
        entries = [{**result, "added_at": added[result["id"]].created_at} for result in results
                   if result["id"] in added]
        return sorted(entries, key=lambda entry: entry["added_at"], reverse=True)

    def item_title(self, entry: dict) -> str:
        return entry["title"]

    def item_link(self, entry: dict) -> str:
        return entry["detail_url"]

    def item_description(self, entry: dict) -> str:
        return entry.get("snippet") or entry.get("description") or f"{entry['kind']} in {entry['corpus']}"

    def item_pubdate(self, entry: dict):
        return entry["added_at"]

    def item_updateddate(self, entry: dict):
        return entry["added_at"]


_feed = SavedSearchFeed()


@require_safe
def saved_feed(request, pk: int):
    """The feed, or 503 in words while the search engine or the model is unavailable (a reader retries)."""
    try:
        return _feed(request, pk=pk)
    except (EncoderLoadError, store.StoreUnavailable) as exc:
        logger.warning("the feed of saved search %s answered 503: %s", pk, exc)
        return HttpResponse("The search is unavailable for a moment; try again later.", status=503,
                            content_type="text/plain; charset=utf-8")
