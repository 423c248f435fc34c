"""Video scenes from real H.264 files made by the test (PyAV + Pillow + espeak-ng), decoded by real PyAV."""
import numpy as np
import pytest

from multimodal.errors import IngestError
from multimodal.readers.video import VideoTooLongError, has_video_stream, video_scenes

from ..speech_audio import encoded
from ..video_making import scene_colour, video_make

THREE = [("red", 3), ("forestgreen", 3), ("royalblue", 3)]
LIMITS = dict(threshold=27.0, min_scene_s=1.0, max_scene_s=30.0, max_scenes=200, max_duration_s=3600.0)


@pytest.fixture(scope="module")
def three_scenes_with_speech() -> bytes:
    return video_make(None, scenes=THREE, speech=("A red bicycle is leaning against the old wall.", 3.2))


def _scenes(data: bytes, **overrides):
    return video_scenes(data, **{**LIMITS, **overrides})


def _background(picture) -> tuple[int, ...]:
    """The picture's most common colour, per channel median (the shape covers less than a fifth)."""
    return tuple(int(value) for value in np.median(np.asarray(picture).reshape(-1, 3), axis=0))


def test_three_scenes_are_found_with_their_cuts_within_half_a_second_and_the_sound_is_noticed(three_scenes_with_speech):
    found = _scenes(three_scenes_with_speech)
    assert len(found.scenes) == 3
    assert found.scenes[0].start_s == 0.0
    assert found.scenes[1].start_s == pytest.approx(3.0, abs=0.5)
    assert found.scenes[2].start_s == pytest.approx(6.0, abs=0.5)
    assert [scene.end_s for scene in found.scenes[:2]] == [found.scenes[1].start_s, found.scenes[2].start_s]
    assert found.scenes[2].end_s == found.duration_s == pytest.approx(9.0, abs=0.2)
    assert (found.width, found.height, found.has_audio, found.warnings) == (160, 120, True, [])


def test_each_keyframe_shows_its_scenes_colour_in_rgb(three_scenes_with_speech):
    found = _scenes(three_scenes_with_speech)
    for scene, (colour, _) in zip(found.scenes, THREE):
        assert scene.keyframe.mode == "RGB" and scene.keyframe.size == (160, 120)
        assert np.abs(np.subtract(_background(scene.keyframe), scene_colour(colour))).max() <= 24, colour


def test_scenes_of_an_mpeg_ts_video_count_from_its_first_frame_not_from_the_streams_clock():
    found = _scenes(video_make(None, scenes=THREE, container_format="mpegts"))  # its first frame is at 0.2 s
    # Samples fall on the frames at whole quarter seconds, so the cuts are found exactly.
    assert [scene.start_s for scene in found.scenes] == [0.0, pytest.approx(3.0, abs=0.05), pytest.approx(6.0, abs=0.05)]
    assert found.duration_s == pytest.approx(9.0, abs=0.05)


def test_a_raw_h264_stream_without_timestamps_is_timed_by_its_frames_and_stopped_at_the_limit():
    raw = video_make(None, scenes=THREE, fps=25, container_format="h264")  # FFmpeg assumes 25 fps
    found = _scenes(raw)
    assert [scene.start_s for scene in found.scenes] == [0.0, pytest.approx(3.0, abs=0.5), pytest.approx(6.0, abs=0.5)]
    assert found.duration_s == pytest.approx(9.0, abs=0.05)
    # Its header says no length: decoding finds it too long.
    with pytest.raises(VideoTooLongError, match=r"^the video runs past the limit of 5 s$"):
        _scenes(raw, max_duration_s=5.0)


def test_a_large_videos_keyframe_is_at_most_1024_pixels_long_and_its_sound_is_absent():
    found = _scenes(video_make(None, scenes=[("orange", 1)], size=(1280, 720), fps=5))
    assert [scene.keyframe.size for scene in found.scenes] == [(1024, 576)]
    assert (found.width, found.height, found.has_audio) == (1280, 720, False)


def test_a_phone_video_stored_sideways_is_shown_upright():
    found = _scenes(video_make(None, scenes=[("gold", 1)], rotation=-90))  # players turn it 90 degrees clockwise
    keyframe = np.asarray(found.scenes[0].keyframe, np.int16)
    assert (found.width, found.height, found.scenes[0].keyframe.size) == (120, 160, (120, 160))
    # The shape drawn in the stored picture's left half is in the upright picture's top half.
    background = np.array(scene_colour("gold"))
    assert np.abs(keyframe[80:] - background).max(axis=2).mean() < 12
    assert np.abs(keyframe[:80] - background).max(axis=2).mean() > 30


def test_a_long_single_scene_is_split_into_equal_parts_each_with_a_keyframe_and_progress_is_reported():
    data = video_make(None, scenes=[("teal", 40)], size=(64, 48))
    progress = []
    found = _scenes(data, max_scene_s=30.0, on_progress=lambda done_s, total_s: progress.append((done_s, total_s)))
    assert [(scene.start_s, scene.end_s) for scene in found.scenes] == [(0.0, 20.0), (20.0, 40.0)]
    assert all(scene.keyframe.size == (64, 48) for scene in found.scenes)
    assert progress[-1] == (40.0, 40.0) and len(progress) >= 4
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)

    # A scene past twice the maximum hands its first parts over while it is still being read.
    found = _scenes(data, max_scene_s=8.0)
    assert [(scene.start_s, scene.end_s) for scene in found.scenes] == [(8.0 * part, 8.0 * part + 8.0) for part in range(5)]


def test_a_flash_shorter_than_the_minimum_is_no_scene_of_its_own():
    found = _scenes(video_make(None, scenes=[("red", 3), ("white", 0.5), ("royalblue", 3)]), min_scene_s=1.0)
    assert [scene.start_s for scene in found.scenes] == [0.0, pytest.approx(3.0, abs=0.5)]
    assert found.scenes[1].end_s == pytest.approx(6.5, abs=0.2)


def test_past_the_scene_limit_the_first_scenes_are_kept_with_a_warning(three_scenes_with_speech):
    found = _scenes(three_scenes_with_speech, max_scenes=2)
    assert len(found.scenes) == 2
    assert found.warnings == ["only the first 2 scenes were kept; the video after 0:06 has none"]


def test_a_video_longer_than_the_limit_fails_naming_its_length_and_the_limit(three_scenes_with_speech):
    with pytest.raises(VideoTooLongError, match=r"^the video is 9 s long, the limit is 5 s$"):
        _scenes(three_scenes_with_speech, max_duration_s=5.0)


@pytest.mark.parametrize("damage, reason", [
    (lambda data: b"\x00\x01garbage" * 500, r"^the video cannot be read \(Invalid data found when processing input\)$"),
    (lambda data: data[: len(data) // 2], r"^the video cannot be read \(.+\)$"),
    (lambda data: b"", r"^the file is empty$"),
])
def test_a_corrupt_video_fails_with_its_reason(three_scenes_with_speech, damage, reason):
    with pytest.raises(IngestError, match=reason):
        _scenes(damage(three_scenes_with_speech))


def test_a_file_with_sound_only_has_no_video_stream(three_scenes_with_speech):
    sound = encoded(np.zeros(16_000, np.float32), "m4a")
    with pytest.raises(IngestError, match=r"^no video stream$"):
        _scenes(sound)
    assert not has_video_stream(sound)
    assert not has_video_stream(b"not a video at all")
    assert has_video_stream(three_scenes_with_speech)
