"""Cutting untrusted videos into scenes, each with its start and end second and a keyframe.

PyAV decodes from memory. Frames other frames are built from must be decoded; the rest are skipped,
and only a few per second are sampled: each sample is shrunk to a tiny HSV picture, and a cut is
where two samples in a row differ by more than a threshold (the mean change of hue, saturation and
brightness on a 0–255 scale, as PySceneDetect's content detector measures it). Cuts closer than
``min_scene_s`` to the last one are ignored (flashes, fast montage), and a scene longer than
``max_scene_s`` is split into parts, each with its own keyframe.

Memory stays flat however long the video is: only the scene being read holds frames, a few keyframe
candidates (thinned to every other one when they get too many), and a long scene hands its first
parts over as soon as they are certain.
"""
import io
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from ..errors import IngestError
from .audio import _header_duration_s, _reason, clock

SAMPLES_PER_S = 4
KEYFRAME_PX = 1024
# Samples are compared at this size: enough for a colour or layout change, cheap to make.
DIFF_SIZE = (64, 36)
MAX_CANDIDATES = 16
# Containers round their durations; a video this much over the limit is still accepted.
DURATION_TOLERANCE_S = 0.5
PROGRESS_EVERY_S = 10.0


class VideoTooLongError(IngestError):
    """A video longer than the limit: its sound is no shorter, so it cannot be read as a recording either."""


@dataclass
class Scene:
    start_s: float
    end_s: float
    keyframe: Image.Image  # RGB, long side <= KEYFRAME_PX: the sampled frame nearest the scene's middle


@dataclass
class VideoScenes:
    scenes: list[Scene]
    duration_s: float
    width: int  # as shown (a phone video recorded upright is taller than wide)
    height: int
    has_audio: bool
    warnings: list[str] = field(default_factory=list)


def has_video_stream(data: bytes) -> bool:
    """Whether ``data`` opens as a container with a moving picture (an audio file's cover art is not one)."""
    try:
        with av.open(io.BytesIO(data), metadata_errors="ignore") as container:
            return _video_stream(container) is not None
    except (av.FFmpegError, UnicodeDecodeError):
        return False


