"""Reads that shape data for the page, the API and the commands (one shape for all three)."""
import json
import time
from pathlib import PurePath

from django.conf import settings
from django.db.models.functions import Substr
from django.urls import reverse

from .learning.metrics import NDCG_K, RECALL_KS
from .models import PARENT_KINDS, Adapter, CorpusIndex, IngestJob, IngestUnit, Item
from .query.types import SearchQuery
from .readers.audio import clock
from .readers.titles import is_markdown, markdown_plain, part_title, text_title
from .retrieval.explanations import explanation_sentences
from .retrieval.fusion import Fused
from .retrieval.highlight import highlight_spans, snippet_window
from .retrieval.relevance import Judgement
from .retrieval.keyword import keyword_terms
from .services.search import SearchOutcome, search_run


def search_results_hydrate(outcome: SearchOutcome) -> list[dict]:
    """One dict per hit whose item still exists, in rank order, each with its explanation.

    ``title`` is the title people see (`item_title_shown`). ``snippet`` is plain text around the first
    word of the query it holds (a Markdown note's as it reads, without its markup); ``highlight`` is
    the same snippet in pieces with the query's words marked (see `multimodal.retrieval.highlight`).

    Every text a result carries (title, description, specs, specs_text) holds at most
    ``MULTIMODAL_RESULT_TEXT_CHARS`` characters; ``truncated`` says whether any was cut (the whole
    item is at ``detail_url``). An item's text is read from the database only up to
    ``MULTIMODAL_MAX_TEXT_CHARS``, so an item stored before the limits existed cannot swell a search.

    A grouped hit (see `multimodal.retrieval.fusion.fused_group`) names up to ``ALSO_SHOWN`` other
    matching parts of its parent in ``also``: each with ``where`` ("page 5", "0:12–0:20") and its link.
    A hit that near duplicates were folded into (`fusion.fused_collapse`) lists them in ``duplicates``, best
    first: each with its ``level`` ("same" picture or "similar" shot), title, thumbnail and link.
    """
    wanted = [hit.item_id for hit in outcome.hits] + [part for hit in outcome.hits for part in hit.also[:ALSO_SHOWN]]
    wanted += [item_id for hit in outcome.hits for item_id, _ in hit.duplicates]
    items = (Item.objects.select_related("corpus", "parent").defer("text", "parent__text")
             .annotate(text_head=Substr("text", 1, settings.MULTIMODAL_MAX_TEXT_CHARS))
             .order_by().in_bulk(wanted))  # no ORDER BY: compiling the model's ordering cost 2 of this query's 4 ms
    outcome.explained()  # the page's explanations were worked out while the items were read
    terms = keyword_terms(" ".join(part.text for part in outcome.query.parts if part.text and part.weight > 0))
    results = []
    for hit in outcome.hits:
        item = items.get(hit.item_id)
        if item is None:  # deleted after its vector was found: never show a stale result
            continue
        cut = _TextCut(settings.MULTIMODAL_RESULT_TEXT_CHARS)
        snippet = snippet_window(_text_shown(item), terms) if item.text_head else None
        results.append(
            {
                "id": item.pk,
                "kind": item.kind,
                "title": cut(item_title_shown(item)),
                "score": round(hit.score, 6),
                "thumbnail_url": item.thumbnail.url if item.thumbnail else None,
                "snippet": snippet,
                "highlight": highlight_spans(snippet, terms) if snippet else None,
                "detail_url": item.get_absolute_url(),
                "corpus": item.corpus.name,
                "created_at": item.created_at.isoformat(),
                **_picture_size(item),
                **_product_fields(item, cut),
                **_segment_fields(item, cut),
                **_part_fields(item, cut),
                **_ocr_fields(item, terms),
                **_also_fields(hit, items),
                **_duplicate_fields(hit, items, cut),
                "relevance": _relevance(outcome.judgements.get(hit.item_id)),
                "explanation": _explanation(hit, outcome.query, outcome.judgements.get(hit.item_id), item, terms),
                "truncated": cut.truncated,
            }
        )
    _passage_thumbnails_fill(results, items)
    return results


ALSO_SHOWN = 3


