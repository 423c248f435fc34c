"""Adapters trained on a corpus's pairs are measured on pairs they never saw and saved as versions."""
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from multimodal.models import Adapter, Corpus

from ..adapter_domain import catalogue_write, image_png


def _ingest_catalogue(folder: Path, count: int, corpus: str = "shop", **options) -> Corpus:
    catalogue_write(folder, range(count), **options)
    call_command("ingest", str(folder), "--corpus", corpus, stdout=io.StringIO(), stderr=io.StringIO())
    return Corpus.objects.get(name=corpus)


def _train(*args) -> str:
    out = io.StringIO()
    call_command("train_adapter", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _table_rows(printed: str) -> dict[tuple[str, str], list[float]]:
    rows = {}
    for line in printed.splitlines():
        words = line.split()
        if words and words[0] in ("text->image", "image->text"):
            rows[(words[0], words[1])] = [float(value) for value in words[2:]]
    return rows


@pytest.mark.django_db
def test_train_adapter_on_a_product_catalogue_prints_before_after_and_saves_a_version(domain_encoder, tmp_path, settings):
    corpus = _ingest_catalogue(tmp_path / "catalogue", 200)
    printed = _train("--corpus", "shop", "--holdout", "0.2")
    rows = _table_rows(printed)
    recall_1 = 0
    assert rows[("text->image", "before")][recall_1] <= 0.1  # 40 held-out images: chance is 0.025
    assert rows[("text->image", "after")][recall_1] > 0.9
    assert rows[("image->text", "after")][recall_1] > 0.9
    assert "activate_adapter --corpus shop 1" in printed
    adapter = Adapter.objects.get(corpus=corpus, version=1)
    assert adapter.status == "ready" and adapter.encoder_name == domain_encoder.name
    assert (adapter.pairs, adapter.holdout_pairs, len(adapter.holdout_item_ids)) == (200, 40, 40)
    assert adapter.hyperparameters["holdout"] == 0.2 and adapter.hyperparameters["kind"] == "mlp"
    assert adapter.metrics["after"]["text_to_image"]["recall@1"] == pytest.approx(rows[("text->image", "after")][0], abs=1e-4)
    assert (Path(settings.MULTIMODAL_ADAPTER_ROOT) / adapter.weights_path).is_file()
    _train("--corpus", "shop", "--epochs", "2", "--kind", "linear")
    assert list(corpus.adapters.values_list("version", flat=True)) == [2, 1]


@pytest.mark.django_db
def test_a_catalogue_whose_images_are_shuffled_teaches_nothing(domain_encoder, tmp_path):
    _ingest_catalogue(tmp_path / "catalogue", 200, shuffle_images=True)
    rows = _table_rows(_train("--corpus", "shop"))
    assert rows[("text->image", "after")][0] <= 0.1
    assert rows[("text->image", "after")][2] <= 0.4  # recall@10 of 40 candidates; chance is 0.25


@pytest.mark.django_db
def test_train_adapter_reads_a_pairs_file_of_image_paths_and_items(domain_encoder, tmp_path):
    corpus = _ingest_catalogue(tmp_path / "catalogue", 30)
    folder = tmp_path / "pairs"
    folder.mkdir()
    lines = []
    for number in range(30, 60):
        (folder / f"x{number}.png").write_bytes(image_png(number))
        lines.append({"text": domain_encoder.captions[number], "image": f"x{number}.png"})
    lines += [{"text": domain_encoder.captions[number], "item": f"p{number}.png"} for number in range(10)]
    (folder / "pairs.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    printed = _train("--corpus", "shop", "--pairs", str(folder / "pairs.jsonl"), "--json")
    record = json.loads(printed)
    assert record["pairs"] == 40 and record["status"] == "ready"
    assert set(record["metrics"]["before"]) == {"text_to_image", "image_to_text"}
    assert corpus.adapters.get().pairs_file == str((folder / "pairs.jsonl").resolve())


@pytest.mark.django_db
@pytest.mark.parametrize("line, message", [
    ('{"text": "a", "image": "nope.png"}', "pairs.jsonl line 2: image 'nope.png' is not a file"),
    ('{"text": "a", "item": "unknown.png"}', "pairs.jsonl line 2: no item named 'unknown.png' in corpus shop"),
    ('{"text": "a"', "pairs.jsonl line 2: not valid JSON"),
    ('{"image": "x.png"}', 'pairs.jsonl line 2: needs a non-empty "text"'),
])
def test_a_bad_pairs_line_is_named_with_its_problem(domain_encoder, tmp_path, line, message):
    _ingest_catalogue(tmp_path / "catalogue", 3)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"text": "fine", "item": "p1.png"}\n' + line + "\n")
    with pytest.raises(CommandError, match=message):
        _train("--corpus", "shop", "--pairs", str(pairs))
    assert Adapter.objects.get().status == "failed"


@pytest.mark.django_db
def test_a_corpus_without_pairs_or_too_few_is_a_clear_error(domain_encoder, tmp_path):
    Corpus.objects.create(name="empty")
    with pytest.raises(CommandError, match="corpus 'empty' holds no image-text pairs"):
        _train("--corpus", "empty")
    _ingest_catalogue(tmp_path / "catalogue", 6)
    with pytest.raises(CommandError, match="6 image-text pairs found; training needs at least 10"):
        _train("--corpus", "shop")
    with pytest.raises(CommandError, match="holdout must be at least 0 and below 1"):
        _train("--corpus", "shop", "--holdout", "1.5")
    with pytest.raises(CommandError, match="no corpus named 'nope'"):
        _train("--corpus", "nope")


@pytest.mark.django_db
def test_admin_trains_as_a_background_job_whose_page_shows_progress_then_figures_and_activates(
        domain_encoder, tmp_path, admin_client, django_capture_on_commit_callbacks):
    corpus = _ingest_catalogue(tmp_path / "catalogue", 60)
    action = {"action": "train_adapter", "_selected_action": [corpus.pk]}
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = admin_client.post("/admin/multimodal/corpus/", action, follow=True)
    adapter = Adapter.objects.get()
    assert f'href="/adapters/{adapter.pk}"' in response.content.decode()
    page = admin_client.get(f"/adapters/{adapter.pk}").content.decode()
    assert "queued" in page and 'id="training-progress"' in page and 'http-equiv="refresh"' in page
    for callback in queued:  # the worker picks the job up
        callback()
    page = admin_client.get(f"/adapters/{adapter.pk}").content.decode()
    assert "ready" in page and 'http-equiv="refresh"' not in page
    assert "text → image" in page and "before" in page and "after" in page
    adapter.refresh_from_db()
    assert f"{adapter.metrics['after']['text_to_image']['recall@1']:.3f}" in page

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/multimodal/adapter/", {"action": "activate", "_selected_action": [adapter.pk]})
    page = admin_client.get(f"/adapters/{adapter.pk}").content.decode()
    assert "live" in page and "120 / 60" not in page and "60 / 60" in page
    listing = admin_client.get("/admin/multimodal/corpus/").content.decode()
    assert "shop adapter v1" in listing
    response = admin_client.post("/admin/multimodal/corpus/", {"action": "roll_back_index", "_selected_action": [corpus.pk]},
                                 follow=True)
    assert "Corpus &#x27;shop&#x27; is now searched in base vectors." in response.content.decode()
