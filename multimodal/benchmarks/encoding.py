"""The encoder on each runtime and precision, on the same inputs, in one run (`manage.py bench_encode`).

Each runtime runs in a process of its own (spawned, so its load time and peak memory are its own), and
the processes take turns: every round times each runtime on the same texts, then on the same images,
one runtime at a time, so a busy shared machine slows them alike and the median of the rounds and the
ratios within the run hold. Vectors are compared with PyTorch fp32's (the reference) row by row.
Given a labelled query set, each runtime's process then also encodes a corpus and the set's queries, and
the recall they give is compared with PyTorch fp32's (`encoding_recall`).
"""
from __future__ import annotations

import multiprocessing
import os
import resource
import statistics
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings

if TYPE_CHECKING:  # the runtimes' processes import this module before Django is set up: no models here
    from .encoding_recall import RecallSet

REFERENCE = ("torch", "fp32")
# Settings each runtime's process takes from this one.
RUNNER_SETTINGS = ("MULTIMODAL_DEVICE", "MULTIMODAL_ENCODER_CACHE_DIR", "MULTIMODAL_ENCODER_THREADS")
TITLE_WORDS = ("red green blue black white leather steel wooden cotton wool glass ceramic vintage modern compact "
               "portable wireless waterproof kids men women chair table lamp sofa kettle jacket boots dress camera "
               "bicycle backpack watch phone speaker mug rug shelf desk").split()
BODY_WORDS = ("with for and the a in of to on by from this that comfortable durable lightweight adjustable "
              "easy clean soft strong warm cool everyday travel home office outdoor design quality made "
              "fits holds keeps includes features perfect gift size colour finish").split()


def benchmark_texts(count: int, seed: int = 0) -> list[str]:
    """Product-like texts of catalogue lengths: a third titles (3-6 words), a third short descriptions
    (12-25 words), a third long ones (40-80 words, past CLIP's 77 tokens)."""
    rng = np.random.default_rng(seed)
    texts = []
    for index in range(count):
        low, high = ((3, 7), (12, 26), (40, 81))[index % 3]
        words = list(rng.choice(TITLE_WORDS, size=3)) + list(rng.choice(BODY_WORDS, size=int(rng.integers(low, high)) - 3))
        texts.append(" ".join(words))
    return texts


def benchmark_queries(count: int, seed: int = 1) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(TITLE_WORDS, size=int(rng.integers(1, 4)))) for _ in range(count)]


def benchmark_jpegs(count: int, side: int, seed: int = 0) -> list[bytes]:
    """Photo-like JPEG files (smooth colour fields with edges and noise), each different."""
    import io

    from ..encoders.onnx_export import photo_like_pictures

    files = []
    for picture in photo_like_pictures(count, side, seed=seed):
        buffer = io.BytesIO()
        picture.save(buffer, format="JPEG", quality=88)
        files.append(buffer.getvalue())
    return files


def _runner(connection, spec: str, runtime: str, precision: str, overrides: dict, export_only: bool = False) -> None:
    """A runtime's process: load the encoder, then answer the parent's commands until it says stop (with
    ``export_only``: make the ONNX export if it is missing, and end). ``overrides``: the parent's encoder
    settings (they may not come from the environment)."""
    import django

    django.setup()
    for name, value in overrides.items():
        setattr(settings, name, value)
    try:
        _serve(connection, spec, runtime, precision, export_only)
    except Exception as exc:  # the parent reports it; a silent dead process would leave it waiting
        connection.send(("error", f"{type(exc).__name__}: {exc}"))


