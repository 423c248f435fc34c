"""Which runtime made an encoder's vectors, and whether two runtimes' vectors may meet in one collection.

The reference is the model itself in PyTorch at fp32. Any other runtime (ONNX Runtime at fp32, int8 or
fp16) is measured against it once, when its export is made: ``agreement`` is the lowest cosine between
its vectors and the reference's over fixed probe texts and images. A collection records the stamp of
the encoder that created it (`RuntimeStamp.record`), as its name records the model; vectors of another
runtime may be written to it, and queries of another runtime searched in it, only when the two
runtimes are known to agree to MULTIMODAL_ENCODER_AGREEMENT_MIN.
"""
import math
import os
from dataclasses import asdict, dataclass

from django.conf import settings

from .base import EncoderLoadError

RUNTIMES = ("torch", "onnx")
PRECISIONS = ("fp32", "int8", "fp16")


class EncoderRuntimeMismatch(EncoderLoadError):
    """The configured encoder's runtime does not agree closely enough with the one a collection was built with."""


@dataclass(frozen=True)
class RuntimeStamp:
    runtime: str = "torch"
    precision: str = "fp32"
    agreement: float = 1.0  # lowest cosine to the reference (torch fp32) over the probe inputs

    @property
    def label(self) -> str:
        return f"{self.runtime} {self.precision}"

    def record(self) -> dict:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict | None) -> "RuntimeStamp":
        """The stamp a collection recorded; a collection without one was built before runtimes
        existed, by the reference."""
        if not record:
            return REFERENCE
        return cls(runtime=str(record["runtime"]), precision=str(record["precision"]),
                   agreement=float(record["agreement"]))

    def agreement_with(self, other: "RuntimeStamp") -> float:
        """A lower bound on the cosine between this runtime's and ``other``'s vectors of one input.

        Each is within its own angle of the reference; angles on the unit sphere add at most (the
        triangle inequality), so the two are within the sum of both.
        """
        if (self.runtime, self.precision) == (other.runtime, other.precision):
            return 1.0
        angle = sum(math.acos(max(-1.0, min(1.0, stamp.agreement))) for stamp in (self, other))
        return math.cos(min(angle, math.pi))


REFERENCE = RuntimeStamp()


def runtime_of(encoder) -> RuntimeStamp:
    """The encoder's stamp; encoders that declare none (test doubles, plug-ins) are their own reference."""
    return getattr(encoder, "runtime", REFERENCE)


def runtime_check(encoder, recorded: dict | None, collection_name: str) -> None:
    """Raise EncoderRuntimeMismatch unless ``encoder``'s vectors may meet those a collection recorded."""
    built, configured = RuntimeStamp.from_record(recorded), runtime_of(encoder)
    agreement = built.agreement_with(configured)
    if agreement < settings.MULTIMODAL_ENCODER_AGREEMENT_MIN:
        raise EncoderRuntimeMismatch(
            f"the vectors of {encoder.name} in collection {collection_name} were made with {built.label}; "
            f"the configured runtime {configured.label} agrees with that only to cosine {agreement:.4f}, below "
            f"MULTIMODAL_ENCODER_AGREEMENT_MIN ({settings.MULTIMODAL_ENCODER_AGREEMENT_MIN}). Set "
            f"MULTIMODAL_ENCODER_RUNTIME={built.runtime} and MULTIMODAL_ENCODER_PRECISION={built.precision}, "
            f"or rebuild the collection with this runtime: manage.py reindex --drop"
        )


def configured_runtime() -> tuple[str, str]:
    """(runtime, precision) from settings, checked."""
    runtime, precision = settings.MULTIMODAL_ENCODER_RUNTIME, settings.MULTIMODAL_ENCODER_PRECISION
    if runtime not in RUNTIMES:
        raise EncoderLoadError(f"MULTIMODAL_ENCODER_RUNTIME must be one of {', '.join(RUNTIMES)}, not '{runtime}'")
    if precision not in PRECISIONS:
        raise EncoderLoadError(f"MULTIMODAL_ENCODER_PRECISION must be one of {', '.join(PRECISIONS)}, not '{precision}'")
    if runtime == "torch" and precision != "fp32":
        raise EncoderLoadError(f"precision {precision} needs MULTIMODAL_ENCODER_RUNTIME=onnx (torch runs fp32)")
    return runtime, precision


def cpu_threads() -> int:
    """Threads one encoder runs on: MULTIMODAL_ENCODER_THREADS, else the physical cores this process may use
    (a second thread per core only contends for the same vector units)."""
    if settings.MULTIMODAL_ENCODER_THREADS > 0:
        return settings.MULTIMODAL_ENCODER_THREADS
    import psutil

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    physical = psutil.cpu_count(logical=False) or usable
    return max(1, min(usable, physical))
