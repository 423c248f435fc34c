"""Recordings become searchable: real Whisper tiny.en transcribes espeak-ng speech into segments."""
import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from multimodal import encoders, store
from multimodal.benchmarks.video import scene_video_make
from multimodal.models import Corpus, IngestJob, Item
from multimodal.query.types import SearchQuery
from multimodal.readers.audio import clock, wav_encode
from multimodal.selectors import search_response
from multimodal.services import ingest as ingest_service
from multimodal.services.indexing import items_reindex
from multimodal.services.jobs import job_create_from_paths, job_run

from ..conftest import image_bytes, ingest_files
from ..speech_audio import SENTENCES, encoded, sentences_with_silence, silent_flac, spoken, word_overlap

pytestmark = pytest.mark.django_db
# Whisper's word times are good to a fraction of a second; passages start 0.2 s before their
# first word so playback does not clip it.
TIMING_TOLERANCE_S = 0.35
PHRASE_OF_THE_SECOND_SENTENCE = "a red bicycle leaning against the wall"


@pytest.fixture(scope="module")
def three_sentences():
    return sentences_with_silence()


def _file(recording, extension: str) -> bytes:
    return wav_encode(recording.samples) if extension == "wav" else encoded(recording.samples, extension)


def _vector_count() -> int:
    return store.collection_for(encoders.get()).count()


# A video's speech (and its scenes) are tested in test_video_ingest.py: an mp4 with pictures is a video item.
@pytest.mark.parametrize("extension", ["wav", "webm", "mp3"])
def test_three_spoken_sentences_become_three_segments_and_a_phrase_plays_the_second(
        extension, three_sentences, deterministic_encoder, client):
    corpus = Corpus.objects.create(name="talks")
    report = ingest_files(corpus, {f"talk.{extension}": _file(three_sentences, extension)})
    assert report.landed == 1 and not report.failures

    recording = corpus.items.get(kind=Item.Kind.AUDIO)
    assert recording.title == "talk" and recording.file.name.endswith(f".{extension}")
    assert recording.metadata["language"] == "en" and recording.metadata["video"] is False
    segments = list(recording.children.order_by("start_s"))
    assert len(segments) == 3
    for segment, (spoken_from_s, spoken_to_s), sentence in zip(segments, three_sentences.spans_s, SENTENCES):
        assert segment.start_s <= spoken_from_s + TIMING_TOLERANCE_S
        assert segment.end_s >= spoken_to_s - TIMING_TOLERANCE_S
        assert word_overlap(segment.text, sentence) >= 0.6, segment.text
    # The recording is searched through its segments: it owns no vector, each segment one.
    assert _vector_count() == 3

    body = client.get("/api/search", {"q": PHRASE_OF_THE_SECOND_SENTENCE, "top_k": 3}).json()
    hit = body["results"][0]
    assert hit["id"] == segments[1].pk and hit["kind"] == "segment"
    second_from_s, second_to_s = three_sentences.spans_s[1]
    assert second_from_s - TIMING_TOLERANCE_S <= hit["start_s"] <= second_to_s
    assert hit["recording"] == {"id": recording.pk, "title": "talk", "detail_url": f"/items/{recording.pk}"}
    assert hit["audio_url"] == f"{recording.file.url}#t={hit['start_s']:.2f}"
    assert hit["detail_url"] == f"/items/{recording.pk}#t={hit['start_s']:.2f}"
    assert "bicycle" in [piece["text"].lower() for piece in hit["highlight"] if piece["match"]]
    assert all(result["kind"] != "audio" for result in body["results"])


