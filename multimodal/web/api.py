"""The JSON API for programs (django-ninja): the same search as the page, uploads and jobs.

The OpenAPI 3 schema (/api/schema) and the interactive docs (/api/docs) are generated from these
operations and the shapes in `api_schemas`. Every error is ``{"error": "..."}`` naming the problem.
"""
import logging
import math
from collections import defaultdict
from typing import Literal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404
from django.urls import reverse
from ninja import NinjaAPI, Query
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError
from pydantic import ValidationError as PydanticValidationError

from .. import store
from ..encoders import EncoderLoadError
from ..errors import UserInputError
from ..models import Corpus, IngestJob
from ..query.json_input import base64_decode, json_parse
from ..query.parse import query_parse, unknown_names_message
from ..query.parts import UPLOAD_TYPES
from ..selectors import duplicate_groups_summary, job_summary, search_response
from ..services.background import BrokerUnavailable
from ..services.duplicates import duplicate_group_resolve
from ..services.jobs import job_cancel, job_create_from_uploads, job_retry_failed
from . import api_schemas as schemas
from .api_auth import PersonSession, PersonToken
from .api_saved import router as saved_searches_router
from .auth import TokenThrottled
from .forms import UploadForm, form_error_message
from .permissions import job_change_check, job_view_check, upload_check
from .throttling import ANONYMOUS_SEARCHES, SearchRateThrottle, search_caller_known

logger = logging.getLogger(__name__)


class StaffToken(PersonToken):
    """An API token (`PersonToken`) of a staff user."""

    def authenticate(self, request, token):
        user = super().authenticate(request, token)
        if not user.is_staff:
            raise HttpError(403, "staff only")
        return user


class StaffSession(PersonSession):
    """A signed-in staff browser session (`PersonSession`: unsafe methods carry the CSRF token)."""

    def authenticate(self, request, key):
        if not request.user.is_authenticated:
            return None
        if not request.user.is_staff:
            raise HttpError(403, "staff only")
        return request.user


class SearchAPI(NinjaAPI):
    def get_openapi_schema(self, *args, **kwargs):
        """Add the request-body models that are documented but parsed by hand (JSON or multipart)."""
        schema = super().get_openapi_schema(*args, **kwargs)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (schemas.SearchRequest, schemas.SearchMultipart):
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(definition.pop("$defs", {}))
            components[model.__name__] = definition
        return schema


api = SearchAPI(
    title="Multimodal search API",
    version="1.0",
    description="Search images, texts, products and speech by text, image, voice and example items; "
                "upload corpora and follow their ingest jobs. Every error is {\"error\": \"...\"} (unknown paths "
                "and methods too), and a parameter the API does not know is refused with 400, naming the known ones.",
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/schema",
)
STAFF = [StaffToken(), StaffSession()]
SEARCH_ERRORS = {400: schemas.Error, 429: schemas.Error, 503: schemas.Error}
STAFF_ERRORS = {401: schemas.Error, 403: schemas.Error, 429: schemas.Error}


def _error(request, message: str, status: int):
    return api.create_response(request, {"error": message}, status=status)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if isinstance(exc, Throttled) and getattr(request, "token_throttled", None):
        return _token_throttled(request, request.token_throttled)
    if isinstance(exc, Throttled):
        return _error(request, _throttled_message(request, exc), 429)
    if isinstance(exc, AuthenticationError) and exc.message == "Unauthorized":
        return _error(request, f"log in or send a token: this needs a staff session (log in at "
                               f"{reverse('admin:login')}) or an API token (Authorization: Bearer KEY)", 401)
    message = exc.message
    if exc.status_code == 403 and "CSRF" in message:
        message = "CSRF check failed: send the csrftoken with the request"
    return _error(request, message, exc.status_code)


def _throttled_message(request, exc: Throttled) -> str:
    retry = f"retry in {math.ceil(exc.wait)} s" if exc.wait else "retry shortly"
    if search_caller_known(request):
        return f"too many requests: slow down and {retry}"
    return (f"too many searches from your address: {retry}, or log in or send an API token "
            f"for a higher limit")


@api.exception_handler(TokenThrottled)
def _token_throttled(request, exc: TokenThrottled):
    response = _error(request, str(exc), 429)
    response["Retry-After"] = str(exc.wait_s)
    return response


@api.exception_handler(Http404)
def _not_found(request, exc: Http404):
    return _error(request, str(exc) or f"nothing at {request.path}", 404)


