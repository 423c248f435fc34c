"""Images and recordings kept for a browser session, so a query names them by ref in its URL."""
import json
import os
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from multimodal.models import Corpus

from ..conftest import image_bytes, ingest_files

pytestmark = pytest.mark.django_db

WAV_HEAD = b"RIFF\x24\x00\x00\x00WAVEfmt "


@pytest.fixture
def corpus(deterministic_encoder):
    corpus = Corpus.objects.create(name="site")
    ingest_files(corpus, {"red.png": image_bytes((255, 0, 0)), "blue.png": image_bytes((0, 0, 255)),
                          "note.txt": b"a red bicycle against a wall"})
    return corpus


def upload(client, data: bytes, name="photo.png", part_type="image"):
    return client.post("/query-uploads", {"type": part_type, "file": SimpleUploadedFile(name, data)})


def parts_url(*parts, **params) -> str:
    return "/?" + "&".join([f"parts={json.dumps(list(parts))}"] + [f"{key}={value}" for key, value in params.items()])


def test_an_uploaded_image_is_kept_once_outside_media_and_searched_by_ref(client, corpus, settings):
    first = upload(client, image_bytes((250, 0, 0)))
    assert first.status_code == 201
    body = first.json()
    assert body["type"] == "image" and body["name"] == "photo.png" and body["ref"]
    again = upload(client, image_bytes((250, 0, 0)), name="same.png").json()
    assert again["ref"] != body["ref"]
    kept = sorted(path.name for path in (settings.MULTIMODAL_UPLOAD_ROOT / "query").iterdir())
    assert len(kept) == 2 and kept[1].endswith(".preview.jpg")  # the bytes once, and their preview
    assert not list(settings.MEDIA_ROOT.rglob(kept[0]))

    preview = client.get(body["preview_url"])
    assert preview.status_code == 200 and preview["Content-Type"] == "image/jpeg"
    assert b"".join(preview.streaming_content).startswith(b"\xff\xd8")

    page = client.get(parts_url({"type": "image", "ref": body["ref"]}, hybrid="false"))
    assert page.status_code == 200
    assert page.content.decode().index(">red<") < page.content.decode().index(">blue<")


def test_a_ref_only_resolves_in_the_session_that_uploaded_it(client, corpus):
    ref = upload(client, image_bytes((250, 0, 0))).json()["ref"]
    stranger = Client()
    page = stranger.get(parts_url({"type": "image", "ref": ref}))
    assert page.status_code == 400
    assert "no longer kept on the server: add it again" in page.content.decode()
    assert stranger.get(f"/query-uploads/{ref}").status_code == 404
    api = stranger.post("/api/search", {"parts": json.dumps([{"type": "image", "ref": ref}])})
    assert api.status_code == 400
    assert "names a file uploaded in the search page" in api.json()["error"]


@pytest.mark.parametrize(("data", "name", "part_type", "status", "message"), [
    (b"x" * (1024 * 1024 + 1), "big.png", "image", 413, "big.png: the image is 1.0 MB; the limit is 1 MB"),
    (b"not an image", "fake.png", "image", 415, "fake.png: not an image"),
    (b"hello, I am text", "speech.wav", "voice", 415, "speech.wav: not a recording that can be read"),
    (b"", "empty.png", "image", 415, "empty.png: the file is empty"),
    (b"abc", "a.png", "video", 400, "type must be one of image, voice"),
])
def test_bad_uploads_get_a_status_and_a_message(client, corpus, settings, data, name, part_type, status, message):
    settings.MULTIMODAL_MAX_QUERY_IMAGE_MB = 1
    response = upload(client, data, name=name, part_type=part_type)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert client.post("/query-uploads", {"type": "image"}).json() == {"error": "no file was sent (field 'file')"}
    assert client.get("/query-uploads").status_code == 405


def test_uploads_need_the_csrf_token(corpus):
    client = Client(enforce_csrf_checks=True)
    assert upload(client, image_bytes()).status_code == 403


def test_a_recording_is_transcribed_once_then_its_transcript_is_reused(client, corpus, monkeypatch):
    from multimodal.services import voice

    heard = []

    def transcribe(audio: bytes, *, name: str) -> dict:
        heard.append(name)
        return {"text": "red bicycle", "language": "en", "duration_s": 1.5, "transcribe_ms": 12.0, "model": "fake"}

    monkeypatch.setattr(voice, "voice_transcribe", transcribe)
    body = upload(client, WAV_HEAD + b"\x00" * 64, name="recording.wav", part_type="voice").json()
    assert body["type"] == "voice" and body["preview_url"] is None
    url = parts_url({"type": "voice", "ref": body["ref"]}, top_k=1)
    first = client.get(url).content.decode()
    assert "You said: <q class=\"transcript\">red bicycle</q>" in first
    second = client.get(url + "&page=2")
    assert second.status_code == 200
    assert heard == ["recording.wav"]
    assert client.get(f"/query-uploads/{body['ref']}").status_code == 404  # recordings have no preview
    image_ref = upload(client, image_bytes()).json()["ref"]
    mismatch = client.get(parts_url({"type": "voice", "ref": image_ref}))
    assert "The uploaded file is image input, not voice input" in mismatch.content.decode()  # no "part 0:" for people


def test_a_session_keeps_its_newest_refs_and_old_files_are_pruned(client, corpus, settings):
    settings.MULTIMODAL_QUERY_UPLOADS_PER_SESSION = 2
    refs = [upload(client, image_bytes((index, 0, 0))).json()["ref"] for index in range(3)]
    assert client.get(f"/query-uploads/{refs[0]}").status_code == 404
    assert all(client.get(f"/query-uploads/{ref}").status_code == 200 for ref in refs[1:])
    folder = settings.MULTIMODAL_UPLOAD_ROOT / "query"
    stale = time.time() - settings.MULTIMODAL_QUERY_UPLOAD_TTL_H * 3600 - 60
    for path in folder.iterdir():
        os.utime(path, (stale, stale))
    upload(client, image_bytes((9, 9, 9)))
    assert len(list(folder.iterdir())) == 2
    page = client.get(parts_url({"type": "image", "ref": refs[2]}))
    assert "no longer kept on the server" in page.content.decode()


def test_pages_carry_a_strict_content_security_policy(client, corpus):
    policy = client.get("/")["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    # The API docs get one too (issue 17): scripts from static files only, inline styles allowed there.
    assert "script-src 'self';" in client.get("/api/docs")["Content-Security-Policy"]
