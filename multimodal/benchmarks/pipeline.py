"""Benchmarks that print figures: the product's path measured against a baseline in the same run."""
import csv
import io
import statistics
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from faster_whisper import WhisperModel
from PIL import Image

from .. import encoders, speech, store
from ..models import Corpus, IngestJob
from ..query.parse import query_parse
from ..query.types import QueryPart, SearchFilters, SearchQuery
from ..readers.audio import SAMPLE_RATE, audio_decode, wav_encode
from ..readers.tabular import table_read
from ..selectors import search_response
from ..services.embedding import ENCODER_TEXT_CHARS, product_text
from ..services.ingest import Source, items_ingest
from ..services.jobs import job_create_from_paths, job_enqueue, job_run
from .queries import QUERY_SHAPES, query_parts

WORDS = "red green blue bicycle chair wall cat dog tree river house lamp table car boat mountain city night".split()


def _generated_sources(count: int, rng: np.random.Generator) -> list[Source]:
    sources = []
    for index in range(count):
        if index % 2:
            text = " ".join(rng.choice(WORDS, size=6))
            data = f"{text}\n{index}".encode()
            name = f"text-{index}.txt"
        else:
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(buffer, format="PNG")
            data, name = buffer.getvalue(), f"image-{index}.png"
        sources.append(Source(name=name, read=lambda data=data: data, size=len(data)))
    return sources


