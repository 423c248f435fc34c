"""Spoken test audio: espeak-ng says the sentences, sox resamples, numpy splices, PyAV encodes.

Nothing here uses the product's own decoder, so a test of the decoder is not graded by itself
(WAV files are written with `multimodal.readers.audio.wav_encode`, the standard library's wave module).
"""
import io
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

SAMPLE_RATE = 16_000
# Each sentence holds words the deterministic encoder knows (cat/chair, red/bicycle/wall, blue),
# so which segment a query finds is exact; Whisper tiny hears these clearly from espeak-ng.
SENTENCES = (
    "The black cat is sleeping on the green chair.",
    "A red bicycle is leaning against the old wall.",
    "The blue boat is sailing across the quiet lake.",
)
SILENCE_S = 2.0
LEAD_S = 0.5


def spoken(text: str) -> np.ndarray:
    """``text`` spoken by espeak-ng, as 16 kHz mono float32 samples."""
    for tool in ("espeak-ng", "sox"):
        assert shutil.which(tool), f"{tool} is not installed (apt-get install -y espeak-ng sox; .ci/run does this)"
    speech_wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    raw = subprocess.run(
        ["sox", "-t", "wav", "-", "-t", "raw", "-r", str(SAMPLE_RATE), "-e", "floating-point", "-b", "32", "-c", "1", "-"],
        input=speech_wav, check=True, capture_output=True,
    ).stdout
    return np.frombuffer(raw, dtype=np.float32).copy()


def speech_span(samples: np.ndarray) -> tuple[int, int]:
    """First and last sample that is not silence (above 2% of the peak)."""
    loud = np.flatnonzero(np.abs(samples) > 0.02 * np.abs(samples).max())
    return int(loud[0]), int(loud[-1]) + 1


@dataclass(frozen=True)
class Recording:
    samples: np.ndarray
    spans_s: list[tuple[float, float]]  # where each sentence is actually heard, in seconds

    @property
    def duration_s(self) -> float:
        return self.samples.size / SAMPLE_RATE


def sentences_with_silence(sentences=SENTENCES, *, silence_s: float = SILENCE_S) -> Recording:
    """The sentences one after another with ``silence_s`` of silence between them."""
    pieces, spans, position = [np.zeros(int(LEAD_S * SAMPLE_RATE), np.float32)], [], int(LEAD_S * SAMPLE_RATE)
    for index, sentence in enumerate(sentences):
        samples = spoken(sentence)
        first, last = speech_span(samples)
        spans.append(((position + first) / SAMPLE_RATE, (position + last) / SAMPLE_RATE))
        pieces.append(samples)
        position += samples.size
        gap = int((silence_s if index < len(sentences) - 1 else LEAD_S) * SAMPLE_RATE)
        pieces.append(np.zeros(gap, np.float32))
        position += gap
    return Recording(np.concatenate(pieces), spans)


# container format, audio codec, sample rate: what browsers record and people upload.
ENCODINGS = {
    "webm": ("webm", "libopus", 48_000),  # Chrome/Firefox MediaRecorder
    "ogg": ("ogg", "libopus", 48_000),
    "mp3": ("mp3", "libmp3lame", 44_100),
    "m4a": ("ipod", "aac", 44_100),  # Safari's recordings, phones
    "flac": ("flac", "flac", 16_000),
}


def encoded(samples: np.ndarray, extension: str) -> bytes:
    """``samples`` encoded as a ``extension`` file (see ENCODINGS), or an MP4 video with sound ("mp4")."""
    if extension == "mp4":
        return _video_with_sound(samples)
    container_format, codec, rate = ENCODINGS[extension]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        _audio_write(container, stream, samples, rate)
    return buffer.getvalue()


def _audio_write(container, stream, samples: np.ndarray, rate: int) -> None:
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=rate)
    frame = av.AudioFrame.from_ndarray((np.clip(samples, -1, 1) * 32767).astype(np.int16)[None, :], format="s16",
                                       layout="mono")
    frame.sample_rate = SAMPLE_RATE
    for converted in resampler.resample(frame) + resampler.resample(None):
        converted.pts = None
        for packet in stream.encode(converted):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def _video_with_sound(samples: np.ndarray, fps: int = 5) -> bytes:
    """An MP4 of grey frames (MPEG-4 video) with ``samples`` as its AAC sound track."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.time_base = Fraction(1, fps)
        audio = container.add_stream("aac", rate=44_100, layout="mono")
        frames = int(samples.size / SAMPLE_RATE * fps) + 1
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), format="rgb24")
            frame.pts = index
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        _audio_write(container, audio, samples, 44_100)
    return buffer.getvalue()


def silent_flac(path, duration_s: float, *, header_duration: bool = True) -> None:
    """Write a real FLAC file of ``duration_s`` of silence, small and quick to make (4 kHz, undithered).

    Without ``header_duration`` it is written through a pipe, so its header does not say how long
    it is (as with recordings streamed from a browser): only decoding finds out.
    """
    command = ["sox", "-D", "-n", "-r", "4000", "-c", "1", "-b", "16", "-t", "flac"]
    if header_duration:
        subprocess.run([*command, str(path), "trim", "0", str(duration_s)], check=True, capture_output=True)
    else:
        path.write_bytes(subprocess.run([*command, "-", "trim", "0", str(duration_s)], check=True,
                                        capture_output=True).stdout)


def word_overlap(heard: str, said: str) -> float:
    """The share of the words said that were heard (case and punctuation ignored)."""
    import re

    said_words = re.findall(r"[a-z']+", said.lower())
    heard_words = set(re.findall(r"[a-z']+", heard.lower()))
    return sum(word in heard_words for word in said_words) / len(said_words)