def item_title_shown(item: Item) -> str:
    """The title people see for ``item``, also for items stored before titles were derived.

    A note's stored title may be its whole first paragraph: it is shortened as ingest now does
    (`text_title`). A part of a recording or video is its recording's title and time range ("talk ·
    0:07–0:12"); another part whose stored title begins with its parent's (", passage 3") begins with
    its parent's shown title.
    """
    parent = item.parent
    if item.kind == Item.Kind.TEXT:
        return text_title(item.title, fallback=PurePath(item.source_name).stem or item.title)
    if parent is None:
        return item.title
    if item.start_s is not None and item.end_s is not None:
        return part_title(item_title_shown(parent), item.start_s, item.end_s)
    if item.title.startswith(parent.title):
        return item_title_shown(parent) + item.title[len(parent.title):]
    return item.title


def _text_shown(item: Item) -> str:
    """An item's text as a reader sees it: a Markdown note's (or its passage's) without its markup."""
    source = item.source_name or (item.parent.source_name if item.parent else "")
    return markdown_plain(item.text_head) if is_markdown(source) else item.text_head


def _also_fields(hit: Fused, items: dict[int, Item]) -> dict:
    """The other matching parts folded into ``hit``, best first: where each is and its link."""
    parts = [items[item_id] for item_id in hit.also[:ALSO_SHOWN] if item_id in items]
    if not parts:
        return {}
    return {"also": [{"id": part.pk, "kind": part.kind, "where": _part_where(part), "detail_url": part_url(part)}
                     for part in parts]}


def _duplicate_fields(hit: Fused, items: dict[int, Item], cut: "_TextCut") -> dict:
    """The near duplicates folded into ``hit``, best first, each with its level and what its card shows."""
    found = [(items[item_id], level) for item_id, level in hit.duplicates if item_id in items]
    if not found:
        return {}
    return {"duplicates": [{"id": item.pk, "level": level, "kind": item.kind, "title": cut(item.title),
                            "thumbnail_url": item.thumbnail.url if item.thumbnail else None,
                            "detail_url": item.get_absolute_url()} for item, level in found]}


def _part_where(part: Item) -> str:
    """Where a part is in its parent, as people say it: "page 5", "slide 2", "0:12–0:20"; else its title."""
    if part.page is not None and part.parent is not None:
        return _page_label(part.parent, part.page)
    if part.start_s is not None:
        return f"{clock(part.start_s)}–{clock(part.end_s)}"
    if part.parent is not None and part.title.startswith(part.parent.title):  # "Notes, passage 3": "passage 3"
        return part.title[len(part.parent.title):].lstrip(" ,") or part.title
    return item_title_shown(part)


def _passage_thumbnails_fill(results: list[dict], items: dict[int, Item]) -> None:
    """A passage without a picture of its own shows its page's: the rendering of the same page of its
    document (one query for the whole list)."""
    bare = {(items[result["id"]].parent_id, result["page"]): result for result in results
            if result["kind"] == Item.Kind.PASSAGE and not result["thumbnail_url"] and result.get("page")}
    if not bare:
        return
    pages = Item.objects.filter(kind=Item.Kind.PAGE, parent_id__in={parent for parent, _ in bare},
                                page__in={page for _, page in bare}).exclude(thumbnail="")
    thumbnails = {(page.parent_id, page.page): page.thumbnail.url for page in pages.only("parent", "page", "thumbnail")}
    for where, result in bare.items():
        result["thumbnail_url"] = thumbnails.get(where)


class _TextCut:
    """Cuts texts to ``limit`` characters (the last an ellipsis) and remembers whether it cut any."""

    def __init__(self, limit: int):
        self.limit = limit
        self.truncated = False

    def __call__(self, text: str) -> str:
        if len(text) <= self.limit:
            return text
        self.truncated = True
        return text[:self.limit - 1] + "…"

    def specs(self, specs: dict) -> dict:
        """The specs in order, each key and value cut, until their text adds up to the limit."""
        kept, room = {}, self.limit
        for key, value in specs.items():
            key, value = self(str(key)), self(str(value))
            room -= len(key) + len(value)
            if room < 0:
                self.truncated = True
                break
            kept[key] = value
        return kept


def _segment_fields(item: Item, cut: _TextCut) -> dict:
    """An audio segment plays from its own second of its recording: ``audio_url`` ends in ``#t=START``."""
    if item.kind != Item.Kind.SEGMENT or item.parent is None:
        return {}
    recording = item.parent
    return {
        "start_s": item.start_s,
        "end_s": item.end_s,
        "recording": {"id": recording.pk, "title": cut(item_title_shown(recording)),
                      "detail_url": recording.get_absolute_url()},
        "audio_url": _media_from(recording, item.start_s),
        "detail_url": part_url(item),
    }