@api.exception_handler(PermissionDenied)
def _permission_denied(request, exc: PermissionDenied):
    return _error(request, str(exc) or "your account may not do this", 403)


@api.exception_handler(BrokerUnavailable)
def _broker_unavailable(request, exc: BrokerUnavailable):
    return _error(request, str(exc), 503)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    return _error(request, _pydantic_message(exc.errors), 400)


@api.exception_handler(UserInputError)
def _user_input_error(request, exc: UserInputError):
    return _error(request, str(exc), 400)


@api.exception_handler(EncoderLoadError)
def _model_unavailable(request, exc: Exception):
    return _error(request, str(exc), 503)


@api.exception_handler(store.StoreUnavailable)
def _store_unavailable(request, exc: store.StoreUnavailable):
    logger.warning("%s %s answered 503: %s", request.method, request.path, exc)  # the address is for operators
    return _error(request, store.unavailable_message(exc), 503)


def _pydantic_message(errors) -> str:
    """'top_k: Input should be a valid integer' for each error, in one line."""
    parts = []
    for error in errors:
        location = [str(piece) for piece in error.get("loc", ()) if piece not in ("query", "body", "form", "payload")]
        parts.append(f"{'.'.join(location) or 'request'}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def _json_errors_message(errors) -> str:
    """A JSON body's errors in one line; the keys no field reads are named with the ones that are known."""
    unknown = defaultdict(list)
    for error in errors:
        if error["type"] == "extra_forbidden":
            unknown[tuple(error["loc"][:-1])].append(str(error["loc"][-1]))
    messages = [
        f"part {where[-1]}: {unknown_names_message(names, schemas.PartIn.model_fields, what='key')}" if where
        else unknown_names_message(names, schemas.SearchRequest.model_fields)
        for where, names in unknown.items()
    ]
    others = [error for error in errors if error["type"] != "extra_forbidden"]
    return "; ".join(messages + ([_pydantic_message(others)] if others else []))


def _search(request, data, files=None):
    if settings.MULTIMODAL_SEARCH_REQUIRES_LOGIN and not search_caller_known(request):
        raise AuthenticationError(401, "this site requires login to search: a session or an API token")
    query = query_parse(data, files, strict=True)
    return search_response(query=query, fields=query.fields)


@api.get("/search", response={200: schemas.SearchResponse, **SEARCH_ERRORS}, exclude_unset=True,
         throttle=[SearchRateThrottle(), ANONYMOUS_SEARCHES], summary="Search by text, an item, filters (query string)")
def search_get(request, params: Query[schemas.SearchParams]):
    """Plain searches in the query string: ``?q=red+bicycle&top_k=10&corpus=shop&kind=image``."""
    return _search(request, request.GET)


@api.post("/search", response={200: schemas.SearchResponse, **SEARCH_ERRORS, 413: schemas.Error}, exclude_unset=True,
          throttle=[SearchRateThrottle(), ANONYMOUS_SEARCHES], summary="Search with any parts: text, image, voice, items",
          openapi_extra={"requestBody": {"content": {
              "application/json": {"schema": {"$ref": "#/components/schemas/SearchRequest"}},
              "multipart/form-data": {"schema": {"$ref": "#/components/schemas/SearchMultipart"}},
          }}})
def search_post(request):
    """A JSON body (images and audio base64) or a multipart form (files uploaded).

    Parts: ``[{"type": "text", "value": "wooden chair", "weight": 1}, {"type": "image", "file":
    "photo", "weight": 0.5}, {"type": "text", "value": "metal", "weight": -0.3}, {"type": "item",
    "value": 42, "weight": 0.7}]``. Searching changes nothing, so no CSRF token is needed.
    """
    if request.content_type == "application/json":
        return _search(request, *_json_search_data(request.body))
    return _search(request, request.POST, request.FILES)


def _json_search_data(body: bytes) -> tuple[dict, dict]:
    """A JSON body, validated against `SearchRequest`, as the query's fields and its base64 files decoded."""
    try:
        raw = json_parse(body or b"{}")
    except ValueError as exc:
        raise UserInputError(f"the body is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise UserInputError("the JSON body must be an object")
    try:
        data = schemas.SearchRequest.model_validate(raw).model_dump(exclude_none=True)
    except PydanticValidationError as exc:
        raise UserInputError(_json_errors_message(exc.errors())) from None
    files = {name: SimpleUploadedFile(name, base64_decode(data.pop(name), where=name))
             for name in UPLOAD_TYPES if name in data}
    return data, files


@api.post("/uploads", auth=STAFF,
          response={202: schemas.UploadAccepted, 400: schemas.Error, 503: schemas.Error, **STAFF_ERRORS},
          summary="Upload files, zip archives or CSV/XLSX knowledge bases into a corpus",
          openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": {
              "type": "object", "required": ["corpus", "files"],
              "properties": {
                  "corpus": {"type": "string"},
                  "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                  **{f"{role}_column": {"type": "string"} for role in UploadForm.ROLE_FIELDS},
              }}}}}})
