"""Who is calling the API: a staff session (with CSRF for writes) or an API token."""
from functools import wraps

from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from .models import ApiToken


def token_user(request):
    """The user an ``Authorization: Bearer <key>`` (or ``Token <key>``) header belongs to, else None."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in {"bearer", "token"} or not key.strip():
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash_key(key.strip())).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def staff_api(view):
    """Let staff through, by token or by session; a session's unsafe requests must pass CSRF.

    Others get a JSON 401 (no credentials) or 403 (not staff, or a bad CSRF token).
    """

    @csrf_exempt  # checked below, for sessions only: a token is not sent by browsers on their own
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        user = token_user(request)
        if user is None and request.headers.get("Authorization"):
            return JsonResponse({"error": "the API token is not valid"}, status=401)
        if user is None:
            if not request.user.is_authenticated:
                return JsonResponse({"error": "authentication required: a staff session or an API token"}, status=401)
            user = request.user
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                rejection = CsrfViewMiddleware(lambda req: None).process_view(request, None, (), {})
                if rejection is not None:
                    return JsonResponse({"error": "CSRF check failed: send the csrftoken with the request"}, status=403)
        if not user.is_staff:
            return JsonResponse({"error": "staff only"}, status=403)
        request.user = user
        return view(request, *args, **kwargs)

    return wrapped