def _part_fields(item: Item, cut: _TextCut) -> dict:
    """A document's page or passage, a long text's passage, a video's scene, a recording's segment: where in its
    parent it is.

    ``parent`` names the item it belongs to (every part has one, a segment too); ``page`` is the
    1-based page (slide, section, chapter) and ``page_label`` says it as people read it ("page 3 of
    Report"); ``span`` is a passage's [start, end) characters in its parent's text; ``document_url``
    opens a PDF at the page (``#page=N``); a scene's ``video_url`` plays its video from the scene's
    start (``#t=START``), and its ``detail_url`` is the video's page at that second. A passage's
    ``detail_url`` is its parent's page with the passage marked (``?passage=ID#passage-ID``), a
    page's is its parent's page at that page (``#page-N``).
    """
    parent = item.parent
    if parent is None:
        return {}
    parent_title = cut(item_title_shown(parent))
    fields = {"parent": {"id": parent.pk, "kind": parent.kind, "title": parent_title,
                         "detail_url": parent.get_absolute_url()}}
    if item.page is not None:
        fields.update(page=item.page, page_label=f"{_page_label(parent, item.page)} of {parent_title}")
        if document_url := _document_page_url(parent, item.page):
            fields["document_url"] = document_url
    if item.kind in (Item.Kind.PASSAGE, Item.Kind.PAGE, Item.Kind.SCENE):
        fields["detail_url"] = part_url(item)
    if item.kind == Item.Kind.PASSAGE:
        fields["span"] = item.metadata.get("span")
    if item.kind == Item.Kind.SCENE:
        fields.update(start_s=item.start_s, end_s=item.end_s, video_url=_media_from(parent, item.start_s))
    return fields


def _ocr_fields(item: Item, terms: list[str]) -> dict:
    """Where the query's words are printed in a picture or a scanned page: ``ocr_boxes`` [[word, left,
    top, width, height], ...] as fractions of the thumbnail, for the words OCR read that the query holds."""
    words = (item.metadata.get("ocr") or {}).get("words")
    if not words or not terms:
        return {}
    wanted = set(terms)
    return {"ocr_boxes": [word for word in words if wanted & set(keyword_terms(word[0]))]}


def part_url(part: Item) -> str:
    """Where a part is shown on its parent's page: a passage marked and scrolled to, a page at its place,
    a scene or segment at its second (``#t=START``); an item that is no part, its own page."""
    if part.parent is None:
        return part.get_absolute_url()
    parent_url = part.parent.get_absolute_url()
    if part.kind == Item.Kind.PASSAGE:
        return f"{parent_url}?passage={part.pk}#passage-{part.pk}"
    if part.kind == Item.Kind.PAGE:
        return f"{parent_url}#page-{part.page}"
    return f"{parent_url}#t={part.start_s:.2f}" if part.start_s is not None else parent_url


def _media_from(item: Item, start_s: float) -> str | None:
    """``item``'s recording or video, playing from ``start_s`` (``#t=START``); None without a kept file."""
    return f"{item.file.url}#t={start_s:.2f}" if item.file else None


def _page_label(document: Item, number: int) -> str:
    """A document's page as people name it: "page 3", "slide 2", "section 4"."""
    return f"{document.metadata.get('page_word', 'page')} {number}"


def _document_page_url(document: Item, number: int) -> str | None:
    """A PDF opened at a page (``#page=N``); None for other documents (browsers open no other at a page)."""
    if document.file and document.metadata.get("format") == "pdf":
        return f"{document.file.url}#page={number}"
    return None


def recording_transcript(item: Item) -> list[dict]:
    """A recording's or a video's speech segments in time order, as its page lists them (empty for others).

    Each has ``id``, ``start_s``, ``end_s``, ``start``/``end`` as people read times ("1:05"),
    ``text`` and ``audio_url``: the recording from that second (a link that works without scripts).
    """
    if item.kind not in (Item.Kind.AUDIO, Item.Kind.VIDEO):
        return []
    return [
        {
            "id": segment.pk, "start_s": segment.start_s, "end_s": segment.end_s, "text": segment.text,
            "start": clock(segment.start_s), "end": clock(segment.end_s),
            "audio_url": _media_from(item, segment.start_s),
        }
        for segment in item.children.filter(kind=Item.Kind.SEGMENT).order_by("start_s", "pk")
    ]


