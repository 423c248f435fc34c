"""Video scenes timed against PyAV decoding every frame of the same file, taking turns in one run."""
import io
import statistics
import time
from dataclasses import dataclass

import av
from django.conf import settings

from ..readers.video import video_scenes


@dataclass(frozen=True)
class VideoBench:
    duration_s: float
    scenes: int
    scenes_s: float  # median seconds video_scenes took
    bare_s: float  # median seconds the bare decode took
    repeats: int

    @property
    def scenes_speed(self) -> float:
        """Seconds of video per second of work (the real-time factor)."""
        return self.duration_s / self.scenes_s

    @property
    def bare_speed(self) -> float:
        return self.duration_s / self.bare_s

    @property
    def ratio(self) -> float:
        return self.scenes_speed / self.bare_speed

    def report(self) -> str:
        return (f"{self.duration_s:.1f} s of video, {self.scenes} scenes, medians of {self.repeats}: "
                f"video_scenes {self.scenes_s:.3f} s = {self.scenes_speed:.1f}x real time; "
                f"bare PyAV decode of every frame {self.bare_s:.3f} s = {self.bare_speed:.1f}x real time "
                f"-> ratio {self.ratio:.2f}")


def video_bench(*, data: bytes, repeats: int = 3) -> VideoBench:
    """``video_scenes`` with the site's settings and a plain decode of every frame to an array, in turns."""
    scenes_times, bare_times = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        found = video_scenes(data, threshold=settings.MULTIMODAL_SCENE_THRESHOLD,
                             min_scene_s=settings.MULTIMODAL_SCENE_MIN_SECONDS,
                             max_scene_s=settings.MULTIMODAL_SCENE_MAX_SECONDS,
                             max_scenes=settings.MULTIMODAL_MAX_SCENES,
                             max_duration_s=settings.MULTIMODAL_MAX_VIDEO_MINUTES * 60)
        scenes_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        _bare_decode(data)
        bare_times.append(time.perf_counter() - started)
    return VideoBench(duration_s=found.duration_s, scenes=len(found.scenes), scenes_s=statistics.median(scenes_times),
                      bare_s=statistics.median(bare_times), repeats=repeats)


def _bare_decode(data: bytes) -> None:
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            frame.to_ndarray()
