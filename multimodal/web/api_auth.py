"""How the API knows who calls: an API token (``Authorization: Bearer <key>``) or a signed-in browser session.

`PersonToken` and `PersonSession` accept any active user (saved searches are each person's); the staff-only
operations (multimodal/web/api.py) narrow them to staff.
"""
from django.urls import reverse
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer, SessionAuth

from .auth import client_ip, token_user_for_key


class PersonToken(HttpBearer):
    """``Authorization: Bearer <key>`` from `manage.py create_api_token`, for an active user.

    Bad keys are counted per address: too many and the address gets 429 for a while (multimodal/web/auth.py).
    """

    def authenticate(self, request, token):
        user = token_user_for_key(token, ip=client_ip(request))
        if user is None:
            raise AuthenticationError(401, "the API token is not valid")
        request.user = user
        return user


class PersonSession(SessionAuth):
    """A signed-in browser session; unsafe methods must carry the CSRF token.

    The CSRF check is made only for a logged-in session: a caller with neither a session nor a token is
    told to log in or send one (401), not about a token it has no reason to hold.
    """

    def _get_key(self, request):
        if not request.user.is_authenticated:
            return None
        return super()._get_key(request)

    def authenticate(self, request, key):
        if not request.user.is_authenticated:
            raise AuthenticationError(401, f"log in or send a token: saved searches are each person's, so this needs "
                                           f"a session (log in at {reverse('admin:login')}) or an API token "
                                           f"(Authorization: Bearer KEY)")
        return request.user