def video_scene_strip(item: Item) -> list[dict]:
    """A video's scenes in time order, as its page's strip shows them (empty for other items).

    Each has ``id``, ``start_s``, ``end_s``, ``start``/``end`` as people read times, ``thumbnail_url``
    (its keyframe) and ``video_url``: the video from the scene's start (a link that works without scripts).
    """
    if item.kind != Item.Kind.VIDEO:
        return []
    return [
        {
            "id": scene.pk, "start_s": scene.start_s, "end_s": scene.end_s,
            "start": clock(scene.start_s), "end": clock(scene.end_s),
            "thumbnail_url": scene.thumbnail.url if scene.thumbnail else None,
            "video_url": _media_from(item, scene.start_s),
        }
        for scene in item.children.filter(kind=Item.Kind.SCENE).order_by("start_s", "pk")
    ]


def document_pages(item: Item, *, marked: int | None = None) -> list[dict]:
    """A document's pages in order, as its page lists them (empty for other items).

    Each has ``number``, ``label`` ("page 3", "slide 2"), ``thumbnail_url`` (its rendering, PDFs only),
    ``document_url`` (a PDF opened at that page), ``ocr`` (whether its words were read by OCR) and
    ``text``: the page's text as pieces {"text", "marked"}, the passage ``marked`` (an id) marked.
    A page's text is the stretch of the document its passages cover (they overlap, so it is read once).
    """
    if item.kind != Item.Kind.DOCUMENT:
        return []
    pages: dict[int, dict] = {}

    def page_entry(number: int) -> dict:
        return pages.setdefault(number, {
            "number": number, "label": _page_label(item, number), "thumbnail_url": None, "ocr": False,
            "document_url": _document_page_url(item, number), "passages": [],
        })

    children = item.children.filter(kind__in=(Item.Kind.PAGE, Item.Kind.PASSAGE)).exclude(page=None)
    for child in children.only("kind", "page", "thumbnail", "metadata", "text").order_by("page", "pk"):
        entry = page_entry(child.page)
        if child.kind == Item.Kind.PAGE:
            entry["thumbnail_url"] = child.thumbnail.url if child.thumbnail else None
            entry["ocr"] = bool(child.metadata.get("ocr"))
        else:
            entry["passages"].append(child)
    for entry in pages.values():
        entry["text"] = _page_text(item.text, entry.pop("passages"), marked=marked)
    return [pages[number] for number in sorted(pages)]


def _page_text(text: str, passages: list[Item], *, marked: int | None) -> list[dict]:
    """The stretch of ``text`` that ``passages`` cover, in pieces, the ``marked`` passage marked.

    A passage whose span is missing or beyond ``text`` (a document's text is capped) is shown by its own text.
    """
    spans = [passage.metadata.get("span") for passage in passages]
    if not passages or not all(span and span[1] <= len(text) for span in spans):
        return [{"text": passage.text, "marked": passage.pk == marked, "id": passage.pk} for passage in passages]
    start, end = min(span[0] for span in spans), max(span[1] for span in spans)
    target = next((span for passage, span in zip(passages, spans) if passage.pk == marked), None)
    if target is None:
        return [{"text": text[start:end], "marked": False}]
    return text_marked(text[start:end], [target[0] - start, target[1] - start], passage_id=marked)


def text_marked(text: str, span: list[int] | None, *, passage_id: int | None) -> list[dict]:
    """``text`` in pieces {"text", "marked", "id"}: the [start, end) ``span`` marked (one piece if none)."""
    if not span or not 0 <= span[0] < span[1] <= len(text):
        return [{"text": text, "marked": False}]
    start, end = span
    pieces = [{"text": text[:start], "marked": False}, {"text": text[start:end], "marked": True, "id": passage_id},
              {"text": text[end:], "marked": False}]
    return [piece for piece in pieces if piece["text"]]


def text_passage_marked(item: Item, passage_id: int | None) -> list[dict]:
    """A long text's full text in pieces, the passage ``passage_id`` (one of its children) marked."""
    passage = (item.children.filter(kind=Item.Kind.PASSAGE, pk=passage_id).only("metadata").first()
               if passage_id else None)
    return text_marked(item.text, passage.metadata.get("span") if passage else None,
                       passage_id=passage.pk if passage else None)


def ocr_words(item: Item) -> list[dict]:
    """The words OCR read in a picture with their boxes (fractions of the picture), as its page draws them."""
    words = (item.metadata.get("ocr") or {}).get("words") or []
    return [{"text": word, "x": left, "y": top, "width": width, "height": height}
            for word, left, top, width, height in words]


