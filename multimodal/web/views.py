"""The search page and item pages. Thin: parse with the form, call a selector, render."""
import json
import logging
import math
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from .. import store
from ..encoders import EncoderLoadError
from ..errors import UserInputError
from ..models import PARENT_KINDS, Corpus, IngestJob, Item
from ..retrieval.fusion import MODES
from ..selectors import (
    document_pages, item_title_shown, items_searchable_exist, job_summary, ocr_words, part_url, recording_transcript,
    search_response, text_passage_marked, video_scene_strip,
)
from ..services.background import BrokerUnavailable
from ..services.jobs import job_cancel, job_create_from_uploads, job_retry_failed
from ..services.model_preload import models_ready
from ..query.parts import PARTS, UPLOAD_TYPES, UploadTooLarge
from ..services.query_uploads import (
    QueryUpload, UploadQuotaExceeded, UploadUnsupported, query_upload_get, query_upload_store,
    query_upload_transcript_remember, query_uploads_list,
)
from .auth import client_ip
from .forms import SearchForm, UploadForm
from .search_links import (
    BACK_PARAM, FILTER_PARAMS, QUERY_PARAMS, link_with_back, query_parts_listed, results_linked, search_from_back,
    search_new_url, search_params, search_refine_url, search_url,
)
from .permissions import (
    corpora_uploadable, corpus_upload_suggested, job_change_check, job_may_change, job_view_check, upload_check,
    uploader_check,
)
from .throttling import ANONYMOUS_PAGE_SEARCHES

logger = logging.getLogger(__name__)

# The page's Kind filter offers what people look for; documents, recordings and videos search their parts (pages and
# passages, speech, scenes: see `query.filters`). The finer part kinds still work in a URL and in the API.
KIND_FILTER_CHOICES = [(Item.Kind.IMAGE, "Images"), (Item.Kind.TEXT, "Notes and texts"), (Item.Kind.PRODUCT, "Products"),
                       (Item.Kind.DOCUMENT, "Documents"), (Item.Kind.AUDIO, "Recordings"), (Item.Kind.VIDEO, "Videos")]


def search_page(request):
    """GET runs the query in the URL, so a search can be shared and reloaded.

    A POST comes from the page without JavaScript: an image or recording is kept for the session
    and the browser is sent to the GET URL that names it (see `services.query_uploads`).
    """
    if request.method == "POST":
        return _search_post(request)
    form = SearchForm(request.GET or None, session=request.session)
    response, error, notice, status = None, None, None, 200
    retry_after_s, error_ways = None, []
    if any(request.GET.get(key) for key in ("q", "parts", "item")):
        if not ANONYMOUS_PAGE_SEARCHES.allow_request(request):
            retry_after_s = math.ceil(ANONYMOUS_PAGE_SEARCHES.wait() or 1)
            error, status = f"Too many searches from your address: retry in {retry_after_s} s, or log in.", 429
            # Unbound: nothing of the refused query (images, items) is read, only its text is shown again.
            form = SearchForm(initial={"q": request.GET.get("q", "")}, session=request.session)
        elif form.is_valid():
            try:
                response = search_response(query=form.query)
            except (UserInputError, EncoderLoadError) as exc:
                error, status = str(exc), 400 if isinstance(exc, UserInputError) else 503
            except store.StoreUnavailable as exc:
                logger.warning("the search page answered 503: %s", exc)  # the address is for operators
                error, status = store.unavailable_message(exc), 503
            for part in form.query.parts:
                if part.ref and part.transcript:  # transcribed once; later pages and reloads reuse it
                    query_upload_transcript_remember(session=request.session, ref=part.ref, transcript=part.transcript)
        else:
            plain = form.error_plain()
            error, status, error_ways = plain.text, 400, _error_ways(request, plain.fields)
    elif "q" in request.GET:
        notice = "Type what you are looking for, or add an image or a voice recording."
    page = _search_render(request, form, response=response, error=error, notice=notice, status=status,
                          error_ways=error_ways)
    if retry_after_s:
        page["Retry-After"] = str(retry_after_s)
    return page


def _search_post(request):
    form = SearchForm(request.POST)
    params = {key: request.POST[key] for key in QUERY_PARAMS if request.POST.get(key)}
    parts = []
    for part_type in UPLOAD_TYPES:
        if request.FILES.get(part_type):
            try:
                upload = query_upload_store(session=request.session, client=client_ip(request),
                                            part_type=part_type, upload=request.FILES[part_type])
            except UserInputError as exc:
                status = 429 if isinstance(exc, UploadQuotaExceeded) else 400
                return _search_render(request, form, error=str(exc), status=status)
            parts.append({"type": part_type, "ref": upload.ref})
    if parts:
        params["parts"] = json.dumps(parts, separators=(",", ":"))
    params.update((key, request.POST[key]) for key in FILTER_PARAMS if request.POST.get(key))
    return redirect(f"{reverse('multimodal:search')}?{urlencode(params)}")


