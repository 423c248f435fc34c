from django.core.exceptions import ValidationError
from django.core.validators import validate_slug

from ..errors import UserInputError
from ..models import Corpus


def corpus_get_or_create(*, name: str) -> Corpus:
    """The corpus called ``name``, created if new. Names are slugs (letters, digits, - and _)."""
    try:
        validate_slug(name)
    except ValidationError:
        raise UserInputError(f"corpus name '{name}' may hold only letters, digits, - and _") from None
    corpus, _ = Corpus.objects.get_or_create(name=name)
    return corpus
