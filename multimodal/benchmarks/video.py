"""Video scenes timed against PyAV decoding every frame of the same file, taking turns in one run, on a
video made here (`manage.py bench_readers`)."""
import io
from fractions import Fraction

import av
import numpy as np

from ..services.ingest import video_scenes_cut
from .turns import Comparison, turns_run

# Backgrounds far apart in hue and brightness, so each cut is a scene change to the detector.
SCENE_COLOURS = ((200, 40, 40), (40, 90, 200), (240, 220, 60), (30, 150, 70), (150, 60, 170), (20, 20, 20))


def scene_video_make(*, seconds: float, scene_s: float = 5.0, size: tuple[int, int] = (640, 360),
                     fps: int = 25) -> bytes:
    """An MP4 (H.264, no sound) ``seconds`` long: a cut every ``scene_s`` seconds to the next of
    SCENE_COLOURS, each a grained background with a white square drifting across it, so frames
    inside a scene move but only the cuts change the picture."""
    width, height = size
    rng = np.random.default_rng(0)
    grain = rng.integers(-6, 7, (height, width, 1), dtype=np.int16)
    backgrounds = [np.clip(np.array(colour, np.int16) + grain, 0, 255).astype(np.uint8) for colour in SCENE_COLOURS]
    side = height // 4
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for index in range(round(seconds * fps)):
            time_s = index / fps
            pixels = backgrounds[int(time_s // scene_s) % len(backgrounds)].copy()
            left = round((time_s % scene_s) / scene_s * (width - side))
            pixels[height // 3:height // 3 + side, left:left + side] = 255
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def video_bench(*, data: bytes, repeats: int = 3) -> Comparison:
    """``video_scenes`` with the site's settings and a plain decode of every frame to an array, in turns."""
    turns = turns_run({
        "tool": lambda: video_scenes_cut(data),
        "bare": lambda: _bare_decode(data),
    }, repeats=repeats)
    found = turns.last["tool"]
    return Comparison(step="video", tool="video_scenes", bare="PyAV decode of every frame", work=found.duration_s,
                      unit="x real time", tool_s=turns.seconds["tool"], bare_s=turns.seconds["bare"],
                      repeats=repeats, input=f"{found.duration_s:.1f} s video of {found.width}x{found.height}",
                      notes=(f"{len(found.scenes)} scenes",))


def _bare_decode(data: bytes) -> None:
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            frame.to_ndarray()
