"""The site on PostgreSQL (as docker-compose runs it): migrations apply, and the keyword channel finds
product codes and rare names through PostgreSQL full-text search.

Runs the site's commands (``manage.py``'s settings and argument parsing) in processes of their own against a
real throw-away PostgreSQL cluster on loopback, with the tiny random CLIP (its vector channel ranks at random,
so what is found first is the keyword channel's doing), and MILVUS_URI given as a path, Milvus Lite's form as
the README documents it.
Searches run in turn in one long-lived process, as the site's do (one start for the module's eight searches,
not eight), which must see each ingest's writes; the migration and the ingests run in turn in another (one
start for four commands: each start costs ~5-10 s of imports).
"""
import json
import os

import pytest

from tests.live_services import CommandSession, postgres_server

NOTES = 40


def _catalogue(folder, *, chair_description: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "catalogue.csv").write_text(
        "sku,title,description,specs\n"
        "SKU-0041,green chair,a garden chair in green,colour: green\n"
        f"SKU-0042,red chair,{chair_description},colour: red; legs: 4\n"
        "SKU-0043,blue table,a wooden blue table,colour: blue\n"
        "SKU-0044,lounge chair,a lounge chair designed by Kjaerholm,frame: steel\n"
        "SKU-0045,porch bench,a bench in teak,seats: 3\n"
        "SKU-0046,teak stool,a stool for the porch,seats: 1\n"
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A migrated site on PostgreSQL holding notes about garden chairs, a spare part and a catalogue."""
    folder = tmp_path_factory.mktemp("postgres-site")
    notes = folder / "notes"
    notes.mkdir()
    for number in range(NOTES):
        (notes / f"note{number}.txt").write_text(f"A note about a wooden chair in the garden, number {number}")
    (notes / "spare.txt").write_text("Spare part ZX-9931 for the blender")
    _catalogue(folder / "shop", chair_description="a comfy red chair")
    with postgres_server() as database_url:
        env = {**os.environ, "DATABASE_URL": database_url, "MULTIMODAL_DATA_DIR": str(folder / "data"),
               "MULTIMODAL_CLIP_MODEL": "tiny-random", "CELERY_BROKER_URL": "", "MILVUS_URI": str(folder / "milvus.db")}
        searcher = CommandSession(env, folder / "searcher.log")  # starts (imports) while the site is set up
        ingester = CommandSession(env, folder / "ingester.log")
        try:
            ingester.run("migrate", "--no-input")
            landed = ingester.run("ingest", str(notes), str(folder / "shop"), "--corpus", "mixed")
            assert f"{NOTES + 7} items landed in corpus 'mixed'" in landed
            yield folder, searcher, ingester
        finally:
            searcher.close()
            ingester.close()


def _search(site, *args, top_k: int = 5) -> list[dict]:
    _, searcher, _ = site
    return json.loads(searcher.run("search", *args, "--json", "--top-k", str(top_k)))["results"]


def _keyword_rank(result: dict) -> int | None:
    ranks = [share["rank"] for share in result["explanation"]["contributions"] if share["channel"] == "keyword"]
    return ranks[0] if ranks else None


def test_an_exact_product_code_is_found_first(site):
    results = _search(site, "SKU-0042")
    assert results[0]["title"] == "red chair"
    assert _keyword_rank(results[0]) == 1
    assert all(_keyword_rank(result) != 1 for result in results[1:])


def test_a_rare_word_outweighs_common_ones(site):
    """Every note matches "garden chair" and one product matches "chair Kjaerholm": the rare name wins."""
    first = _search(site, "garden chair Kjaerholm")[0]
    assert first["title"] == "lounge chair"
    assert _keyword_rank(first) == 1
    spare = _search(site, "blender part ZX-9931")[0]
    assert spare["snippet"].startswith("Spare part ZX-9931")


def test_a_word_in_the_title_outranks_it_in_the_description(site):
    """Each word is in one title and in the other's description: the title's holder comes first."""
    for word, expected in (("teak", ["teak stool", "porch bench"]), ("porch", ["porch bench", "teak stool"])):
        matched = sorted((result for result in _search(site, word, top_k=NOTES + 7) if _keyword_rank(result)), key=_keyword_rank)
        assert [result["title"] for result in matched] == expected


def test_kind_filter_composes_with_the_keyword_channel(site):
    results = _search(site, "chair", "--kind", "product")
    assert results and {result["kind"] for result in results} == {"product"}


def test_a_changed_description_is_searched_by_its_new_words_only(site):
    folder, _, ingester = site
    _catalogue(folder / "shop", chair_description="a comfy red chair in walnut")
    ingester.run("ingest", str(folder / "shop"), "--corpus", "mixed")
    walnut = _search(site, "walnut")
    assert walnut[0]["title"] == "red chair" and _keyword_rank(walnut[0]) == 1
    _catalogue(folder / "shop", chair_description="a comfy red chair in oak")
    ingester.run("ingest", str(folder / "shop"), "--corpus", "mixed")
    assert all(_keyword_rank(result) is None for result in _search(site, "walnut"))


def test_a_spec_filter_composes_with_the_keyword_channel(site):
    """Every chair matches "chair"; the keyword channel keeps only the one with the spec asked for."""
    results = _search(site, "chair", "--spec", "colour=red", top_k=NOTES + 7)
    assert [result["title"] for result in results] == ["red chair"] and _keyword_rank(results[0]) == 1
