"""Links the search page builds from the search it shows, on the server so they work without JavaScript.

A search is its query string. From it come: a result's way back to it (``back``), the search refined
with one more example item ("More like this", "Less like this"), and the search without one of its
parts (the page without scripts removes a part with a link).

``back`` carries a query string, never a URL: the way back is always this site's search page with
the search's own parameters, so a crafted link cannot send anyone elsewhere.
"""
import json
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.urls import reverse

from ..models import Item
from ..query.json_input import json_parse

# What a search URL may hold: the query's parts, then filters and options (the order links are built in).
QUERY_PARAMS = ("q", "text_weight", "parts", "item", "item_weight")
FILTER_PARAMS = ("corpus", "kind", "created_from", "created_to", "fusion", "hybrid", "group", "collapse",
                 "keyword_weight", "min_score", "top_k")
BACK_PARAM = "back"
MAX_BACK_CHARS = 8000  # far past any search the page makes (a query's text is at most 1000 characters)
LESS_LIKE_WEIGHT = -0.5  # "Less like this" demotes what resembles the item without outweighing the rest of the query


def search_params(data) -> dict[str, str]:
    """The search in ``data`` (a QueryDict or a dict): its known, non-empty parameters, in link order, page last."""
    return {name: str(data[name]) for name in (*QUERY_PARAMS, *FILTER_PARAMS, "page") if data.get(name)}


def search_url(params: dict[str, str]) -> str:
    return f"{reverse('multimodal:search')}?{urlencode(params)}" if params else reverse("multimodal:search")


def link_with_back(url: str, back: str) -> str:
    """``url`` (a path, maybe with a query and a fragment) with ``back`` added to its query."""
    if not back:
        return url
    parts = urlsplit(url)
    query = f"{parts.query}&" if parts.query else ""
    return urlunsplit(parts._replace(query=f"{query}{urlencode({BACK_PARAM: back})}"))


def results_linked(results: list[dict], params: dict[str, str]) -> list[dict]:
    """The page's results for the search ``params``: each link leads back to it (`results_back_links`), and each
    result has ``more_like_url`` and ``less_like_url``, the search refined with it (`search_refine_url`)."""
    linked = results_back_links(results, urlencode(params))
    for result in linked:
        result["more_like_url"] = search_refine_url(params, item_id=result["id"], weight=1.0)
        result["less_like_url"] = search_refine_url(params, item_id=result["id"], weight=LESS_LIKE_WEIGHT)
    return linked


def results_back_links(value, back: str):
    """Every ``detail_url`` in the results (the hits', their parents', recordings' and 'also' parts') leads
    back to the search: the same results with ``back`` added to their links."""
    if isinstance(value, list):
        return [results_back_links(entry, back) for entry in value]
    if isinstance(value, dict):
        return {key: link_with_back(entry, back) if key == "detail_url" and isinstance(entry, str)
                else results_back_links(entry, back) for key, entry in value.items()}
    return value


def search_from_back(raw: str) -> dict[str, str] | None:
    """The search a ``back`` value names (its known parameters only), or None if it names none."""
    if not raw or len(raw) > MAX_BACK_CHARS:
        return None
    try:
        pairs = parse_qsl(raw, max_num_fields=len(QUERY_PARAMS) + len(FILTER_PARAMS) + 1)
    except ValueError:
        return None
    params = search_params(dict(pairs))
    return params if any(params.get(name) for name in ("q", "parts", "item")) else None


def _parts_list(params: dict[str, str]) -> list:
    """The query's ``parts`` as the URL holds them (the short form ``item`` as one more part), or [] if unreadable."""
    try:
        parts = json_parse(params["parts"]) if params.get("parts") else []
    except ValueError:
        parts = []
    return parts if isinstance(parts, list) else []


def _item_part(item_id, weight) -> dict:
    part = {"type": "item", "value": int(item_id)}
    if weight != 1:
        part["weight"] = weight
    return part


def search_refine_url(params: dict[str, str], *, item_id: int, weight: float) -> str:
    """The search ``params`` with item ``item_id`` added as a part of ``weight`` (replacing it if it is one
    already), from its first page."""
    parts = [part for part in _parts_list(params)
             if not (isinstance(part, dict) and part.get("type") == "item" and str(part.get("value")) == str(item_id))]
    refined = {name: value for name, value in params.items() if name not in ("parts", "item", "item_weight", "page")}
    if params.get("item") and params["item"] != str(item_id):
        parts.append(_item_part(params["item"], _number(params.get("item_weight"))))
    parts.append(_item_part(item_id, weight))
    refined["parts"] = json.dumps(parts, separators=(",", ":"))
    return search_url(_ordered(refined))


def search_new_url(params: dict[str, str], *, item_id: int) -> str:
    """A new search for item ``item_id`` alone, with the filters of ``params``."""
    return search_url({"item": str(item_id), **{name: params[name] for name in FILTER_PARAMS if name in params}})


def query_parts_listed(params: dict[str, str], *, uploads: dict) -> list[dict]:
    """The query's parts besides the text in the bar (``q``), each with how the page names it and the search
    without it: ``{type, label, weight, preview_url, remove_url}``, in the URL's order (the ``parts`` list, then
    the short form ``item``). ``uploads`` maps a kept file's ref to its info (`views._upload_info`)."""
    base = {name: value for name, value in params.items() if name != "page"}
    parts = _parts_list(base)
    item_ids = [str(part.get("value")) for part in parts if isinstance(part, dict) and part.get("type") == "item"]
    item_ids += [base["item"]] if base.get("item") else []
    titles = dict(Item.objects.filter(pk__in=[value for value in item_ids if value.isdigit() and len(value) < 19])
                  .values_list("pk", "title"))
    listed = []
    for index, part in enumerate(parts):
        part = part if isinstance(part, dict) else {}
        rest = parts[:index] + parts[index + 1:]
        without = {**base, "parts": json.dumps(rest, separators=(",", ":"))} if rest else _without(base, "parts")
        upload = uploads.get(str(part.get("ref")), {})
        listed.append({"type": part.get("type"), "label": _part_label(part, upload, titles),
                       "weight": _number(part.get("weight")), "preview_url": upload.get("preview_url"),
                       "remove_url": search_url(without)})
    if base.get("item"):
        listed.append({"type": "item", "label": _item_label(base["item"], titles),
                       "weight": _number(base.get("item_weight")), "preview_url": None,
                       "remove_url": search_url(_without(base, "item", "item_weight"))})
    return listed


def _part_label(part: dict, upload: dict, titles: dict) -> str:
    if part.get("type") == "item":
        return _item_label(part.get("value"), titles)
    if part.get("type") == "text":
        return f"“{part.get('value', '')}”"
    if part.get("type") == "voice":
        return "your recording"
    return upload.get("name") or str(part.get("type") or "part")


def _item_label(value, titles: dict) -> str:
    title = titles.get(int(value)) if str(value).isdigit() and len(str(value)) < 19 else None
    return f"like “{title}”" if title is not None else f"item {value}"


def _without(params: dict[str, str], *names: str) -> dict[str, str]:
    return {name: value for name, value in params.items() if name not in names}


def _ordered(params: dict[str, str]) -> dict[str, str]:
    return {name: params[name] for name in (*QUERY_PARAMS, *FILTER_PARAMS, "page") if name in params}


def _number(raw) -> float:
    try:
        return float(raw) if raw not in (None, "") else 1.0
    except (TypeError, ValueError):
        return 1.0
