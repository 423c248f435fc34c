import os
import platform

from django.core.management.base import BaseCommand, CommandError

from ... import encoders
from ...benchmarks.documents import document_ingest_bench, documents_bench, pdf_make
from ...benchmarks.ocr import ocr_bench
from ...benchmarks.turns import Comparison
from ...benchmarks.video import scene_video_make, video_bench
from ...services.ingest import CHILD_IMAGE_PX

STEPS = ("documents", "ocr", "video", "ingest")


class Command(BaseCommand):
    help = (
        "Time the readers against their bare tools on the same inputs, taking turns in one run, medians "
        "of --repeats (aim: ratio >= 0.7): documents = document_read against a pypdfium2 loop (text "
        "layer + one rendering per page) on a generated PDF of --pages pages; ocr = image_ocr against "
        "pytesseract.image_to_string on a rendered page; video = video_scenes against PyAV decoding "
        "every frame of a generated video of --video-seconds seconds; ingest = the same PDF ingested "
        "through the ingest service with the configured encoder into a throw-away corpus (deleted at "
        "the end) against document_read alone, with passages per document and pages read by OCR. "
        "Prints a table (ratio: the tool's speed over the bare tool's) and the machine it ran on."
    )

    def add_arguments(self, parser):
        parser.add_argument("--pages", type=int, default=50, help="pages of the generated PDF (default 50)")
        parser.add_argument("--repeats", type=int, default=3, help="runs of each contender; medians (default 3)")
        parser.add_argument("--video-seconds", type=int, default=60,
                            help="length of the generated video (default 60; a cut every 5 s)")
        parser.add_argument("--ocr-lines", type=int, default=None,
                            help="lines of text on the rendered 1024-px OCR page (default: a full page, ~360 words)")
        parser.add_argument("--only", default=",".join(STEPS), help=f"steps to run, of {','.join(STEPS)} (default all)")

    def handle(self, *args, pages, repeats, video_seconds, ocr_lines, only, **options):
        steps = [step.strip() for step in only.split(",") if step.strip()]
        if not steps or set(steps) - set(STEPS):
            raise CommandError(f"--only: use some of {', '.join(STEPS)}")
        if min(pages, repeats, video_seconds) < 1:
            raise CommandError("--pages, --repeats and --video-seconds must be at least 1")
        if ocr_lines is not None and ocr_lines < 1:
            raise CommandError("--ocr-lines must be at least 1")
        load_before = os.getloadavg()
        pdf = pdf_make(pages) if {"documents", "ingest"} & set(steps) else b""
        benches = {
            "documents": lambda: documents_bench(data=pdf, render_px=CHILD_IMAGE_PX, repeats=repeats),
            "ocr": lambda: ocr_bench(max_lines=ocr_lines, repeats=repeats),
            "video": lambda: video_bench(data=scene_video_make(seconds=video_seconds), repeats=repeats),
            "ingest": lambda: document_ingest_bench(data=pdf, repeats=repeats),
        }
        results = []
        for number, step in enumerate(steps, 1):
            self.stderr.write(f"[{number}/{len(steps)}] {step} ...")
            results.append(benches[step]())
            self.stderr.write(f"[{number}/{len(steps)}] {step}: ratio {results[-1].ratio:.2f}")
        self._table(results)
        self._machine(load_before, with_encoder="ingest" in steps)

    def _table(self, results: list[Comparison]) -> None:
        self.stdout.write(f"{'step':<10} {'tool':>8} {'bare':>8} {'ratio':>6}  {'unit':<12} what")
        for result in results:
            self.stdout.write(f"{result.step:<10} {result.tool_figure:8.2f} {result.bare_figure:8.2f} "
                              f"{result.ratio:6.2f}  {result.unit:<12} {result.tool} vs {result.bare}, "
                              f"{result.input}, medians of {result.repeats}")
        for result in results:
            if result.notes:
                self.stdout.write(f"{result.step}: {'; '.join(result.notes)}")

    def _machine(self, load_before: tuple[float, float, float], *, with_encoder: bool) -> None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        loads = " / ".join(f"{value:.2f}" for value in os.getloadavg())
        self.stdout.write(f"machine: {cores} cores usable of {os.cpu_count()}, {platform.system()} "
                          f"{platform.release()}, load average 1/5/15 min {loads} (at start "
                          f"{load_before[0]:.2f})")
        if with_encoder:
            encoder = encoders.get()
            self.stdout.write(f"encoder: {encoder.name} ({encoder.dim}-d)")
