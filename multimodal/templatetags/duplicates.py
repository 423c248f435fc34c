"""How the search page names near-duplicate collapsing and the duplicates folded into a result."""
from django import template
from django.conf import settings

from ..retrieval.fusion import COLLAPSE_LEVELS

register = template.Library()

COLLAPSE_LABELS = {"same": "Copies of a picture shown once", "similar": "Similar shots shown once",
                   "none": "Show every copy"}


@register.filter
def collapse_label(level: str) -> str:
    return COLLAPSE_LABELS.get(level, level)


@register.simple_tag
def collapse_choices() -> dict:
    """The page's collapse options: the configured default first, then the others."""
    default = settings.MULTIMODAL_DEFAULT_COLLAPSE
    return {"default": default, "others": [level for level in COLLAPSE_LEVELS if level != default]}


@register.filter
def duplicates_label(duplicates: list[dict]) -> str:
    """What a card's fold says: "+2 copies" when all are copies of its picture, else "+3 similar"."""
    count = len(duplicates)
    if all(duplicate["level"] == "same" for duplicate in duplicates):
        return f"+{count} {'copy' if count == 1 else 'copies'}"
    return f"+{count} similar"
