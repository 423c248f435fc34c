"""Corpora named on a command line."""
from django.core.management.base import CommandError

from ..models import Corpus


def corpora_named(names: list[str] | None) -> list[Corpus] | None:
    """The corpora ``names`` (repeatable ``--corpus``) names; None when none is named (every corpus).

    Raises CommandError naming each one that does not exist, so a typo never runs over everything.
    """
    if not names:
        return None
    corpora = list(Corpus.objects.filter(name__in=names))
    unknown = sorted(set(names) - {found.name for found in corpora})
    if unknown:
        raise CommandError(f"no corpus named {', '.join(repr(name) for name in unknown)}")
    return corpora
