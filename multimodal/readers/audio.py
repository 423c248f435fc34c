"""Reading untrusted audio, and the audio track of videos, as 16 kHz mono float32 samples.

PyAV bundles FFmpeg, so WAV, FLAC, MP3, Ogg (Vorbis, Opus), M4A/AAC, WebM (what browsers'
MediaRecorder makes) and the sound of MP4/MKV/MOV/AVI videos decode with no system packages. Samples
come out in blocks, so a long recording is never held whole. Its length is checked against the
limit from the container header when the header says, and again while decoding, because some
files do not say (MediaRecorder's WebM has no duration) and headers can lie.
"""
import io
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import UserInputError

SAMPLE_RATE = 16_000
BLOCK_S = 30.0
# Containers round their durations; a file this much over the limit is still accepted.
DURATION_TOLERANCE_S = 0.5


class AudioError(UserInputError):
    """A file that cannot be used as audio: empty, not audio, damaged, or too long."""


@dataclass(frozen=True)
class AudioInfo:
    duration_s: float | None  # from the container header; None when the header does not say
    codec: str
    container: str
    source_sample_rate: int
    source_channels: int
    has_video: bool

    def as_metadata(self) -> dict:
        return {"codec": self.codec, "container": self.container, "sample_rate": self.source_sample_rate,
                "channels": self.source_channels, "video": self.has_video}


def clock(seconds: float) -> str:
    """A time as people read it: "0:07", "12:05", "1:02:03" (whole seconds, rounded down)."""
    total = int(max(seconds, 0))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class AudioReader:
    """An opened recording: ``info`` at once, samples from ``blocks()``. Use it as a context manager.

    ``source`` is the file's bytes or its path. Raises AudioError when the file is empty, is neither
    audio nor a video with sound, or its header says it is longer than ``max_duration_s``.
    """

    def __init__(self, source: bytes | str | Path, *, max_duration_s: float):
        self.max_duration_s = max_duration_s
        if isinstance(source, bytes):
            if not source:
                raise AudioError("the file is empty")
            opened = io.BytesIO(source)
        else:
            if Path(source).stat().st_size == 0:
                raise AudioError("the file is empty")
            opened = str(source)
        try:
            self._container = av.open(opened, metadata_errors="ignore")
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise AudioError(f"not audio: the content is not a recording or a video that can be read ({_reason(exc)})") from None
        if not self._container.streams.audio:
            has_video = bool(self._container.streams.video)
            self._container.close()
            raise AudioError("no sound: the video has no audio track" if has_video else "not audio: no audio track found")
        self._stream = self._container.streams.audio[0]
        self.info = AudioInfo(
            duration_s=_header_duration_s(self._container, self._stream),
            codec=self._stream.codec_context.name,
            container=self._container.format.name,
            source_sample_rate=self._stream.codec_context.sample_rate or 0,
            source_channels=self._stream.codec_context.channels or 0,
            has_video=bool(self._container.streams.video),
        )
        if self.info.duration_s is not None and self.info.duration_s > max_duration_s + DURATION_TOLERANCE_S:
            self._container.close()
            raise AudioError(_too_long(self.info.duration_s, max_duration_s))

    def __enter__(self) -> "AudioReader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._container.close()

    def blocks(self, *, block_s: float = BLOCK_S) -> Iterator[np.ndarray]:
        """Float32 mono samples at ``SAMPLE_RATE``, about ``block_s`` seconds per block, in order.

        Raises AudioError if the stream is damaged, holds no samples, or runs past the limit.
        """
        resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
        block_samples = int(block_s * SAMPLE_RATE)
        limit_samples = int((self.max_duration_s + DURATION_TOLERANCE_S) * SAMPLE_RATE)
        pending: list[np.ndarray] = []
        pending_samples = decoded_samples = 0
        try:
            for packet in self._container.demux(self._stream):
                for frame in packet.decode():
                    # Timestamps of recorded WebM can jump; the resampler only needs the samples.
                    frame.pts = None
                    for converted in resampler.resample(frame):
                        pending.append(converted.to_ndarray().reshape(-1))
                        pending_samples += pending[-1].size
                        decoded_samples += pending[-1].size
                    if decoded_samples > limit_samples:
                        raise AudioError(f"too long: the audio runs past the limit of {clock(self.max_duration_s)}")
                    if pending_samples >= block_samples:
                        yield np.concatenate(pending)
                        pending, pending_samples = [], 0
            for converted in resampler.resample(None):
                pending.append(converted.to_ndarray().reshape(-1))
                decoded_samples += pending[-1].size
        except av.FFmpegError as exc:
            raise AudioError(f"the audio is damaged after {clock(decoded_samples / SAMPLE_RATE)} ({_reason(exc)})") from None
        if not decoded_samples:
            raise AudioError("no sound: the file holds no audio samples")
        if pending:
            yield np.concatenate(pending)


def audio_decode(source: bytes | str | Path, *, max_duration_s: float) -> tuple[np.ndarray, AudioInfo]:
    """The whole recording as one array (for short audio such as spoken queries), and its info."""
    with AudioReader(source, max_duration_s=max_duration_s) as reader:
        return np.concatenate(list(reader.blocks())), reader.info


def wav_encode(samples: np.ndarray) -> bytes:
    """Mono float samples at ``SAMPLE_RATE`` as a 16-bit WAV file."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def _header_duration_s(container, stream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _too_long(duration_s: float, max_duration_s: float) -> str:
    return f"too long: {clock(duration_s)} of audio; the limit is {clock(max_duration_s)}"


def _reason(exc: Exception) -> str:
    """FFmpeg's own words without its errno and file name: 'Invalid data found when processing input'."""
    return getattr(exc, "strerror", None) or str(exc)
