"""API tokens: programs authenticate with ``Authorization: Bearer <key>`` (see multimodal/api.py)."""
from django.utils import timezone

from .models import ApiToken


def token_user_for_key(key: str):
    """The active user an API token key belongs to, else None; records when it was last used."""
    token = ApiToken.objects.select_related("user").filter(key_hash=ApiToken.hash_key(key.strip())).first()
    if token is None or not token.user.is_active:
        return None
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
    return token.user