def uploads(request):
    """Multipart ``corpus`` + one or more ``files`` (optional ``<role>_column``): 202 with the job to poll.

    Needs ``multimodal.add_item`` (and ``add_corpus`` for a new corpus; see multimodal/web/permissions.py).
    """
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        raise UserInputError(form_error_message(form))
    upload_check(user=request.user, corpus_name=form.cleaned_data["corpus"])
    job = job_create_from_uploads(
        corpus_name=form.cleaned_data["corpus"], files=form.cleaned_data["files"],
        user=request.user, column_mapping=form.column_mapping(),
    )
    summary = job_summary(job)
    return 202, {"job_id": job.pk, "status_url": summary["status_url"], "page_url": summary["page_url"]}


@api.get("/jobs/{pk}", auth=STAFF, response={200: schemas.Job, 404: schemas.Error, **STAFF_ERRORS},
         summary="An ingest job's progress and failures")
def job(request, pk: int):
    """Its creator's, or for ``multimodal.view_ingestjob``."""
    job = _job_get(pk)
    job_view_check(request.user, job)
    return job_summary(job)


@api.post("/jobs/{pk}/retry", auth=STAFF,
          response={202: schemas.JobRetried, 404: schemas.Error, 503: schemas.Error, **STAFF_ERRORS},
          summary="Retry a job's failed files")
def job_retry(request, pk: int):
    """Its creator's, or for ``multimodal.change_ingestjob``."""
    job = _job_get(pk)
    job_change_check(request.user, job)
    return 202, {"retried": job_retry_failed(job=job), **job_summary(job)}


@api.post("/jobs/{pk}/cancel", auth=STAFF,
          response={200: schemas.Job, 404: schemas.Error, 409: schemas.Error, **STAFF_ERRORS},
          summary="Cancel a queued or running job")
def job_cancel_endpoint(request, pk: int):
    """Its creator's, or for ``multimodal.change_ingestjob``. Files already ingested stay; nothing more
    runs, and its upload copies are deleted. 409 if the job had already finished."""
    job = _job_get(pk)
    job_change_check(request.user, job)
    if not job_cancel(job=job):
        raise HttpError(409, f"job {job.pk} has already finished ({job.status}): there is nothing to cancel")
    return job_summary(job)


def _job_get(pk: int) -> IngestJob:
    job = IngestJob.objects.select_related("corpus").filter(pk=pk).first()
    if job is None:
        raise HttpError(404, f"no job with id {pk}")
    return job


@api.get("/duplicates", auth=STAFF, response={200: schemas.DuplicateGroups, 400: schemas.Error, **STAFF_ERRORS},
         summary="Near-duplicate groups, biggest first")
def duplicates(request, level: Literal["same", "similar"] = "same", corpus: str | None = None, limit: int = 50):
    """``level`` same (copies of a picture or product row) or similar (other shots too); ``corpus`` a name."""
    found = None
    if corpus:
        found = Corpus.objects.filter(name=corpus).first()
        if found is None:
            raise UserInputError(f"no corpus named '{corpus}'")
    return duplicate_groups_summary(level=level, corpus=found, limit=max(1, min(limit, 500)))


@api.post("/duplicates/resolve", auth=STAFF, response={200: schemas.DuplicatesDeleted, 400: schemas.Error,
                                                         **STAFF_ERRORS},
          summary="Keep some members of a near-duplicate group and delete the others")
def duplicates_resolve(request, body: schemas.DuplicateResolve):
    """Needs ``multimodal.delete_item``. The deleted items' vectors and files go too."""
    if not request.user.has_perm("multimodal.delete_item"):
        raise PermissionDenied("deleting items needs the permission 'multimodal.delete_item'")
    return {"deleted": duplicate_group_resolve(level=body.level, key=body.group, keep=body.keep)}


api.add_router("/saved-searches", saved_searches_router)
