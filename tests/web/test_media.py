"""Media is served with byte ranges, so browsers can seek a recording to a hit's second."""
import pytest


@pytest.fixture
def recording(settings):
    folder = settings.MEDIA_ROOT / "items"
    folder.mkdir(parents=True)
    data = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 40  # served by its bytes: an MP3's tag
    (folder / "talk.mp3").write_bytes(data)
    return data


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_range_request_gets_206_with_just_those_bytes(client, recording):
    response = client.get("/media/items/talk.mp3", HTTP_RANGE="bytes=100-199")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(recording)}"
    assert response["Accept-Ranges"] == "bytes"
    assert _body(response) == recording[100:200]


def test_open_and_suffix_ranges_and_a_whole_file(client, recording):
    assert _body(client.get("/media/items/talk.mp3", HTTP_RANGE="bytes=10000-")) == recording[10000:]
    assert _body(client.get("/media/items/talk.mp3", HTTP_RANGE="bytes=-5")) == recording[-5:]
    whole = client.get("/media/items/talk.mp3")
    assert whole.status_code == 200 and _body(whole) == recording
    assert whole["Content-Type"] == "audio/mpeg"


def test_a_range_past_the_end_is_416(client, recording):
    response = client.get("/media/items/talk.mp3", HTTP_RANGE=f"bytes={len(recording)}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(recording)}"


def test_paths_outside_media_and_missing_files_are_404(client, recording):
    assert client.get("/media/../settings.py").status_code == 404
    assert client.get("/media/items/%2e%2e/%2e%2e/secret").status_code == 404
    assert client.get("/media/items/missing.mp3").status_code == 404
