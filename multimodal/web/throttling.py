"""Search rate limits, kept in the default cache (per process unless CACHE_URL names a shared one).

Two limits, each a sliding window: ``MULTIMODAL_SEARCH_RATE`` for every API client (its user, else
its address; empty: none), and ``MULTIMODAL_ANON_SEARCH_RATE`` for visitors who are neither logged
in nor sending a valid API token, per address, in the API and the search page alike.
"""
import re
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from ninja.throttling import BaseThrottle

from .auth import TokenThrottled, client_ip, token_user_for_key

RATE_RE = re.compile(r"(?P<count>[0-9]+)\s*/\s*(?P<number>[0-9]*)\s*(?P<unit>[a-z]+)")
PERIODS_S = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}


def search_caller_known(request) -> bool:
    """A logged-in session or a valid ``Authorization: Bearer`` API token (looked up once per request)."""
    known = getattr(request, "_search_caller_known", None)
    if known is None:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        known = request.user.is_authenticated or (
            scheme.lower() == "bearer" and token_user_for_key(key, ip=client_ip(request)) is not None)
        request._search_caller_known = known
    return known


class _RateLimit(BaseThrottle):
    """A sliding-window limit read from a setting per request; one instance serves concurrent requests."""

    setting = ""
    scope = ""

    def __init__(self):
        self._wait = threading.local()  # what wait() reports belongs to the request in this thread

    def ident(self, request) -> str | None:
        """Whom the request counts against; None: not limited."""
        raise NotImplementedError

    def allow_request(self, request) -> bool:
        self._wait.seconds = None
        rate = getattr(settings, self.setting)
        if not rate:
            return True
        ident = self.ident(request)
        if ident is None:
            return True
        count, period_s = rate_parse(rate, setting=self.setting)
        key = f"throttle_{self.scope}_{ident}"
        now = time.time()
        history = [moment for moment in cache.get(key, []) if moment > now - period_s]
        if len(history) >= count:
            self._wait.seconds = history[-1] + period_s - now  # until the oldest request leaves the window
            return False
        cache.set(key, [now, *history], period_s)
        return True

    def wait(self) -> float | None:
        return getattr(self._wait, "seconds", None)


class SearchRateThrottle(_RateLimit):
    """Every API client (user, else address) at ``MULTIMODAL_SEARCH_RATE``."""

    setting, scope = "MULTIMODAL_SEARCH_RATE", "search"

    def ident(self, request) -> str:
        user = getattr(request, "user", None)
        return f"user-{user.pk}" if user is not None and user.is_authenticated else client_ip(request)


class AnonymousSearchRateThrottle(_RateLimit):
    """Visitors with neither a session login nor an API token, per address, at ``MULTIMODAL_ANON_SEARCH_RATE``."""

    setting, scope = "MULTIMODAL_ANON_SEARCH_RATE", "search_anon"

    def allow_request(self, request) -> bool:
        try:
            return super().allow_request(request)
        except TokenThrottled as exc:
            # The address is blocked for bad API tokens: refused here (a raise would be a 500, ninja runs
            # throttles outside its error handlers); the API answers with the block's own message.
            request.token_throttled = exc
            self._wait.seconds = exc.wait_s
            return False

    def ident(self, request) -> str | None:
        return None if search_caller_known(request) else client_ip(request)


class AnonymousPageSearchRateThrottle(AnonymousSearchRateThrottle):
    """The same limit, counted together, for the search page: there only a session login is known."""

    def ident(self, request) -> str | None:
        return None if request.user.is_authenticated else client_ip(request)


ANONYMOUS_SEARCHES = AnonymousSearchRateThrottle()
ANONYMOUS_PAGE_SEARCHES = AnonymousPageSearchRateThrottle()


def rate_parse(rate: str, *, setting: str) -> tuple[int, int]:
    """'60/min' -> (60, 60): requests, and the window in seconds ('5/10min' -> (5, 600))."""
    match = RATE_RE.fullmatch(rate.strip())
    if match is None or match["unit"] not in PERIODS_S or int(match["count"]) < 1:
        raise ImproperlyConfigured(f"{setting}={rate!r}: use requests/period, e.g. 60/min, 1000/hour or 5/10s")
    return int(match["count"]), int(match["number"] or 1) * PERIODS_S[match["unit"]]
