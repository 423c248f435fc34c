"""Reads that shape data for the page, the API and the commands (one shape for all three)."""
import time

from django.urls import reverse

from .audio import clock
from .fusion import Fused
from .highlight import highlight_spans, snippet_window
from .keyword import keyword_terms
from .metrics import NDCG_K, RECALL_KS
from .models import Adapter, CorpusIndex, IngestJob, IngestUnit, Item
from .services.search import SearchOutcome, SearchQuery, search_run


def search_results_hydrate(outcome: SearchOutcome) -> list[dict]:
    """One dict per hit whose item still exists, in rank order, each with its explanation.

    ``snippet`` is plain text around the first word of the query it holds; ``highlight`` is the
    same snippet in pieces with the query's words marked (see `multimodal.highlight`).
    """
    items = Item.objects.select_related("corpus", "parent").in_bulk([hit.item_id for hit in outcome.hits])
    terms = keyword_terms(" ".join(part.text for part in outcome.query.parts if part.text and part.weight > 0))
    results = []
    for hit in outcome.hits:
        item = items.get(hit.item_id)
        if item is None:  # deleted after its vector was found: never show a stale result
            continue
        snippet = snippet_window(item.text, terms) if item.text else None
        results.append(
            {
                "id": item.pk,
                "kind": item.kind,
                "title": item.title,
                "score": round(hit.score, 6),
                "thumbnail_url": item.thumbnail.url if item.thumbnail else None,
                "snippet": snippet,
                "highlight": highlight_spans(snippet, terms) if snippet else None,
                "detail_url": item.get_absolute_url(),
                "corpus": item.corpus.name,
                "created_at": item.created_at.isoformat(),
                **_product_fields(item),
                **_segment_fields(item),
                "explanation": _explanation(hit, outcome.query),
            }
        )
    return results


def _segment_fields(item: Item) -> dict:
    """An audio segment plays from its own second of its recording: ``audio_url`` ends in ``#t=START``."""
    if item.kind != Item.Kind.SEGMENT or item.parent is None:
        return {}
    recording = item.parent
    return {
        "start_s": item.start_s,
        "end_s": item.end_s,
        "recording": {"id": recording.pk, "title": recording.title, "detail_url": recording.get_absolute_url()},
        "audio_url": f"{recording.file.url}#t={item.start_s:.2f}" if recording.file else None,
        "detail_url": f"{recording.get_absolute_url()}#t={item.start_s:.2f}",
    }


def recording_transcript(item: Item) -> list[dict]:
    """A recording's segments in time order, as its page lists them (empty for other items).

    Each has ``id``, ``start_s``, ``end_s``, ``start``/``end`` as people read times ("1:05"),
    ``text`` and ``audio_url``: the recording from that second (a link that works without scripts).
    """
    if item.kind != Item.Kind.AUDIO:
        return []
    return [
        {
            "id": segment.pk, "start_s": segment.start_s, "end_s": segment.end_s, "text": segment.text,
            "start": clock(segment.start_s), "end": clock(segment.end_s),
            "audio_url": f"{item.file.url}#t={segment.start_s:.2f}" if item.file else None,
        }
        for segment in item.segments.order_by("start_s", "pk")
    ]


def _explanation(hit: Fused, query: SearchQuery) -> dict:
    """Which parts and channels contributed to a result's score, and how much."""
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
    return {"fusion": query.fusion, "contributions": contributions}


def _product_fields(item: Item) -> dict:
    """Products (knowledge-base rows) also carry their specs, as the brief's query_product returns."""
    if item.kind != Item.Kind.PRODUCT:
        return {}
    return {
        "description": item.text,
        "specs": item.metadata.get("specs") or {},
        "specs_text": item.metadata.get("specs_text", ""),
        "external_id": item.external_id or None,
    }


def search_response(*, query: SearchQuery, fields: list[str] | None = None) -> dict:
    """Run ``query`` and return the response every client gets: query, results, page, timings_ms.

    ``fields`` keeps only those keys of each result (e.g. id, description, specs, score).
    """
    started = time.perf_counter()
    outcome = search_run(query=query)
    hydrate_started = time.perf_counter()
    results = search_results_hydrate(outcome)
    if fields:
        results = [{key: result.get(key) for key in fields} for result in results]
    timings = {name: round(value, 2) for name, value in outcome.timings_ms.items()}
    timings["hydrate"] = round((time.perf_counter() - hydrate_started) * 1000, 2)
    timings["total"] = round((time.perf_counter() - started) * 1000, 2)
    return {
        "query": query.summary(),
        "results": results,
        "page": {"number": query.page, "size": query.top_k, "has_more": outcome.has_more},
        "timings_ms": timings,
    }


RESULT_FIELDS = ("id", "kind", "title", "score", "thumbnail_url", "snippet", "highlight", "detail_url", "corpus",
                 "created_at", "description", "specs", "specs_text", "external_id", "start_s", "end_s", "recording",
                 "audio_url", "explanation")


FAILURES_SHOWN = 1000


def job_summary(job: IngestJob) -> dict:
    """A job's progress and failures, as the job page polls it and GET /api/jobs/<id> returns it."""
    failures = list(
        job.units.filter(status=IngestUnit.Status.FAILED).order_by("pk").values("name", "reason")[:FAILURES_SHOWN]
    )
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