def _error_ways(request, fields: set[str]) -> list[tuple[str, str]]:
    """Where a person can go from a query that cannot run: its page 1 when only the page was wrong, a new search."""
    ways = [("Back to page 1", _page_url(request, 1))] if fields == {"page"} else []
    return [*ways, ("Start a new search", reverse("multimodal:search"))]


def _search_render(request, form, *, response=None, error=None, notice=None, status=200, error_ways=()):
    filters = {key: request.GET[key] for key in FILTER_PARAMS if request.GET.get(key)}
    searched = search_params(request.GET)
    if response:
        response = {**response, "results": results_linked(response["results"], searched)}
    page = response["page"] if response else None
    first_rank = (page["number"] - 1) * page["size"] + 1 if page else None
    chip_info = _chip_info(request, form)
    context = {
        "form": form, "response": response, "error": error, "notice": notice, "error_ways": error_ways,
        "index_empty": _index_empty(form, response, error),
        "corpora": Corpus.objects.all(), "kinds": _kind_choices(request.GET.get("kind", "")), "fusion_modes": MODES,
        "default_fusion": settings.MULTIMODAL_DEFAULT_FUSION,
        "options_active": len(filters),
        "first_rank": first_rank,
        "last_rank": first_rank + len(response["results"]) - 1 if response else None,
        "several_corpora": len({result["corpus"] for result in response["results"]}) > 1 if response else False,
        "model_ready": models_ready(),
        "previous_url": _page_url(request, page["number"] - 1) if page and page["number"] > 1 else None,
        "next_url": _page_url(request, page["number"] + 1) if page and page["has_more"] else None,
        "chip_info": chip_info,
        "query_parts": query_parts_listed(searched, uploads=chip_info["uploads"]),
        "limits": {**{f"{name}_bytes": PARTS[name].limit_bytes() for name in UPLOAD_TYPES},
                   "voice_seconds": settings.MULTIMODAL_MAX_VOICE_SECONDS},
    }
    return render(request, "multimodal/search.html", context, status=status)


def _index_empty(form, response, error) -> dict | None:
    """``{"corpora": names searched}`` when the page should say nothing is indexed yet: a search found nothing
    in corpora that hold nothing to find, or the start page of a site that holds nothing. Else None."""
    if response is not None and not response["results"]:
        corpora = form.query.filters.corpora
        return None if items_searchable_exist(corpora=corpora) else {"corpora": [corpus.name for corpus in corpora]}
    if response is None and not error and not form.is_bound and not items_searchable_exist():
        return {"corpora": []}
    return None


def _kind_choices(asked: str) -> list[tuple[str, str]]:
    """The Kind filter's options, plus a finer kind a link asked for (so the select shows the filter that is on)."""
    if asked in Item.Kind.values and asked not in dict(KIND_FILTER_CHOICES):
        return [*KIND_FILTER_CHOICES, (asked, Item.Kind(asked).label)]
    return KIND_FILTER_CHOICES


def _page_url(request, number: int) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    if number > 1:
        params["page"] = number
    return f"?{params.urlencode()}"


def _chip_info(request, form) -> dict:
    """What the page shows on its part chips: kept uploads (preview, transcript) and example items."""
    uploads = {upload.ref: _upload_info(upload) for upload in query_uploads_list(session=request.session)}
    items = {}
    if form.query is not None:
        query_items = [part.item for part in form.query.parts if part.item is not None]
        items = {str(item.pk): {"title": item.title, "kind": item.kind,
                                "thumbnail_url": item.thumbnail.url if item.thumbnail else None}
                 for item in query_items}
    return {"uploads": uploads, "items": items}


def _upload_info(upload: QueryUpload) -> dict:
    return {"ref": upload.ref, "type": upload.type, "name": upload.name, "size": upload.size,
            "preview_url": reverse("multimodal:query-upload", args=[upload.ref]) if upload.preview_path else None,
            "transcript": upload.transcript}


@require_safe
def model_status(request):
    """Whether the search model is loaded in this process (the page polls it after a start)."""
    return JsonResponse({"ready": models_ready()}, headers={"Cache-Control": "no-store"})


@require_POST
def query_upload_create(request):
    """The page keeps an image or recording for this session: 201 ``{ref, preview_url, ...}``.

    Errors are ``{"error": ...}``: 413 too large, 415 not a readable image or recording, 429 over
    the session's or the address's hourly quota, 400 otherwise.
    """
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "no file was sent (field 'file')"}, status=400)
    try:
        stored = query_upload_store(session=request.session, client=client_ip(request),
                                    part_type=request.POST.get("type", ""), upload=upload)
    except UploadQuotaExceeded as exc:
        return JsonResponse({"error": str(exc)}, status=429)
    except UploadTooLarge as exc:
        return JsonResponse({"error": str(exc)}, status=413)
    except UploadUnsupported as exc:
        return JsonResponse({"error": str(exc)}, status=415)
    except UserInputError as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    return JsonResponse(_upload_info(stored), status=201)