def _relevance(judgement: Judgement | None) -> dict:
    """How good a match a result is, on one scale whatever the fusion mode (`retrieval.relevance`)."""
    if judgement is None:
        return {"label": "weak", "level": 0.0}
    return {"label": judgement.label, "level": judgement.level}


def _explanation(hit: Fused, query: SearchQuery, judgement: Judgement | None, item: Item, terms: list[str]) -> dict:
    """Which parts and channels contributed to a result's score, and how much; ``summary`` says why in plain
    sentences, ``calibration`` how its relevance was judged (its z against the searched corpora's background)."""
    contributions = []
    for contribution in hit.contributions:
        entry = {"channel": "keyword" if contribution.source == "keyword" else "vector"}
        if contribution.source.startswith("part "):
            part = query.parts[int(contribution.source.split()[1])]
            entry.update(part=int(contribution.source.split()[1]), type=part.type, label=part.label, weight=part.weight)
        else:
            entry.update(weight=query.keyword_weight)
        entry.update(
            score=None if contribution.raw is None else round(contribution.raw, 6),
            rank=contribution.rank,
            contribution=round(contribution.value, 6),
        )
        contributions.append(entry)
    keyword_terms_used = terms if query.keyword_on else []
    texts = {"title": item.title, "text": item.text_head,
             "details": f"{item.metadata.get('specs_text', '')} {item.external_id}"}
    calibration = None
    if judgement is not None and judgement.z is not None:
        calibration = {"z": round(judgement.z, 3), "good_z": round(judgement.good_z, 3),
                       "strong_z": round(judgement.strong_z, 3)}
    return {"fusion": query.fusion, "contributions": contributions,
            "summary": explanation_sentences(judgement, query.parts, terms=keyword_terms_used, fields=texts),
            "calibration": calibration}


def _picture_size(item: Item) -> dict:
    """A picture's ``width`` and ``height``, so a page can lay out its thumbnail before it loads."""
    width, height = item.metadata.get("width"), item.metadata.get("height")
    if item.kind != Item.Kind.IMAGE or not width or not height:
        return {}
    return {"width": width, "height": height}


def _product_fields(item: Item, cut: _TextCut) -> dict:
    """Products (knowledge-base rows) also carry their specs, as the brief's query_product returns."""
    if item.kind != Item.Kind.PRODUCT:
        return {}
    return {
        "description": cut(item.text_head),
        "specs": cut.specs(item.metadata.get("specs") or {}),
        "specs_text": cut(item.metadata.get("specs_text", "")),
        "external_id": cut(item.external_id) or None,
    }


def search_response(*, query: SearchQuery, fields: list[str] | None = None) -> dict:
    """Run ``query`` and return the response every client gets: query, results, page, timings_ms.

    ``fields`` keeps only those keys of each result (e.g. id, description, specs, score). The
    results stop before they would pass ``MULTIMODAL_MAX_RESPONSE_KB``; ``page.truncated`` then says so.
    """
    started = time.perf_counter()
    outcome = search_run(query=query)
    hydrate_started = time.perf_counter()
    results = search_results_hydrate(outcome)
    labels = [result["relevance"]["label"] for result in results]
    if fields:
        results = [{key: result.get(key) for key in fields} for result in results]
    kept = _results_within(results, settings.MULTIMODAL_MAX_RESPONSE_KB * 1024)
    timings = {name: round(value, 2) for name, value in outcome.timings_ms.items()}
    timings["hydrate"] = round((time.perf_counter() - hydrate_started) * 1000, 2)
    timings["total"] = round((time.perf_counter() - started) * 1000, 2)
    return {
        "query": query.summary(),
        "results": results[:kept],
        "page": {"number": query.page, "size": query.top_k, "has_more": outcome.has_more,
                 "truncated": kept < len(results), "total": outcome.total,
                 "total_is_lower_bound": outcome.total_is_lower_bound},
        "match": {"good": sum(label != "weak" for label in labels[:kept]),
                  "weak": sum(label == "weak" for label in labels[:kept])},
        "timings_ms": timings,
    }


def _results_within(results: list[dict], budget_bytes: int) -> int:
    """How many of ``results``, from the first, fit in ``budget_bytes`` of JSON."""
    used = 0
    for count, result in enumerate(results):
        used += len(json.dumps(result, default=str).encode())
        if used > budget_bytes:
            return count
    return len(results)



FAILURES_SHOWN = 1000


