"""A document, video or long text shows once in a result list: its best matching part, with the other
matching parts named under it; ``group=false`` lists every part. Real pypdfium2, the deterministic
encoder, Milvus Lite and the JSON API."""
import pytest

from multimodal.models import Corpus, Item
from multimodal.retrieval.fusion import Fused, fused_group

from ..conftest import ingest_files
from ..document_making import pdf_bytes

pytestmark = pytest.mark.django_db

FILLER = "The committee reviewed shipping volumes and warehouse costs against the plan agreed last spring. "


def test_parts_of_one_parent_fold_into_its_best_part_naming_those_that_score_near_it():
    fused = [Fused(11, 0.9), Fused(5, 0.8), Fused(12, 0.7), Fused(13, 0.6), Fused(14, 0.5), Fused(7, 0.4)]
    grouped = fused_group(fused, {11: 1, 12: 1, 14: 1, 13: 2})
    # 12 scores 0.7 >= 0.75 * 0.9; 14 (0.5) is folded away unnamed: a page merely near the query
    assert [(entry.item_id, entry.also) for entry in grouped] == [(11, [12]), (5, []), (13, []), (7, [])]


def _pdf(pages_with_word: set[int], word: str) -> bytes:
    return pdf_bytes([f"Page {number}. {FILLER * 3}" + (f"The {word} is noted here. " if number in pages_with_word else "")
                      for number in range(1, 6)], title="Board minutes")


def test_a_document_matching_on_several_pages_is_one_result_naming_the_others(deterministic_encoder, client):
    corpus = Corpus.objects.create(name="minutes")
    report = ingest_files(corpus, {"minutes.pdf": _pdf({2, 4, 5}, "zeppelin"),
                                   "other.pdf": _pdf({3}, "zeppelin").replace(b"Board minutes", b"Other notes")})
    assert report.failures == [] and report.created == 2

    grouped = client.get("/api/search", {"q": "zeppelin", "corpus": "minutes"}).json()
    assert grouped["query"]["group"] is True
    parents = [result["parent"]["id"] for result in grouped["results"]]
    assert len(parents) == len(set(parents)) == 2, "each document once"
    board = next(result for result in grouped["results"] if result["parent"]["title"] == "Board minutes")
    assert board["page"] in (2, 4, 5)
    others = {part["where"] for part in board["also"]}
    assert others and others <= {"page 2", "page 4", "page 5"} - {f"page {board['page']}"}
    for part in board["also"]:
        assert Item.objects.get(pk=part["id"]).parent_id == board["parent"]["id"]
        assert part["detail_url"].startswith(f"/items/{board['parent']['id']}")

    every = client.get("/api/search", {"q": "zeppelin", "corpus": "minutes", "group": "false", "top_k": 30}).json()
    assert every["query"]["group"] is False
    pages = {result["page"] for result in every["results"] if result["parent"]["title"] == "Board minutes"}
    assert {2, 4, 5} <= pages
    assert not any(result.get("also") for result in every["results"])

    page = client.get("/", {"q": "zeppelin", "corpus": "minutes"}).content.decode()
    assert page.count('class="also-matched"') == 1 and "Also matches at" in page


def test_a_yes_or_no_that_is_neither_is_refused_by_name(client):
    response = client.get("/api/search", {"q": "zeppelin", "group": "maybe"})
    assert response.status_code == 400 and "group" in response.json()["error"]
