"""Who is calling: API tokens (``Authorization: Bearer <key>``, see multimodal/web/api.py), the client's
address, and the throttles on guessing passwords and tokens.

Bad tokens are counted per address in the cache: after ``MULTIMODAL_TOKEN_FAILURE_LIMIT`` of them
within ``MULTIMODAL_TOKEN_FAILURE_WINDOW_S`` the address is refused every token, good ones too, for
that long. Refusing good ones as well is what makes the limit hold: otherwise a guesser could not tell
"blocked" from "wrong key" and would simply carry on. Failed logins are django-axes' (settings.py);
`login_locked_response` is the page it shows.
"""
import logging
import math
import time

from django.conf import settings
from django.contrib import admin
from django.core.cache import cache
from django.shortcuts import render
from django.utils import timezone

from ..models import ApiToken

logger = logging.getLogger(__name__)


class TokenThrottled(Exception):
    """This address sent too many bad API tokens lately; it may try again in ``wait_s`` seconds."""

    def __init__(self, wait_s: int):
        super().__init__(f"too many bad API tokens from your address: try again in {wait_s} s")
        self.wait_s = wait_s


def client_ip(request) -> str:
    """The client's address: the connection's, or the one the last of ``MULTIMODAL_PROXY_COUNT``
    trusted proxies put in X-Forwarded-For (the entries before it are the client's to forge)."""
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    proxies = settings.MULTIMODAL_PROXY_COUNT
    if proxies and forwarded:
        return forwarded[-min(proxies, len(forwarded))]
    return request.META.get("REMOTE_ADDR", "")


def token_user_for_key(key: str, *, ip: str):
    """The active user an API token key belongs to, else None (counted against ``ip``).

    Records when the token was last used. Raises `TokenThrottled` while ``ip`` is blocked.
    """
    _token_throttle_check(ip)
    token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash_key(key.strip())).first()
    if token is None or not token.user.is_active:
        _token_failure_record(ip)
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user


def _token_throttle_check(ip: str) -> None:
    blocked_until = cache.get(_blocked_key(ip))
    if blocked_until is not None:
        raise TokenThrottled(max(math.ceil(blocked_until - time.time()), 1))


def _token_failure_record(ip: str) -> None:
    limit, window_s = settings.MULTIMODAL_TOKEN_FAILURE_LIMIT, settings.MULTIMODAL_TOKEN_FAILURE_WINDOW_S
    if limit <= 0:
        return
    key = f"auth:token-failures:{ip}"
    cache.add(key, 0, timeout=window_s)  # the window starts at the first failure
    try:
        failures = cache.incr(key)  # atomic in Redis, so concurrent guesses are all counted
    except ValueError:  # the window ended between add and incr
        failures = 1
        cache.set(key, failures, timeout=window_s)
    if failures >= limit:
        cache.set(_blocked_key(ip), time.time() + window_s, timeout=window_s)
        cache.delete(key)
        logger.warning("API tokens from %s refused for %d s after %d bad ones", ip, window_s, failures)


def _blocked_key(ip: str) -> str:
    return f"auth:token-blocked:{ip}"


def login_locked_response(request, response=None, credentials=None):
    """django-axes' answer to a login while its username and address are locked out: a 429 page
    that says how long to wait (each try while locked restarts the wait, so it is the full cool-off)."""
    wait_min = math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60)
    context = {**admin.site.each_context(request), "title": "Too many failed logins", "wait_min": wait_min,
               "failure_limit": settings.AXES_FAILURE_LIMIT}
    locked = render(request, "admin/locked_out.html", context, status=429)
    locked["Retry-After"] = str(wait_min * 60)
    return locked