def job_summary(job: IngestJob) -> dict:
    """A job's progress and failures, as the job page polls it and GET /api/jobs/<id> returns it.

    ``warnings`` are what landed altered, each with what changed: a table read from another encoding
    or with a header cut (named by the table), a row or file whose text was cut or cells dropped.
    """
    failures = list(
        job.units.filter(status=IngestUnit.Status.FAILED).order_by("pk").values("name", "reason")[:FAILURES_SHOWN]
    )
    warnings = [{"name": table["name"], "reason": note} for table in job.tables for note in table.get("notes", ())]
    altered = job.units.filter(status=IngestUnit.Status.DONE).exclude(reason="").order_by("pk")
    altered_shown = list(altered.values("name", "reason")[:FAILURES_SHOWN])
    warnings += altered_shown
    rate, left = job.items_per_s, job.seconds_left
    return {
        "id": job.pk,
        "corpus": job.corpus.name,
        "status": job.status,
        "total": job.total,
        "done": job.done,
        "failed": job.failed,
        "created": job.units.filter(status=IngestUnit.Status.DONE, created_item=True).count(),
        "expanded": job.expanded,
        "items_per_s": round(rate, 2) if rate is not None else None,
        "seconds_left": round(left, 1) if left is not None else None,
        "error": job.error or None,
        "tables": job.tables,
        "failures": failures,
        "failures_truncated": job.failed > len(failures),
        "warnings": warnings,
        "warnings_truncated": len(altered_shown) == FAILURES_SHOWN and altered[FAILURES_SHOWN:].exists(),
        "retryable": job.units.filter(status=IngestUnit.Status.FAILED, retryable=True).exists(),
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "status_url": reverse("api:job", args=[job.pk]),
        "page_url": job.get_absolute_url(),
    }


ADAPTER_DIRECTIONS = {"text_to_image": "text → image", "image_to_text": "image → text"}


def adapter_summary(adapter: Adapter) -> dict:
    """An adapter's training, held-out figures and index builds, as its page shows them."""
    metrics = adapter.metrics or {}
    rows = []
    for direction, label in ADAPTER_DIRECTIONS.items():
        for when in ("before", "after"):
            figures = (metrics.get(when) or {}).get(direction)
            if figures:
                values = [figures[f"recall@{k}"] for k in RECALL_KS] + [figures["mrr"], figures[f"ndcg@{NDCG_K}"]]
                rows.append({"direction": label, "when": when, "values": [f"{value:.3f}" for value in values]})
    state = CorpusIndex.objects.filter(corpus=adapter.corpus, encoder_name=adapter.encoder_name).first()
    builds = [
        {"id": build.pk, "corpus": build.corpus.name, "status": build.status, "done": build.done, "total": build.total,
         "live": bool(state and state.live_id == build.pk), "previous": bool(state and state.previous_id == build.pk),
         "error": build.error, "created_at": build.created_at}
        for build in adapter.builds.select_related("corpus").order_by("-pk")
    ]
    return {
        "running": adapter.status in (Adapter.Status.QUEUED, Adapter.Status.RUNNING)
        or any(build["status"] == "building" for build in builds),
        "metric_names": [f"R@{k}" for k in RECALL_KS] + ["MRR", f"nDCG@{NDCG_K}"],
        "metric_rows": rows,
        "builds": builds,
    }


def items_searchable_exist(*, corpora=()) -> bool:
    """Whether anything is indexed to be found in ``corpora`` (in any corpus when empty): an item with vectors of
    its own (recordings, videos and documents are found through their parts)."""
    items = Item.objects.exclude(kind__in=PARENT_KINDS)
    return (items.filter(corpus__in=corpora) if corpora else items).exists()


def duplicate_groups_summary(*, level: str, corpus=None, limit: int = 50) -> dict:
    """Near-duplicate groups of ``level``, biggest first, as GET /api/duplicates returns them: each group's
    ``group`` (its name), ``size`` and ``items`` (the one to keep first: the largest picture, then the oldest)."""
    from .services.duplicates import duplicate_groups

    groups, total = duplicate_groups(level=level, corpus=corpus, limit=limit)
    return {
        "level": level, "total": total,
        "groups": [{"group": group.key, "size": len(group.items), "items": [{
            "id": item.pk, "kind": item.kind, "title": item.title, "corpus": item.corpus.name,
            "external_id": item.external_id or None,
            "width": item.metadata.get("width"), "height": item.metadata.get("height"),
            "thumbnail_url": item.thumbnail.url if item.thumbnail else None, "detail_url": item.get_absolute_url(),
        } for item in group.items]} for group in groups],
    }
