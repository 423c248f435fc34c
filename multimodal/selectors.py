"""Reads that shape data for the page, the API and the commands (one shape for all three)."""
import time

from .models import Item
from .services.search import SearchOutcome, SearchQuery, search_run

SNIPPET_CHARS = 280


def text_snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The first lines of ``text``, cut at a word boundary with an ellipsis when longer than ``limit``."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    return flat[:limit].rsplit(" ", 1)[0] + "…"


def search_results_hydrate(outcome: SearchOutcome) -> list[dict]:
    """One dict per hit whose item still exists, in rank order."""
    items = Item.objects.select_related("corpus").in_bulk([hit.item_id for hit in outcome.hits])
    results = []
    for hit in outcome.hits:
        item = items.get(hit.item_id)
        if item is None:  # deleted after its vector was found: never show a stale result
            continue
        results.append(
            {
                "id": item.pk,
                "kind": item.kind,
                "title": item.title,
                "score": round(hit.score, 6),
                "thumbnail_url": item.thumbnail.url if item.thumbnail else None,
                "snippet": text_snippet(item.text) if item.text else None,
                "detail_url": item.get_absolute_url(),
                "corpus": item.corpus.name,
            }
        )
    return results


def search_response(*, query: SearchQuery) -> dict:
    """Run ``query`` and return the response every client gets: query, results, timings_ms."""
    started = time.perf_counter()
    outcome = search_run(query=query)
    results = search_results_hydrate(outcome)
    timings = {name: round(value, 2) for name, value in outcome.timings_ms.items()}
    timings["total"] = round((time.perf_counter() - started) * 1000, 2)
    return {"query": query.summary(), "results": results, "timings_ms": timings}