def test_ingesting_a_recording_again_updates_its_segments_instead_of_adding_more(
        three_sentences, deterministic_encoder, monkeypatch, settings, django_capture_on_commit_callbacks):
    transcribed = []
    real_transcribe = ingest_service.recording_transcribe
    monkeypatch.setattr(ingest_service, "recording_transcribe",
                        lambda data, **kwargs: transcribed.append(len(data)) or real_transcribe(data, **kwargs))
    corpus = Corpus.objects.create(name="talks")
    data = wav_encode(three_sentences.samples)
    ingest_files(corpus, {"talk.wav": data})
    first_ids = list(Item.objects.filter(kind=Item.Kind.SEGMENT).order_by("pk").values_list("pk", flat=True))
    report = ingest_files(corpus, {"talk.wav": data})
    assert (report.created, report.updated) == (0, 1)
    assert list(Item.objects.filter(kind=Item.Kind.SEGMENT).order_by("pk").values_list("pk", flat=True)) == first_ids
    assert Item.objects.filter(kind=Item.Kind.AUDIO).count() == 1
    assert _vector_count() == 3
    # The unchanged recording kept its transcript: only the first ingest ran the speech model.
    assert len(transcribed) == 1

    # Settings that change the segments make the same bytes be transcribed again, into one passage.
    settings.MULTIMODAL_SEGMENT_MIN_SECONDS = settings.MULTIMODAL_SEGMENT_MAX_SECONDS = 60
    settings.MULTIMODAL_SEGMENT_PAUSE_SECONDS = 60
    with django_capture_on_commit_callbacks(execute=True):  # the surplus segments' vectors go on commit
        ingest_files(corpus, {"talk.wav": data})
    assert len(transcribed) == 2
    assert Item.objects.filter(kind=Item.Kind.SEGMENT).count() == 1 and _vector_count() == 1


def test_deleting_a_recording_removes_its_segments_their_vectors_and_its_file(
        three_sentences, deterministic_encoder, django_capture_on_commit_callbacks):
    corpus = Corpus.objects.create(name="talks")
    ingest_files(corpus, {"talk.wav": wav_encode(three_sentences.samples)})
    recording = Item.objects.get(kind=Item.Kind.AUDIO)
    stored = Path(recording.file.path)
    with django_capture_on_commit_callbacks(execute=True):  # vectors and files go when the delete commits
        recording.delete()
    assert not Item.objects.exists()
    assert _vector_count() == 0
    assert not stored.exists()


def test_reindex_keeps_segment_vectors_and_gives_the_recording_none(three_sentences, deterministic_encoder):
    corpus = Corpus.objects.create(name="talks")
    ingest_files(corpus, {"talk.wav": wav_encode(three_sentences.samples)})
    report = items_reindex(items=Item.objects.all(), drop=True)
    assert not report.failures and report.updated == 3
    assert _vector_count() == 3
    results = search_response(query=SearchQuery(text=PHRASE_OF_THE_SECOND_SENTENCE, top_k=1))["results"]
    assert results[0]["kind"] == "segment" and "bicycle" in results[0]["snippet"].lower()


def test_unusable_audio_files_each_fail_with_a_clear_reason_and_the_rest_land(tmp_path, settings, deterministic_encoder):
    # The limit is lowered to ten minutes; the long files really are twenty minutes of (silent) FLAC. One
    # is refused from its header before a sample is decoded; the other's header does not say, so it is
    # refused once decoding passes the limit (its windows are transcribed as they come: an hour's limit
    # cost six Whisper windows and two hours of FLAC made per file, ~20 s more, to prove the same).
    settings.MULTIMODAL_MAX_RECORDING_SECONDS = 600
    folder = tmp_path / "uploads"
    folder.mkdir()
    (folder / "letter.wav").write_text("Dear customer, this is a text file with a .wav name.")
    (folder / "empty.mp3").write_bytes(b"")
    silent_flac(folder / "twenty-minutes.flac", 1200)
    silent_flac(folder / "streamed-twenty-minutes.flac", 1200, header_duration=False)
    (folder / "video-without-sound.mp4").write_bytes(scene_video_make(seconds=1, size=(32, 32), fps=5))
    (folder / "note.txt").write_text("a red bicycle")
    out = io.StringIO()
    call_command("ingest", str(folder), "--corpus", "mixed", stdout=out, stderr=io.StringIO())
    output = out.getvalue()
    # The video without sound is no recording, yet it lands: a video of its scenes (test_video_ingest.py).
    assert "2 items landed in corpus 'mixed' (2 new, 0 updated), 4 failed" in output
    assert "letter.wav: not audio: the content is not a recording or a video that can be read" in output
    assert "empty.mp3: the file is empty" in output
    assert "/twenty-minutes.flac: too long: 20:00 of audio; the limit is 10:00" in output
    assert "streamed-twenty-minutes.flac: too long: the audio runs past the limit of 10:00" in output
    assert (clock(7200), clock(3600)) == ("2:00:00", "1:00:00")  # longer limits are said with their hours
    assert "video-without-sound.mp4" not in output