def video_scenes(data: bytes, *, threshold: float, min_scene_s: float, max_scene_s: float, max_scenes: int,
                 max_duration_s: float, on_progress: Callable[[float, float], None] | None = None) -> VideoScenes:
    """The scenes of the video in ``data``, in order, covering it from 0 to its end.

    Raises IngestError when the file is empty, cannot be read ("the video cannot be read (...)"), has
    no video stream ("no video stream": the caller may treat it as audio), its video stream is damaged
    or holds no decodable frame; VideoTooLongError (an IngestError) when it is longer than
    ``max_duration_s`` ("the video is 2 h 3 min long, the limit is 60 min"). Past
    ``max_scenes`` scenes decoding stops and a warning says so. ``on_progress(done_s, total_s)`` is
    called every ``PROGRESS_EVERY_S`` seconds of video and at the end; ``total_s`` is the header's
    duration (or ``done_s`` when the header does not say).
    """
    if not data:
        raise IngestError("the file is empty")
    try:
        container = av.open(io.BytesIO(data), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise IngestError(f"the video cannot be read ({_reason(exc)})") from None
    with container:
        stream = _video_stream(container)
        if stream is None:
            raise IngestError("no video stream")
        header_s = _header_duration_s(container, stream)
        if header_s is not None and header_s > max_duration_s + DURATION_TOLERANCE_S:
            raise VideoTooLongError(f"the video is {_length(header_s)} long, the limit is {_length(max_duration_s)}")
        stream.thread_type = "AUTO"
        # Times count from the first frame, as players seek (an MPEG-TS stream starts at 1.4 s or so).
        start_s = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        cutter = _SceneCutter(threshold=threshold, min_scene_s=min_scene_s, max_scene_s=max_scene_s,
                              max_scenes=max_scenes)
        frame_s = 1 / float(stream.average_rate) if stream.average_rate else 1 / SAMPLES_PER_S
        next_sample_s = next_progress_s = 0.0
        end_s = 0.0
        shown_size = None
        try:
            for frame in _frames(container, stream):
                time_s = frame.time - start_s if frame.time is not None else end_s
                end_s = max(end_s, time_s + frame_s)
                if time_s > max_duration_s + DURATION_TOLERANCE_S:
                    raise VideoTooLongError(f"the video runs past the limit of {_length(max_duration_s)}")
                if time_s < next_sample_s:
                    continue
                next_sample_s = (math.floor(time_s * SAMPLES_PER_S) + 1) / SAMPLES_PER_S
                shown_size = shown_size or _shown_size(frame)
                if not cutter.add(time_s, frame):
                    break
                if on_progress is not None and time_s >= next_progress_s:
                    on_progress(time_s, header_s or time_s)
                    next_progress_s = time_s + PROGRESS_EVERY_S
        except av.FFmpegError as exc:
            raise IngestError(f"the video stream is damaged after {_length(end_s)} ({_reason(exc)})") from None
        if shown_size is None:
            raise IngestError("the video holds no frame that can be decoded")
        # Skipped frames at the end, or decoding stopped at the scene limit: the header knows better.
        duration_s = max(end_s, header_s or 0.0)
        scenes, warnings = cutter.finish(duration_s)
        if on_progress is not None:
            on_progress(duration_s, duration_s)
        return VideoScenes(scenes=scenes, duration_s=duration_s, width=shown_size[0], height=shown_size[1],
                           has_audio=bool(container.streams.audio), warnings=warnings)


class _SceneCutter:
    """Takes samples in time order; keeps the finished scenes and the open one's keyframe candidates."""

    def __init__(self, *, threshold: float, min_scene_s: float, max_scene_s: float, max_scenes: int):
        self.threshold, self.min_scene_s, self.max_scene_s, self.max_scenes = threshold, min_scene_s, max_scene_s, max_scenes
        self.scenes: list[Scene] = []
        self.start_s = 0.0
        self.candidates: list[_Candidate] = []
        self.candidate_every = 1  # keep every n-th sample of the open scene; doubles when thinned
        self.samples_in_scene = 0
        self.previous: np.ndarray | None = None
        self.stopped = False
        # One scaling context each for the tiny samples and the large keyframes, reused (not one per frame).
        self.shrinker, self.keyframe_scaler = VideoReformatter(), VideoReformatter()

    def add(self, time_s: float, frame: av.VideoFrame) -> bool:
        """Take one sample; False once ``max_scenes`` scenes are done and the rest need not be decoded."""
        small = self._hsv(frame)
        if self.previous is not None and time_s - self.start_s >= self.min_scene_s \
                and _difference(self.previous, small) > self.threshold:
            self._close(time_s)
        self.previous = small
        if len(self.scenes) >= self.max_scenes:
            self.stopped = True
            return False
        while time_s - self.start_s >= 2 * self.max_scene_s:
            # The open scene will be split anyway: its first part is final, so it leaves memory now.
            self._commit(self.start_s, self.start_s + self.max_scene_s)
            if len(self.scenes) >= self.max_scenes:
                self.stopped = True
                return False
        if self.samples_in_scene % self.candidate_every == 0:
            self.candidates.append(_Candidate.of(time_s, frame, self.keyframe_scaler))
            if len(self.candidates) > MAX_CANDIDATES:
                self.candidates = self.candidates[::2]
                self.candidate_every *= 2
        self.samples_in_scene += 1
        return True

    def _hsv(self, frame: av.VideoFrame) -> np.ndarray:
        small = self.shrinker.reformat(frame, width=DIFF_SIZE[0], height=DIFF_SIZE[1], format="rgb24",
                                       interpolation="AREA").to_ndarray()
        return np.asarray(Image.fromarray(small, "RGB").convert("HSV"), np.int16)

    def finish(self, end_s: float) -> tuple[list[Scene], list[str]]:
        """The scenes, the open one closed at ``end_s``, and warnings for the user."""
        if not self.stopped and self.candidates:
            if end_s - self.start_s < self.min_scene_s and self.scenes:
                self.scenes[-1].end_s = end_s  # a last moment too short to be a scene of its own
            else:
                self._close(end_s)
        if not self.stopped and len(self.scenes) <= self.max_scenes:
            return self.scenes, []
        del self.scenes[self.max_scenes:]
        return self.scenes, [f"only the first {self.max_scenes} scenes were kept; the video after "
                             f"{clock(self.scenes[-1].end_s if self.scenes else 0)} has none"]

    def _close(self, end_s: float) -> None:
        """End the open scene at ``end_s``: one scene, or equal parts of at most ``max_scene_s``."""
        parts = max(1, math.ceil((end_s - self.start_s) / self.max_scene_s - 1e-9))
        part_s = (end_s - self.start_s) / parts
        for part in range(parts):
            self._commit(self.start_s, end_s if part == parts - 1 else self.start_s + part_s)
        self.candidates, self.candidate_every, self.samples_in_scene = [], 1, 0

    def _commit(self, start_s: float, end_s: float) -> None:
        middle_s = (start_s + end_s) / 2
        chosen = min(self.candidates, key=lambda candidate: abs(candidate.time_s - middle_s))
        self.scenes.append(Scene(start_s=start_s, end_s=end_s, keyframe=chosen.image()))
        self.candidates = [candidate for candidate in self.candidates if candidate.time_s >= end_s] or [chosen]
        self.start_s = end_s


def _frames(container, stream) -> Iterator[av.VideoFrame]:
    """The stream's frames in order, except those no other frame is built from (most B-frames): samples
    a quarter second apart do not need them, and the first frame after a cut is always a reference
    frame. A stream without timestamps (raw H.264) is decoded whole: its time is its frame count."""
    first = True
    for packet in container.demux(stream):
        if first and packet.size:
            first = False
            if packet.pts is not None:
                stream.codec_context.skip_frame = "NONREF"
        yield from packet.decode()


def _video_stream(container):
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


def _difference(before: np.ndarray, after: np.ndarray) -> float:
    """Mean change of hue (the shorter way round the colour circle), saturation and value, 0–255."""
    change = np.abs(after - before)
    change[..., 0] = np.minimum(change[..., 0], 256 - change[..., 0])
    return float(change.mean())


@dataclass
class _Candidate:
    """A sampled frame that may become a keyframe, kept as decoded (YUV, shared with the decoder, no copy
    when it is small enough): only the chosen few are ever converted to RGB pictures."""
    time_s: float
    frame: av.VideoFrame
    rotation: int

    @classmethod
    def of(cls, time_s: float, frame: av.VideoFrame, reformatter: VideoReformatter) -> "_Candidate":
        scale = KEYFRAME_PX / max(frame.width, frame.height)
        kept = frame if scale >= 1 else reformatter.reformat(
            frame, width=max(2, round(frame.width * scale)), height=max(2, round(frame.height * scale)), interpolation="AREA")
        return cls(time_s, kept, frame.rotation)

    def image(self) -> Image.Image:
        """RGB, as players show it: phones store upright videos sideways with a rotation to apply."""
        picture = self.frame.to_image()
        turns = round(self.rotation / 90) % 4
        return picture.rotate(90 * turns, expand=True) if turns else picture


def _shown_size(frame: av.VideoFrame) -> tuple[int, int]:
    return (frame.height, frame.width) if round(frame.rotation / 90) % 2 else (frame.width, frame.height)


def _length(seconds: float) -> str:
    """A length as people say it: "2.5 s", "45 s", "12 min 5 s", "60 min", "2 h 3 min 10 s"."""
    if seconds < 10:
        return f"{seconds:.1f}".removesuffix(".0") + " s"
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if (hours, minutes, secs) == (1, 0, 0):
        hours, minutes = 0, 60  # limits are set in minutes
    return " ".join(f"{value} {unit}" for value, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if value)
