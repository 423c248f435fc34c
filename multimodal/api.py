"""The JSON API for programs: the same search as the page, as data."""
import base64
import binascii
import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_http_methods

from .auth import staff_api
from .encoders import EncoderLoadError
from .errors import UserInputError
from .forms import SearchForm, UploadForm, form_error_message
from .models import IngestJob
from .selectors import job_summary, search_response
from .services.jobs import job_create_from_uploads, job_retry_failed


def _error(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _request_data(request) -> tuple[dict, dict]:
    """Fields and files from the query string, a multipart/form body or a JSON body.

    ``text`` is accepted for ``q``; in a JSON body ``image`` is base64 (a data: URL is fine).
    """
    files = request.FILES.dict()
    if request.method == "GET":
        data = request.GET.dict()
    elif request.content_type == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserInputError(f"the body is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise UserInputError("the JSON body must be an object")
        if data.get("image"):
            files["image"] = _base64_upload(data.pop("image"))
    else:
        data = request.POST.dict()
    if "text" in data and "q" not in data:
        data["q"] = data.pop("text")
    return data, files


def _base64_upload(value) -> SimpleUploadedFile:
    if not isinstance(value, str):
        raise UserInputError("image: in a JSON body the image must be a base64 string")
    try:
        payload = base64.b64decode(value.split(",", 1)[-1] if value.startswith("data:") else value, validate=True)
    except (binascii.Error, ValueError):
        raise UserInputError("image: not valid base64") from None
    return SimpleUploadedFile("image", payload)


# Searching changes nothing, so programs may POST without a CSRF token (as they may GET).
@csrf_exempt
@require_http_methods(["GET", "POST"])
def search(request):
    try:
        data, files = _request_data(request)
        form = SearchForm(data, files)
    except UserInputError as exc:
        return _error(str(exc), 400)
    if not form.is_valid():
        return _error(form.error_message(), 400)
    try:
        return JsonResponse(search_response(query=form.to_query()))
    except UserInputError as exc:
        return _error(str(exc), 400)
    except EncoderLoadError as exc:
        return _error(str(exc), 503)


@staff_api
@require_http_methods(["POST"])
def uploads(request):
    """Multipart ``corpus`` + one or more ``files`` (optional ``<role>_column``): 202 with the job to poll."""
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _error(form_error_message(form), 400)
    try:
        job = job_create_from_uploads(
            corpus_name=form.cleaned_data["corpus"], files=form.cleaned_data["files"],
            user=request.user, column_mapping=form.column_mapping(),
        )
    except UserInputError as exc:
        return _error(str(exc), 400)
    summary = job_summary(job)
    return JsonResponse({"job_id": job.pk, "status_url": summary["status_url"], "page_url": summary["page_url"]}, status=202)


@staff_api
@require_http_methods(["GET"])
def job(request, pk: int):
    return JsonResponse(job_summary(get_object_or_404(IngestJob.objects.select_related("corpus"), pk=pk)))


@staff_api
@require_http_methods(["POST"])
def job_retry(request, pk: int):
    job = get_object_or_404(IngestJob, pk=pk)
    return JsonResponse({"retried": job_retry_failed(job=job), **job_summary(job)}, status=202)