def test_a_recording_without_speech_fails_saying_so(deterministic_encoder):
    corpus = Corpus.objects.create(name="quiet")
    report = ingest_files(corpus, {"room-tone.wav": wav_encode(np.zeros(16000 * 3, np.float32))})
    assert [(failure.name, failure.reason) for failure in report.failures] == [
        ("room-tone.wav", "no speech was recognised in the recording")
    ]


def test_a_job_reports_progress_after_each_recording_and_keeps_its_lease(tmp_path, settings, deterministic_encoder):
    # A one-second lease: transcribing must renew it or the job would be lost to another runner.
    settings.MULTIMODAL_JOB_LEASE_S = 1
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.png").write_bytes(image_bytes((255, 0, 0)))
    (folder / "b.wav").write_bytes(wav_encode(spoken(SENTENCES[0])))
    (folder / "c.png").write_bytes(image_bytes((0, 255, 0)))
    (folder / "d.webm").write_bytes(encoded(spoken(SENTENCES[2]), "webm"))
    (folder / "e.png").write_bytes(image_bytes((0, 0, 255)))
    corpus = Corpus.objects.create(name="mixed")
    job = job_create_from_paths(corpus=corpus, paths=[str(folder)])
    seen_done = []
    job = job_run(job_id=job.pk, on_progress=lambda current: seen_done.append(current.done))
    assert job.status == IngestJob.Status.DONE and job.done == 5 and job.failed == 0
    # One batch for the image before each recording, one per recording, one for the last image.
    assert seen_done == [0, 1, 2, 3, 4, 5]
    assert corpus.items.filter(kind=Item.Kind.AUDIO).count() == 2
    assert corpus.items.filter(kind=Item.Kind.SEGMENT).count() == 2


def test_recording_page_plays_the_audio_and_lists_the_transcript_with_timestamps(three_sentences, deterministic_encoder,
                                                                                 client):
    corpus = Corpus.objects.create(name="talks")
    ingest_files(corpus, {"talk.webm": encoded(three_sentences.samples, "webm")})
    recording = Item.objects.get(kind=Item.Kind.AUDIO)
    segments = list(recording.children.order_by("start_s"))
    page = client.get(f"/items/{recording.pk}").content.decode()
    assert f'<audio id="player" class="player" controls preload="metadata" src="{recording.file.url}">' in page
    for segment in segments:
        assert f'href="{recording.file.url}#t={segment.start_s:.2f}" data-start="{segment.start_s:.2f}"' in page
        assert segment.text in page
    assert "multimodal/transcript.js" in page

    segment_page = client.get(f"/items/{segments[1].pk}").content.decode()
    assert f'src="{recording.file.url}#t={segments[1].start_s:.2f}"' in segment_page
    assert f'href="/items/{recording.pk}#t={segments[1].start_s:.2f}"' in segment_page


def test_transcribe_command_prints_timed_passages(tmp_path, three_sentences):
    path = tmp_path / "talk.mp3"
    path.write_bytes(encoded(three_sentences.samples, "mp3"))
    out, err = io.StringIO(), io.StringIO()
    call_command("transcribe", str(path), stdout=out, stderr=err)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[1].startswith("[0:04 – 0:07]") and "bicycle" in lines[1]
    assert "tiny.en, language en: 12.6 s of audio" in err.getvalue()
    assert "12/12" in err.getvalue()  # the progress bar counts seconds of audio

    (tmp_path / "notes.txt").write_text("not audio")
    with pytest.raises(CommandError, match="notes.txt: not audio"):
        call_command("transcribe", str(tmp_path / "notes.txt"), stdout=io.StringIO(), stderr=io.StringIO())