@require_safe
def query_upload_preview(request, ref: str):
    """A kept image's preview, for the session that uploaded it (the original is never served)."""
    try:
        upload = query_upload_get(session=request.session, ref=ref)
    except UserInputError:
        raise Http404("no such upload in this session") from None
    if upload.preview_path is None or not upload.preview_path.is_file():
        raise Http404("this upload has no preview")
    response = FileResponse(upload.preview_path.open("rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"
    return response


def item_detail(request, pk: int):
    """An item in full: a recording or video with its player, scenes and transcript, a document with
    its pages (``?passage=ID`` marks one of its passages, as a long text's), a picture with the words
    read in it. A page, passage or scene is shown where it is in its parent."""
    item = get_object_or_404(Item.objects.select_related("corpus", "parent"), pk=pk)
    back = request.GET.get(BACK_PARAM, "")
    if item.parent is not None and item.kind in (Item.Kind.PASSAGE, Item.Kind.PAGE, Item.Kind.SCENE):
        return redirect(link_with_back(part_url(item), back))
    marked = _passage_param(request)
    return render(request, "multimodal/item_detail.html", {
        "item": item, "title": item_title_shown(item), "transcript": recording_transcript(item),
        "scenes": video_scene_strip(item),
        "pages": document_pages(item, marked=marked), "ocr_words": ocr_words(item),
        "text_pieces": text_passage_marked(item, marked) if item.kind == Item.Kind.TEXT else None,
        "marked": marked, **_item_search_links(item, search_from_back(back), marked),
    })


def _item_search_links(item: Item, searched: dict[str, str] | None, marked: int | None) -> dict:
    """The item page's ways on: back to the search it was opened from, that search with this item (or the passage
    marked in it) added, and a new search with its picture. A document, recording or video has no vectors of its
    own: only a passage of it can be added."""
    example = item.pk
    if item.kind in PARENT_KINDS:
        example = marked if marked and item.children.filter(pk=marked).exists() else None
    picture = item.kind not in PARENT_KINDS and (item.kind == Item.Kind.IMAGE or bool(item.thumbnail))
    return {
        "back_url": search_url(searched) if searched else None,
        "more_like_url": example and (search_refine_url(searched, item_id=example, weight=1.0) if searched
                                      else search_new_url({}, item_id=example)),
        "image_search_url": search_new_url(searched or {}, item_id=item.pk) if picture else None,
    }


def _passage_param(request) -> int | None:
    """The passage a hit's link asks to mark (``?passage=ID``); anything else marks none."""
    value = request.GET.get("passage", "")
    return int(value) if value.isdigit() and len(value) < 19 else None


@staff_member_required
def upload_page(request):
    """Staff upload files, archives or tables into a corpus; the job runs in the background.

    Who may upload where is multimodal/web/permissions.py's: the page lists only those corpora, and a
    refused upload is shown on the form with a 403.
    """
    uploader_check(request.user)
    corpus = request.GET.get("corpus") or corpus_upload_suggested(request.user)
    form = UploadForm(request.POST or None, request.FILES or None, initial={"corpus": corpus})
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                upload_check(user=request.user, corpus_name=form.cleaned_data["corpus"])
                job = job_create_from_uploads(
                    corpus_name=form.cleaned_data["corpus"], files=form.cleaned_data["files"],
                    user=request.user, column_mapping=form.column_mapping(),
                )
            except PermissionDenied as exc:
                form.add_error(None, str(exc))
                status = 403
            except BrokerUnavailable as exc:
                form.add_error(None, f"Nothing was uploaded: {exc}.")
                status = 503
            except UserInputError as exc:
                form.add_error(None, str(exc))
            else:
                return redirect(job.get_absolute_url())
    context = {"form": form, "corpora": corpora_uploadable(request.user)}
    return render(request, "multimodal/upload.html", context, status=status)


@staff_member_required
def job_detail(request, pk: int):
    """Its creator's, or for ``multimodal.view_ingestjob``; Retry shows for those who may change it."""
    job = get_object_or_404(IngestJob.objects.select_related("corpus"), pk=pk)
    job_view_check(request.user, job)
    context = {"job": job, "summary": job_summary(job), "may_change": job_may_change(request.user, job)}
    return render(request, "multimodal/job_detail.html", context)


@staff_member_required
@require_POST
def job_retry(request, pk: int):
    job = get_object_or_404(IngestJob, pk=pk)
    job_change_check(request.user, job)
    try:
        count = job_retry_failed(job=job)
    except BrokerUnavailable as exc:
        messages.error(request, f"Nothing was retried: {exc}.")
    else:
        messages.info(request, f"{count} failed item{'s' if count != 1 else ''} queued again.")
    return redirect(job.get_absolute_url())


@staff_member_required
@require_POST
def job_cancel_view(request, pk: int):
    """Its creator's, or for ``multimodal.change_ingestjob``: stops the job (see `job_cancel`)."""
    job = get_object_or_404(IngestJob, pk=pk)
    job_change_check(request.user, job)
    if job_cancel(job=job):
        messages.info(request, "Job cancelled: files already ingested stay; nothing more of it will run.")
    else:
        messages.info(request, f"The job had already finished ({job.status}): nothing to cancel.")
    return redirect(job.get_absolute_url())
