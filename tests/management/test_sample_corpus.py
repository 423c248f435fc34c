"""The README's first step: the bundled sample corpus ingests whole, every kind of file in it searchable."""
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from multimodal.models import Item
from multimodal.query.types import SearchQuery
from multimodal.selectors import search_response

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "corpus"
pytestmark = pytest.mark.django_db


def test_the_sample_corpus_ingests_whole_and_answers_a_first_search(deterministic_encoder):
    out = StringIO()
    call_command("ingest", str(SAMPLES), "--corpus", "sample", stdout=out, stderr=StringIO())
    assert "0 failed" in out.getvalue(), out.getvalue()
    kinds = Counter(Item.objects.filter(parent=None).values_list("kind", flat=True))
    assert kinds == {"image": 6, "text": 2, "product": 6, "document": 1, "audio": 1}, kinds
    spoken = Item.objects.filter(kind=Item.Kind.SEGMENT).values_list("text", flat=True)
    assert "bicycles" in " ".join(spoken).lower(), list(spoken)

    response = search_response(query=SearchQuery(text="bicycle basket", top_k=3))
    titles = [result["title"] for result in response["results"]]
    assert "City bicycle" in titles and any(title.startswith("Cycling to work") for title in titles), titles