def _serve(connection, spec: str, runtime: str, precision: str, export_only: bool) -> None:
    from .. import encoders
    from ..readers.imaging import image_open

    # Imported before the clock starts: load time is the model's, not the libraries'. Only the runtime's
    # own backend: the ONNX runtime imports no torch (the site's processes do not), and peak RSS says so.
    if export_only:
        from ..encoders.onnx_export import export_ensure
    elif runtime == "onnx":
        from ..encoders import onnx_backend  # noqa: F401
    else:
        from ..encoders import open_clip_backend  # noqa: F401

    started = time.perf_counter()
    if export_only:
        export_ensure(spec, precision, device=settings.MULTIMODAL_DEVICE,
                      on_step=lambda message: connection.send(("step", message)))
        connection.send(("done", time.perf_counter() - started))
        return
    encoder = encoders.encoder_build(spec, runtime=runtime, precision=precision)
    load_s = time.perf_counter() - started
    connection.send(("loaded", {"load_s": load_s, "name": encoder.name,
                                "agreement": encoders.runtime_of(encoder).agreement}))
    images = []
    parent = os.getppid()
    while True:
        while not connection.poll(1.0):
            if os.getppid() != parent:  # the benchmark was killed: do not linger
                return
        command, payload = connection.recv()
        if command == "stop":
            return
        if command == "images_decode":
            images = [image_open(data) for data in payload]
            connection.send(("done", None))
        elif command in ("texts", "images"):
            batch_size, texts = payload
            inputs = texts if command == "texts" else images
            encode = encoder.encode_text if command == "texts" else encoder.encode_image
            encode(inputs[:2])  # warm-up, not timed
            started = time.perf_counter()
            vectors = np.vstack([encode(inputs[start:start + batch_size]) for start in range(0, len(inputs), batch_size)])
            connection.send(("done", (time.perf_counter() - started, vectors)))
        elif command == "queries":
            for query in payload[:3]:
                encoder.encode_text([query])  # warm-up
            timings = []
            for query in payload:
                started = time.perf_counter()
                encoder.encode_text([query])
                timings.append((time.perf_counter() - started) * 1000)
            connection.send(("done", timings))
        elif command == "embed":  # a recall set's items or queries, encoded as reindex encodes items
            from ..services.embedding import inputs_encode

            batch_size, inputs = payload
            connection.send(("done", inputs_encode(inputs, encoder=encoder, batch_size=batch_size)))
        elif command == "peak_rss":
            connection.send(("done", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def _exported(spec: str, precision: str) -> bool:
    from ..encoders.onnx_export import MANIFEST, export_folder

    return (export_folder(spec, precision) / MANIFEST).exists()


@dataclass
class _Runtime:
    runtime: str
    precision: str
    process: multiprocessing.Process
    connection: object
    loaded: dict

    @classmethod
    def start(cls, context, spec: str, runtime: str, precision: str, overrides: dict, export_only: bool = False):
        parent, child = context.Pipe()
        process = context.Process(target=_runner, args=(child, spec, runtime, precision, overrides, export_only),
                                  daemon=True)
        process.start()
        return cls(runtime, precision, process, parent, {})

    @property
    def label(self) -> str:
        return f"{self.runtime} {self.precision}"

    def answer(self, on_step=None):
        """The process's next answer (progress messages before it go to ``on_step``)."""
        while True:
            kind, answer = self.connection.recv()
            if kind == "error":
                raise RuntimeError(f"{self.label}: {answer}")
            if kind != "step":
                return answer
            if on_step:
                on_step(f"{self.label}: {answer}")

    def ask(self, command: str, payload=None):
        self.connection.send((command, payload))
        return self.answer()


def _cosines(vectors: np.ndarray, reference: np.ndarray) -> dict:
    values = (vectors * reference).sum(axis=1)
    return {"mean": float(values.mean()), "min": float(values.min())}


def encode_benchmark(*, spec: str, runtimes: list[tuple[str, str]], texts: int, images: int, image_side: int,
                     batch_size: int, repeats: int, queries: int, recall_set: RecallSet | None = None,
                     on_step=None) -> dict:
    """Figures per runtime: texts/s and images/s (median of ``repeats`` rounds), their ratio to PyTorch
    fp32 in the same run, the cosine of each runtime's vectors to PyTorch fp32's (mean, min), a short text
    query's encode time (p50, p90), load time (and the one-off export), and the process's peak RSS.

    With ``recall_set``, after the timings (so they and the peak RSS are unchanged): each runtime, in its
    process, encodes the set's corpus and queries, and its row gets ``evaluate``'s metrics on them (exact
    ranking, `encoding_recall`) and their change from PyTorch fp32's (``evaluation``)."""
    step = on_step or (lambda message: None)
    runtimes = [REFERENCE] + [pair for pair in runtimes if pair != REFERENCE]
    text_inputs, query_inputs = benchmark_texts(texts), benchmark_queries(queries)
    step(f"generating {images} JPEGs of {image_side} px")
    jpegs = benchmark_jpegs(images, image_side)
    overrides = {name: getattr(settings, name) for name in RUNNER_SETTINGS}
    context = multiprocessing.get_context("spawn")
    running: list[_Runtime] = []
    load_before = os.getloadavg()[0]
    try:
        for runtime, precision in runtimes:  # one at a time: loads do not share the cores
            export_s = 0.0
            # A missing export is made in a process of its own: its memory and time are not the runtime's.
            if runtime == "onnx" and not _exported(spec, precision):
                step(f"{runtime} {precision}: exporting")
                exporter = _Runtime.start(context, spec, runtime, precision, overrides, export_only=True)
                export_s = exporter.answer(on_step=step)
                exporter.process.join(timeout=60)
            step(f"loading {runtime} {precision}")
            entry = _Runtime.start(context, spec, runtime, precision, overrides)
            running.append(entry)
            entry.loaded = {**entry.answer(on_step=step), "export_s": export_s}
            entry.ask("images_decode", jpegs)
        seconds = {entry.label: {"texts": [], "images": []} for entry in running}
        vectors = {entry.label: {} for entry in running}
        for round_index in range(repeats):
            for kind, payload, count in (("texts", (batch_size, text_inputs), texts), ("images", (batch_size, None), images)):
                for entry in running:
                    step(f"round {round_index + 1}/{repeats}: {count} {kind} on {entry.label}")
                    elapsed, vectors[entry.label][kind] = entry.ask(kind, payload)
                    seconds[entry.label][kind].append(elapsed)
        rows = []
        reference = vectors[running[0].label]
        for entry in running:
            step(f"{queries} short queries on {entry.label}")
            timings = entry.ask("queries", query_inputs)
            rates = {kind: (texts if kind == "texts" else images) / statistics.median(seconds[entry.label][kind])
                     for kind in ("texts", "images")}
            rows.append({
                "runtime": entry.runtime, "precision": entry.precision, "load_s": entry.loaded["load_s"],
                "export_s": entry.loaded["export_s"], "texts_per_s": rates["texts"], "images_per_s": rates["images"],
                "text_cosine": _cosines(vectors[entry.label]["texts"], reference["texts"]),
                "image_cosine": _cosines(vectors[entry.label]["images"], reference["images"]),
                "query_ms_p50": float(np.percentile(timings, 50)), "query_ms_p90": float(np.percentile(timings, 90)),
                "peak_rss_mb": entry.ask("peak_rss"), "probe_agreement": entry.loaded["agreement"],
            })
        for row in rows:
            row["texts_ratio"] = row["texts_per_s"] / rows[0]["texts_per_s"]
            row["images_ratio"] = row["images_per_s"] / rows[0]["images_per_s"]
        if recall_set is not None:
            _recall_add(recall_set, running, rows, batch_size, step)
    finally:
        for entry in running:
            if entry.process.is_alive():
                entry.connection.send(("stop", None))
            entry.process.join(timeout=30)
    from ..encoders.runtime import cpu_threads

    return {"encoder": running[0].loaded["name"], "texts": texts, "images": images, "image_side": image_side,
            "batch_size": batch_size, "repeats": repeats, "queries": queries, "onnx_threads": cpu_threads(),
            "cpus": os.cpu_count(), "load_average": [load_before, os.getloadavg()[0]],
            "evaluation": recall_set.describe() if recall_set is not None else None, "rows": rows}


def _recall_add(recall_set: RecallSet, running: list[_Runtime], rows: list[dict], batch_size: int, step) -> None:
    """Each row's ``evaluation``: the runtime's metrics on ``recall_set`` and their change from the reference's."""
    from .encoding_recall import recall_measure

    name = recall_set.corpus.name
    for entry, row in zip(running, rows):
        reported = []

        def progress(done: int, total: int, label=entry.label, reported=reported) -> None:
            decile = done * 10 // total
            if decile not in reported:  # a line every tenth of the corpus, not every batch
                reported.append(decile)
                step(f"{label}: encoding corpus '{name}': {done}/{total} items")

        row["evaluation"] = recall_measure(
            recall_set, chunk=batch_size, on_progress=progress,
            encode=lambda inputs, entry=entry: entry.ask("embed", (batch_size, inputs)),
        )
        if row["evaluation"]["failed_items"]:
            step(f"{entry.label}: {row['evaluation']['failed_items']} items of corpus '{name}' could not be read or "
                 f"encoded, and rank nowhere")
    reference = rows[0]["evaluation"]["metrics"]
    for row in rows:
        row["evaluation"]["change"] = {metric: round(value - reference[metric], 4)
                                       for metric, value in row["evaluation"]["metrics"].items()}
