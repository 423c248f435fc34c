"""Videos are found by what they show and what is said: real PyAV scenes and real Whisper tiny.en speech."""
import pytest
from PIL import Image

from multimodal import encoders, store
from multimodal.models import Corpus, IngestJob, Item
from multimodal.query.types import SearchQuery
from multimodal.selectors import search_response
from multimodal.services.jobs import job_create_from_paths, job_run

from ..conftest import ingest_files
from ..speech_audio import word_overlap
from ..video_making import scene_colour, video_make

pytestmark = pytest.mark.django_db

SENTENCE = "A red bicycle is leaning against the old wall."
THREE = [("red", 3), ("forestgreen", 3), ("royalblue", 3)]


@pytest.fixture(scope="module")
def talk_video() -> bytes:
    return video_make(None, scenes=THREE, speech=(SENTENCE, 3.2))


def _vector_count() -> int:
    return store.collection_for(encoders.get()).count()


def test_a_video_becomes_scenes_found_by_picture_and_speech_found_by_its_words(
        talk_video, deterministic_encoder, django_capture_on_commit_callbacks):
    corpus = Corpus.objects.create(name="videos")
    report = ingest_files(corpus, {"tour.mp4": talk_video})
    assert (report.created, report.failures, report.warnings) == (1, [], [])

    video = Item.objects.get(kind=Item.Kind.VIDEO)
    assert video.file.name.endswith(".mp4") and video.thumbnail
    assert video.metadata["scenes"] == 3 and video.metadata["duration_s"] == pytest.approx(9.0, abs=0.3)
    assert (video.metadata["width"], video.metadata["height"], video.metadata["has_audio"]) == (160, 120, True)
    scenes = list(video.children.filter(kind=Item.Kind.SCENE).order_by("start_s"))
    for scene, expected_start_s in zip(scenes, [0, 3, 6]):
        assert scene.start_s == pytest.approx(expected_start_s, abs=0.5) and scene.thumbnail
    assert len(scenes) == 3 and scenes[2].end_s == pytest.approx(9.0, abs=0.5)
    [segment] = video.children.filter(kind=Item.Kind.SEGMENT)
    assert word_overlap(segment.text, SENTENCE) >= 0.6 and 2.5 <= segment.start_s <= 3.5
    assert _vector_count() == 4  # three keyframes' pictures, one segment's words; the video owns none

    # A picture like the second scene finds it, and the hit plays the video from the scene's start.
    query = Image.new("RGB", (64, 48), scene_colour("forestgreen"))
    hit = search_response(query=SearchQuery(image=query, image_name="green.png", top_k=3))["results"][0]
    assert hit["id"] == scenes[1].pk and hit["kind"] == "scene"
    assert hit["start_s"] == scenes[1].start_s and hit["video_url"] == f"{video.file.url}#t={scenes[1].start_s:.2f}"
    assert hit["detail_url"] == f"/items/{video.pk}#t={scenes[1].start_s:.2f}"
    assert hit["parent"]["id"] == video.pk

    hit = search_response(query=SearchQuery(text="a red bicycle leaning against the wall", top_k=3))["results"][0]
    assert hit["id"] == segment.pk and hit["kind"] == "segment"
    assert hit["audio_url"] == f"{video.file.url}#t={segment.start_s:.2f}"

    # The same file again: the same children, updated in place, without transcribing again.
    children = list(video.children.order_by("pk").values_list("pk", "kind", "start_s"))
    transcribe_s = video.metadata["transcribe_s"]
    report = ingest_files(corpus, {"tour-copy.mp4": talk_video})
    assert (report.created, report.updated) == (0, 1)
    assert list(video.children.order_by("pk").values_list("pk", "kind", "start_s")) == children
    video.refresh_from_db()
    assert video.metadata["transcribe_s"] == transcribe_s and _vector_count() == 4

    with django_capture_on_commit_callbacks(execute=True):
        video.delete()
    assert not Item.objects.exists() and _vector_count() == 0


def test_a_silent_video_uploaded_in_a_job_is_its_scenes_only(tmp_path, deterministic_encoder):
    video_make(tmp_path / "silent.mp4", scenes=[("red", 2), ("royalblue", 2)])
    corpus = Corpus.objects.create(name="videos")
    job = job_run(job_id=job_create_from_paths(corpus=corpus, paths=[str(tmp_path / "silent.mp4")]).pk)
    assert job.status == IngestJob.Status.DONE and (job.done, job.failed) == (1, 0)
    video = corpus.items.get(kind=Item.Kind.VIDEO)
    assert video.metadata["has_audio"] is False
    assert list(video.children.values_list("kind", flat=True)) == ["scene", "scene"]
