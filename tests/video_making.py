"""Test videos: scenes of distinct colours and shapes drawn with Pillow, H.264 and AAC encoded by PyAV.

Each scene has its own background colour (with a fixed grain, so frames are not flat) and its own
shape (circle, stripes, triangle, cross, ...) that drifts a little every frame, so a scene detector
must ignore motion inside a scene and find only the cuts, and image encoders see different pictures.
Speech is espeak-ng's (see tests/speech_audio.py), placed at a given second of an AAC track.
"""
import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageColor, ImageDraw

from .speech_audio import SAMPLE_RATE, _audio_write, spoken

SHAPES = ("circle", "stripes", "triangle", "cross", "square", "diamond")
GRAIN = 6  # +- this much per pixel: texture for the codec and the encoders, far below a scene change


def video_make(path: str | Path | None, *, scenes: list[tuple[str | tuple[int, int, int], float]],
               speech: tuple[str, float] | None = None, size: tuple[int, int] = (160, 120), fps: int = 10,
               rotation: int = 0, container_format: str = "mp4") -> bytes:
    """An MP4 (or another ``container_format``: "mpegts", "matroska"...) with H.264 video of ``scenes`` —
    (colour, seconds) each, a Pillow colour name or an RGB triple — and, with ``speech`` = (text, start_s),
    an AAC track where espeak-ng says ``text`` from ``start_s``.

    Scene ``i`` shows ``SHAPES[i % len(SHAPES)]`` in the left half of its colour. ``rotation`` (degrees
    counterclockwise) is stored for players to apply, as phones store upright videos. Returns the file's
    bytes and writes them to ``path`` too unless it is None.
    """
    width, height = size
    frames_total = sum(round(seconds * fps) for _, seconds in scenes)
    duration_s = frames_total / fps
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = Fraction(1, fps)
        if rotation:
            video.set_display_rotation(rotation)
        audio = container.add_stream("aac", rate=44_100, layout="mono") if speech else None
        index = 0
        for scene_index, (colour, seconds) in enumerate(scenes):
            background = _grained(colour, size, seed=scene_index)
            for step in range(round(seconds * fps)):
                frame = av.VideoFrame.from_image(_with_shape(background, SHAPES[scene_index % len(SHAPES)], step))
                frame.pts = index
                index += 1
                for packet in video.encode(frame):
                    container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        if audio is not None:
            _audio_write(container, audio, _speech_track(*speech, duration_s=duration_s), 44_100)
    data = buffer.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def scene_colour(colour: str | tuple[int, int, int]) -> tuple[int, int, int]:
    """The RGB triple a scene's background has."""
    return ImageColor.getrgb(colour) if isinstance(colour, str) else tuple(colour)


def _grained(colour, size, *, seed: int) -> Image.Image:
    width, height = size
    grain = np.random.default_rng(seed).integers(-GRAIN, GRAIN + 1, (height, width, 1))
    pixels = np.clip(np.array(scene_colour(colour), np.int16) + grain, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def _with_shape(background: Image.Image, shape: str, step: int) -> Image.Image:
    """``shape`` in the left half of the picture, in black or white (whichever contrasts), ``step`` pixels to the right."""
    picture = background.copy()
    draw = ImageDraw.Draw(picture)
    width, height = picture.size
    luma = np.asarray(background, np.float32).mean()
    ink = (0, 0, 0) if luma > 110 else (255, 255, 255)
    side = height // 3
    left, top = width // 10 + step % (width // 8), height // 3
    box = (left, top, left + side, top + side)
    if shape == "circle":
        draw.ellipse(box, fill=ink)
    elif shape == "stripes":
        for row in range(top, top + side, 6):
            draw.rectangle((left, row, left + side, row + 2), fill=ink)
    elif shape == "triangle":
        draw.polygon([(left, top + side), (left + side // 2, top), (left + side, top + side)], fill=ink)
    elif shape == "cross":
        draw.rectangle((left + side // 3, top, left + 2 * side // 3, top + side), fill=ink)
        draw.rectangle((left, top + side // 3, left + side, top + 2 * side // 3), fill=ink)
    elif shape == "square":
        draw.rectangle(box, outline=ink, width=3)
    else:
        draw.polygon([(left + side // 2, top), (left + side, top + side // 2), (left + side // 2, top + side),
                      (left, top + side // 2)], fill=ink)
    return picture


def _speech_track(text: str, start_s: float, *, duration_s: float) -> np.ndarray:
    """Silence as long as the video with ``text`` spoken from ``start_s`` (cut at the video's end)."""
    track = np.zeros(int(duration_s * SAMPLE_RATE), np.float32)
    said = spoken(text)
    start = int(start_s * SAMPLE_RATE)
    end = min(track.size, start + said.size)
    track[start:end] = said[: end - start]
    return track
