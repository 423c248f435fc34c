"""The JSON API for programs: the same search as the page, as data."""
import base64
import binascii
import json

from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .encoders import EncoderLoadError
from .errors import UserInputError
from .forms import SearchForm
from .selectors import search_response


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