def _percentiles(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"p50": statistics.median(ordered), "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]}


def _query_parts(count: int, rng: np.random.Generator) -> list[QueryPart]:
    return query_parts(count, rng, words=WORDS, negative_words=WORDS, word_count=3, image_side=48)


def search_benchmark(*, items: int, queries: int, part_counts: list[int], modes: list[str], keep: bool = False,
                     on_progress=None) -> dict:
    """Ingest ``items`` generated items into a fresh corpus, then time queries of 1, 2 and 3 parts.

    For every (number of parts, fusion mode) it runs ``queries`` queries through the product's
    search path (`search_response`) and returns the p50/p95 of each stage it reports (encode per
    modality, keyword, Milvus search per part, fusion, explain, hydrate, total). The baseline is
    an exact numpy scan over the same stored vectors, measured in the same run.
    """
    rng = np.random.default_rng(0)
    corpus = Corpus.objects.create(name=f"bench-{uuid.uuid4().hex[:8]}")
    try:
        started = time.perf_counter()
        report = items_ingest(corpus=corpus, sources=_generated_sources(items, rng), on_progress=on_progress)
        ingest_s = time.perf_counter() - started
        search_response(query=SearchQuery(parts=_query_parts(3, rng), filters=SearchFilters(corpora=[corpus])))  # warm-up
        shapes = {}
        for count in part_counts:
            for mode in modes:
                timings: dict[str, list[float]] = {}
                for _ in range(queries):
                    query = SearchQuery(parts=_query_parts(count, rng), fusion=mode, top_k=10,
                                        filters=SearchFilters(corpora=[corpus]))
                    for name, value in search_response(query=query)["timings_ms"].items():
                        timings.setdefault(name, []).append(value)
                shapes[f"{count} part{'s' if count > 1 else ''} ({QUERY_SHAPES[count]}), {mode}"] = {
                    name: _percentiles(values) for name, values in timings.items()
                }
        matrix = _corpus_matrix(corpus)
        query_vectors = encoders.get().encode_text([" ".join(rng.choice(WORDS, size=3)) for _ in range(queries)])
        numpy_ms = []
        for vector in query_vectors:
            tick = time.perf_counter()
            np.argsort(-(matrix @ vector))[:10]
            numpy_ms.append((time.perf_counter() - tick) * 1000)
        return {
            "items": report.landed,
            "vectors": int(matrix.shape[0]),
            "ingest_items_per_s": report.landed / ingest_s,
            "queries_per_shape": queries,
            "shapes": shapes,
            "numpy_exact_search_ms": _percentiles(numpy_ms),
            "encoder": encoders.get().name,
        }
    finally:
        if not keep:
            corpus.delete()


def _corpus_matrix(corpus: Corpus) -> np.ndarray:
    """The corpus's stored vectors, for the in-memory baseline."""
    collection = store.collection_for(encoders.get())
    stored = collection.vectors(corpus.items.values_list("pk", flat=True))
    return np.vstack([vector for by_modality in stored.values() for vector in by_modality.values()])


def ingest_benchmark(*, images: int, size: int, batch_size: int, via_worker: bool, keep: bool = False,
                     on_progress=None, poll_s: float = 0.2) -> dict:
    """Ingest ``images`` generated JPEGs as a job and compare with the bare encoder on the same files.

    Baselines, measured in this process on the same images with the same batch size: the encoder
    alone on images already decoded, and decode + encode. The job's rate is units over its own
    started→finished time (expansion, hashing, decoding, encoding, database, vector upsert, flush).
    With ``via_worker`` the job goes to the Celery workers (a broker and a running worker sharing
    this database and MILVUS_URI); otherwise it runs here through the same code the task runs.
    """
    encoder = encoders.get()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as directory:
        paths = _jpegs_write(Path(directory), images, size, rng)
        encoder.encode_image([Image.open(paths[0]).convert("RGB")])  # warm-up, not timed
        decoded = [Image.open(path).convert("RGB") for path in paths]
        tick = time.perf_counter()
        for start in range(0, len(decoded), batch_size):
            encoder.encode_image(decoded[start:start + batch_size])
        encoder_s = time.perf_counter() - tick
        del decoded
        tick = time.perf_counter()
        for start in range(0, len(paths), batch_size):
            encoder.encode_image([Image.open(path).convert("RGB") for path in paths[start:start + batch_size]])
        decode_encode_s = time.perf_counter() - tick

        corpus = Corpus.objects.create(name=f"bench-{uuid.uuid4().hex[:8]}")
        try:
            # A one-image job first, so a worker's model load and collection open are not timed.
            _job_complete(corpus, [paths[0]], batch_size, via_worker, poll_s, on_progress=None)
            job = _job_complete(corpus, paths[1:], batch_size, via_worker, poll_s, on_progress=on_progress)
            job_s = (job.finished_at - job.started_at).total_seconds()
            failures = list(job.units.filter(status="failed").values_list("name", "reason")[:5])
        finally:
            if not keep:
                corpus.delete()
    encoder_rate = len(paths) / encoder_s
    job_rate = job.done / job_s if job_s > 0 else float("nan")
    return {
        "encoder": encoder.name,
        "images": len(paths) - 1,
        "size": size,
        "batch_size": batch_size,
        "runner": "celery worker" if via_worker else "in-process (the task's code)",
        "job": {"done": job.done, "failed": job.failed, "seconds": job_s, "items_per_s": job_rate,
                "failures": failures},
        "bare_encoder_items_per_s": encoder_rate,
        "decode_and_encode_items_per_s": len(paths) / decode_encode_s,
        "ratio_vs_bare_encoder": job_rate / encoder_rate,
        "ratio_vs_decode_and_encode": job_rate / (len(paths) / decode_encode_s),
    }


def _jpegs_write(directory: Path, count: int, size: int, rng: np.random.Generator) -> list[Path]:
    """Photo-like JPEGs: smooth colour fields with noise, each different (distinct content hashes)."""
    paths = []
    axis = np.linspace(0, 1, size, dtype=np.float32)
    for index in range(count):
        base = rng.uniform(0, 255, 3).astype(np.float32)
        slope = rng.uniform(-120, 120, (2, 3)).astype(np.float32)
        field = base + axis[:, None, None] * slope[0] + axis[None, :, None] * slope[1]
        pixels = np.clip(field + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
        path = directory / f"photo-{index:05d}.jpg"
        Image.fromarray(pixels).save(path, format="JPEG", quality=88)
        paths.append(path)
    return paths


def _job_complete(corpus, paths, batch_size, via_worker, poll_s, *, on_progress) -> IngestJob:
    job = job_create_from_paths(corpus=corpus, paths=[str(path) for path in paths])
    if not via_worker:
        return job_run(job_id=job.pk, batch_size=batch_size, on_progress=on_progress)
    job_enqueue(job)  # outside a transaction: dispatched at once
    while True:
        job.refresh_from_db()
        if on_progress:
            on_progress(job)
        if job.status in (IngestJob.Status.DONE, IngestJob.Status.FAILED):
            return job
        time.sleep(poll_s)


# A knowledge base's vocabulary: every row draws its own mix, so texts (and content hashes) differ.
CATALOGUE_WORDS = {
    "colour": "red green blue black white grey navy olive amber teal ivory coral".split(),
    "material": "oak walnut steel aluminium brass wool cotton linen leather glass ceramic bamboo".split(),
    "thing": "chair table lamp sofa shelf bench stool desk rug mirror vase clock kettle bicycle helmet".split(),
    "quality": "sturdy light compact foldable hand-made quiet waterproof adjustable stackable vintage modern".split(),
    "use": "garden kitchen office bedroom terrace workshop studio hallway cabin balcony".split(),
}


def _catalogue_write(path: Path, rows: int, rng: np.random.Generator, *, sku_prefix: str = "SKU") -> None:
    """A CSV knowledge base (sku, title, description, specs) of ``rows`` distinct products."""
    words = {role: np.array(values) for role, values in CATALOGUE_WORDS.items()}
    every_word = np.concatenate(list(words.values()))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sku", "title", "description", "specs"])
        for index in range(rows):
            colour, material, thing = (str(rng.choice(words[role])) for role in ("colour", "material", "thing"))
            qualities = " and ".join(rng.choice(words["quality"], size=2, replace=False))
            places = ", ".join(rng.choice(words["use"], size=int(rng.integers(1, 4)), replace=False))
            description = (f"A {qualities} {thing} in {colour} {material}, made for the {places}. "
                           f"{' '.join(rng.choice(every_word, size=int(rng.integers(4, 16))))}.")
            specs = (f"colour: {colour}; material: {material}; weight: {int(rng.integers(200, 40_000))} g; "
                     f"width: {int(rng.integers(10, 250))} cm")
            writer.writerow([f"{sku_prefix}-{index:07d}", f"{colour.title()} {material} {thing}", description, specs])


def csv_ingest_benchmark(*, rows: int, batch_size: int, keep: bool = False, on_progress=None) -> dict:
    """Ingest a generated CSV knowledge base of ``rows`` products as ``manage.py ingest`` does (a job
    run in this process) and compare with the bare text encoder on the same rows, in the same run.

    The baseline encodes the product texts exactly as ingest builds them (`product_text` over the
    rows `table_read` returns) in batches of ``batch_size``, as ingest does. It takes turns with
    the job: after each of the job's batches it encodes the rows that batch has just processed, so
    both figures see the same load on a shared machine; its turns are left out of the job's time.
    The job's rate is rows over its own time (reading the table, decoding, encoding, database,
    vector upsert, flush). The rates over the first and the last 10% of rows (from the job's
    progress after each batch), and their ratios to the baseline's turns on the same rows, show
    whether ingest slows down as the corpus grows.
    """
    encoder = encoders.get()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="bench-ingest-csv-") as directory:
        catalogue, warm_up = Path(directory) / "catalogue.csv", Path(directory) / "warm-up.csv"
        _catalogue_write(catalogue, rows, rng)
        _catalogue_write(warm_up, 1, rng, sku_prefix="WARM-UP")
        texts = [product_text(row.title, row.description, row.specs, row.specs_text)[:ENCODER_TEXT_CHARS]
                 for row in table_read(catalogue, name=catalogue.name, max_rows=rows).rows]
        encoder.encode_text(texts[:batch_size])  # warm-up, not timed
        baseline = {"seconds": 0.0, "rows": 0}
        timeline: list[_Point] = []

        def take_turns(job: IngestJob) -> None:
            job_clock = time.perf_counter() - baseline["seconds"]
            tick = time.perf_counter()
            processed = min(job.processed, len(texts))
            for start in range(baseline["rows"], processed, batch_size):
                encoder.encode_text(texts[start:min(start + batch_size, processed)])
            baseline["rows"] = max(baseline["rows"], processed)
            baseline["seconds"] += time.perf_counter() - tick
            if job.expanded and (not timeline or job.processed != timeline[-1].rows):
                timeline.append(_Point(job_clock, job.processed, baseline["seconds"], baseline["rows"]))
            if on_progress:
                on_progress(job)

        corpus = Corpus.objects.create(name=f"bench-{uuid.uuid4().hex[:8]}")
        try:
            # A one-row job first, so the model load and the collection's creation are not timed.
            job_run(job_id=job_create_from_paths(corpus=corpus, paths=[str(warm_up)]).pk, batch_size=batch_size)
            started = time.perf_counter()
            job = job_create_from_paths(corpus=corpus, paths=[str(catalogue)])
            job = job_run(job_id=job.pk, batch_size=batch_size, on_progress=take_turns)
            job_s = time.perf_counter() - started - baseline["seconds"]
            failures = list(job.units.filter(status="failed").values_list("name", "reason")[:5])
        finally:
            if not keep:
                corpus.delete()
    encoder_rate = _rate(baseline["rows"], baseline["seconds"])
    job_rate = _rate(job.done, job_s)
    (first_rate, first_bare), (last_rate, last_bare) = (_edge_rates(timeline, rows, first=first)
                                                        for first in (True, False))
    return {
        "encoder": encoder.name,
        "rows": rows,
        "batch_size": batch_size,
        "job": {"done": job.done, "failed": job.failed, "seconds": job_s, "items_per_s": job_rate,
                "first_10pct_items_per_s": first_rate, "first_10pct_ratio_vs_bare_encoder": first_rate / first_bare,
                "last_10pct_items_per_s": last_rate, "last_10pct_ratio_vs_bare_encoder": last_rate / last_bare,
                "failures": failures},
        "bare_encoder_rows": baseline["rows"],
        "bare_encoder_items_per_s": encoder_rate,
        "ratio_vs_bare_encoder": job_rate / encoder_rate,
    }


@dataclass(frozen=True)
class _Point:
    """The CSV benchmark after one of the job's batches (and the baseline's turn on its rows)."""

    job_s: float  # the job's own clock: time since an arbitrary start, the baseline's turns left out
    rows: int  # processed by the job
    baseline_s: float  # spent by the baseline so far
    baseline_rows: int  # encoded by the baseline so far


def _rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def _edge_rates(timeline: list[_Point], rows: int, *, first: bool) -> tuple[float, float]:
    """The job's and the baseline's rows per second over the first (or last) tenth of ``rows``, at
    batch granularity.

    ``timeline`` starts when the job begins on its units (after reading the table) and has a point
    after every batch.
    """
    tenth = max(rows // 10, 1)
    start = end = None
    if timeline and first:
        start = timeline[0]
        end = next((point for point in timeline if point.rows - start.rows >= tenth), None)
    elif timeline:
        end = timeline[-1]
        start = next((point for point in reversed(timeline) if end.rows - point.rows >= tenth), None)
    if start is None or end is None:
        return float("nan"), float("nan")
    return (_rate(end.rows - start.rows, end.job_s - start.job_s),
            _rate(end.baseline_rows - start.baseline_rows, end.baseline_s - start.baseline_s))


BENCH_SENTENCES = (
    "A red bicycle is leaning against an old brick wall.",
    "The black cat is sleeping on a green wooden chair.",
    "A small blue boat is sailing across the quiet lake.",
    "Fresh bread and warm coffee are served every morning.",
    "The mountain road is closed because of heavy snow.",
    "Our new kitchen table is made of solid oak.",
    "The children are playing football in the park.",
    "Please turn off the lights when you leave the office.",
    "The train to the city leaves from platform four.",
    "A yellow lamp stands next to the reading chair.",
    "The river floods the meadow every spring.",
    "She planted three apple trees behind the house.",
)


def voice_benchmark(*, queries: int, repeats: int, sentences_per_recording: int = 3, keep: bool = False,
                    on_progress=None) -> dict:
    """Time spoken queries through the product against bare faster-whisper plus a text query.

    Clips are sentences spoken by espeak-ng (needs the system package). Recordings of
    ``sentences_per_recording`` of them with pauses between are ingested first (timed: the
    real-time factor of audio ingest). Then, for each of ``queries`` spoken sentences, ``repeats``
    times and interleaved so they share the machine's state: faster-whisper alone (the same model
    files and transcription options) on the file, with its own decoding, and on samples decoded
    beforehand (the model's time only: the stricter baseline, which ``ratio`` uses); a text query
    for what it heard through `search_response`; and the voice query end to end as the API runs it
    (form, decoding, transcription, encoding, search, hydration). Every model is warm before
    timing. ``top3`` counts voice queries whose top 3 hold the segment playing the sentence.
    """
    model = speech.get()
    if not hasattr(model, "path"):
        raise ValueError(f"the baseline is bare faster-whisper; the configured speech model '{model.name}' is not "
                         f"a faster-whisper model")
    sentences = [BENCH_SENTENCES[index % len(BENCH_SENTENCES)] for index in range(max(queries, 1))]
    clips = [_spoken_samples(sentence) for sentence in sentences]
    recordings, spans = _recordings_join(clips, sentences_per_recording)
    corpus = Corpus.objects.create(name=f"bench-voice-{uuid.uuid4().hex[:8]}")
    try:
        sources = [Source(name=f"recording-{index}.wav", read=lambda data=wav_encode(samples): data)
                   for index, samples in enumerate(recordings)]
        speech_s = sum(samples.size for samples in recordings) / SAMPLE_RATE
        encoders.get().encode_text(["warm-up"])
        started = time.perf_counter()
        report = items_ingest(corpus=corpus, sources=sources, batch_size=1, on_progress=on_progress)
        ingest_s = time.perf_counter() - started
        recording_ids = {item.title: item.pk for item in corpus.items.filter(kind="audio")}
        transcribe_s = sum(item.metadata.get("transcribe_s", 0) for item in corpus.items.filter(kind="audio"))

        bare = WhisperModel(model.path, device=settings.MULTIMODAL_DEVICE,
                            compute_type=settings.MULTIMODAL_SPEECH_COMPUTE_TYPE)
        query_files = [wav_encode(clip) for clip in clips]
        query_samples = [audio_decode(data, max_duration_s=60)[0] for data in query_files]

        def bare_transcribe(audio) -> str:
            pieces, _ = bare.transcribe(io.BytesIO(audio) if isinstance(audio, bytes) else audio, **model.options)
            return " ".join(piece.text.strip() for piece in pieces)

        def text_query(text: str) -> dict:
            return search_response(query=SearchQuery(parts=[QueryPart(type="text", text=text)],
                                                     filters=SearchFilters(corpora=[corpus])))

        def voice_query(data: bytes) -> dict:
            query = query_parse({"corpus": corpus.name, "top_k": 10},
                                {"voice": SimpleUploadedFile("query.wav", data, content_type="audio/wav")})
            return search_response(query=query)

        voice_query(query_files[0])  # warm-up of every stage, not timed
        text_query(bare_transcribe(query_files[0]))
        timings: dict[str, list[float]] = {"bare_file": [], "bare_samples": [], "text_query": [], "voice_query": []}
        top3 = 0
        for _ in range(repeats):
            for index, data in enumerate(query_files):
                tick = time.perf_counter()
                bare_transcribe(data)
                timings["bare_file"].append((time.perf_counter() - tick) * 1000)
                tick = time.perf_counter()
                heard = bare_transcribe(query_samples[index])
                timings["bare_samples"].append((time.perf_counter() - tick) * 1000)
                tick = time.perf_counter()
                text_query(heard)
                timings["text_query"].append((time.perf_counter() - tick) * 1000)
                tick = time.perf_counter()
                results = voice_query(data)["results"]
                timings["voice_query"].append((time.perf_counter() - tick) * 1000)
                recording_id = recording_ids.get(f"recording-{index // sentences_per_recording}")
                spoken_from_s, spoken_to_s = spans[index]
                top3 += any(hit.get("recording", {}).get("id") == recording_id
                            and hit["start_s"] < spoken_to_s and hit["end_s"] > spoken_from_s for hit in results[:3])
        p50 = {name: _percentiles(values)["p50"] for name, values in timings.items()}
        clip_s = [clip.size / SAMPLE_RATE for clip in clips]
        return {
            "speech_model": model.name,
            "encoder": encoders.get().name,
            "queries": len(clips),
            "repeats": repeats,
            "query_audio_s": {"min": min(clip_s), "max": max(clip_s)},
            "ms": {name: _percentiles(values) for name, values in timings.items()},
            "ratio": p50["voice_query"] / (p50["bare_samples"] + p50["text_query"]),
            "ratio_vs_bare_file": p50["voice_query"] / (p50["bare_file"] + p50["text_query"]),
            "top3": top3 / (len(clips) * repeats),
            "ingest": {"recordings": report.landed, "failed": len(report.failures), "audio_s": speech_s,
                       "seconds": ingest_s, "transcribe_s": transcribe_s,
                       "segments": corpus.items.filter(kind="segment").count(),
                       "real_time_factor": ingest_s / speech_s,
                       "transcribe_real_time_factor": transcribe_s / speech_s},
        }
    finally:
        if not keep:
            corpus.delete()


def _recordings_join(clips: list[np.ndarray], per_recording: int) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
    """Clips joined ``per_recording`` at a time with 1.5 s pauses, and each clip's span in its recording."""
    pause = np.zeros(int(1.5 * SAMPLE_RATE), np.float32)
    recordings, spans = [], []
    for start in range(0, len(clips), per_recording):
        pieces, position = [], 0
        for clip in clips[start:start + per_recording]:
            spans.append((position / SAMPLE_RATE, (position + clip.size) / SAMPLE_RATE))
            pieces += [clip, pause]
            position += clip.size + pause.size
        recordings.append(np.concatenate(pieces))
    return recordings, spans


def _spoken_samples(text: str) -> np.ndarray:
    """``text`` spoken by espeak-ng as 16 kHz mono samples."""
    try:
        speech_wav = subprocess.run(["espeak-ng", "--stdout", text], check=True, capture_output=True).stdout
    except FileNotFoundError:
        raise ValueError("espeak-ng is not installed (apt-get install -y espeak-ng): it speaks the benchmark's clips") from None
    samples, _ = audio_decode(speech_wav, max_duration_s=60)
    return samples
