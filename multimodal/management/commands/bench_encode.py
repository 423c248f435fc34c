import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...benchmarks.encoding import encode_benchmark
from ...benchmarks.encoding_recall import recall_set_read
from ...encoders.runtime import PRECISIONS, RUNTIMES
from ...errors import UserInputError
from ...learning.metrics import NDCG_K, RECALL_KS


def _runtime_pair(value: str) -> tuple[str, str]:
    runtime, _, precision = value.partition(":")
    if runtime not in RUNTIMES or precision not in PRECISIONS:
        raise CommandError(f"--runtimes: '{value}' is not RUNTIME:PRECISION ({'|'.join(RUNTIMES)}:{'|'.join(PRECISIONS)})")
    return runtime, precision


class Command(BaseCommand):
    help = (
        "Time the configured model (MULTIMODAL_CLIP_MODEL) on each runtime and precision, on the same texts "
        "and images, in one run: texts/s and images/s (median of the rounds) and their ratio to PyTorch fp32, "
        "the cosine between each runtime's vectors and PyTorch fp32's (mean, min), a short text query's encode "
        "time (p50), load time (and the one-off ONNX export), and each runtime's peak RSS. Each runtime runs "
        "in its own process and they take turns, so a busy machine slows them alike. Use MODEL:random (e.g. "
        "ViT-B-32:random) for real-size figures offline. With real weights, --evaluate QUERY_FILE --corpus NAME "
        "also gives each runtime's recall@1/5/10, MRR and nDCG@10 on a labelled query set (evaluate's file "
        "format; text or image queries) and their change from PyTorch fp32: each runtime encodes the corpus's "
        "items (their text, their original image file) and the queries in its own process, and every query "
        "ranks the corpus exactly (no index, no adapter), so only the encoder differs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--runtimes", default="torch:fp32,onnx:fp32,onnx:int8",
                            help="comma-separated RUNTIME:PRECISION pairs (default torch:fp32,onnx:fp32,onnx:int8; "
                                 "torch:fp32, the reference, is always measured)")
        parser.add_argument("--texts", type=int, default=240, help="texts per round (default 240)")
        parser.add_argument("--images", type=int, default=64, help="images per round (default 64)")
        parser.add_argument("--image-side", type=int, default=1024,
                            help="generated JPEGs' side in pixels, as ingest keeps pictures (default 1024)")
        parser.add_argument("--batch-size", type=int, default=settings.MULTIMODAL_ENCODE_BATCH_SIZE,
                            help="encode batch size (default: MULTIMODAL_ENCODE_BATCH_SIZE)")
        parser.add_argument("--repeats", type=int, default=3, help="rounds; rates are their median (default 3)")
        parser.add_argument("--queries", type=int, default=50, help="short text queries timed one by one (default 50)")
        parser.add_argument("--evaluate", type=Path, metavar="QUERY_FILE",
                            help="a JSONL query file in evaluate's format (text or image queries and their relevant "
                                 "items): recall per runtime on it, ranking the items of --corpus")
        parser.add_argument("--corpus", metavar="NAME", help="with --evaluate: the corpus whose items are ranked")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the figures as JSON")

    def handle(self, *args, runtimes, texts, images, image_side, batch_size, repeats, queries, evaluate, corpus,
               as_json, **options):
        pairs = [_runtime_pair(value.strip()) for value in runtimes.split(",") if value.strip()]
        if min(texts, images, batch_size, repeats, queries) < 1 or image_side < 8:
            raise CommandError("--texts, --images, --batch-size, --repeats and --queries must be at least 1, "
                               "--image-side at least 8")
        if bool(evaluate) != bool(corpus):
            raise CommandError("--evaluate QUERY_FILE and --corpus NAME go together")
        try:
            recall_set = recall_set_read(evaluate, corpus) if evaluate else None
        except UserInputError as exc:
            raise CommandError(f"--evaluate: {exc}") from None
        try:
            figures = encode_benchmark(spec=settings.MULTIMODAL_CLIP_MODEL, runtimes=pairs, texts=texts, images=images,
                                       image_side=image_side, batch_size=batch_size, repeats=repeats, queries=queries,
                                       recall_set=recall_set, on_step=lambda message: self.stderr.write(f"... {message}"))
        except (RuntimeError, UserInputError) as exc:
            raise CommandError(str(exc)) from None
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        self.stdout.write(
            f"encoder: {figures['encoder']}; {texts} texts and {images} images of {image_side} px per round, batch "
            f"{batch_size}, median of {repeats} rounds; {figures['cpus']} CPUs, ONNX Runtime on "
            f"{figures['onnx_threads']} threads; load average {figures['load_average'][0]:.1f} -> "
            f"{figures['load_average'][1]:.1f}"
        )
        evaluation = figures["evaluation"]
        if evaluation:
            self.stdout.write(
                f"recall: {evaluation['queries']} queries of {evaluation['queries_file']} ranking the "
                f"{evaluation['items']} items of corpus '{evaluation['corpus']}' exactly, top {evaluation['depth']}; "
                f"change: from torch fp32"
            )
        header = ("runtime", "texts/s", "x torch", "images/s", "x torch", "text cos mean/min", "image cos mean/min",
                  "query p50 ms", "load s", "export s", "peak RSS MB")
        recall_header = (f"R@{'/'.join(map(str, RECALL_KS))}", "MRR", f"nDCG@{NDCG_K}", "change R@k", "change MRR")
        header += recall_header if evaluation else ()
        lines = [header]
        for row in figures["rows"]:
            lines.append((
                f"{row['runtime']} {row['precision']}", f"{row['texts_per_s']:.1f}", f"{row['texts_ratio']:.2f}",
                f"{row['images_per_s']:.1f}", f"{row['images_ratio']:.2f}",
                f"{row['text_cosine']['mean']:.4f}/{row['text_cosine']['min']:.4f}",
                f"{row['image_cosine']['mean']:.4f}/{row['image_cosine']['min']:.4f}",
                f"{row['query_ms_p50']:.1f}", f"{row['load_s']:.1f}", f"{row['export_s']:.1f}",
                f"{row['peak_rss_mb']:.0f}",
            ) + (_recall_cells(row["evaluation"]) if evaluation else ()))
        widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
        for line in lines:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


def _recall_cells(evaluation: dict) -> tuple[str, ...]:
    metrics, change = evaluation["metrics"], evaluation["change"]
    recalls = [f"recall@{k}" for k in RECALL_KS]
    return ("/".join(f"{metrics[name]:.3f}" for name in recalls), f"{metrics['mrr']:.3f}",
            f"{metrics[f'ndcg@{NDCG_K}']:.3f}", "/".join(f"{change[name]:+.3f}" for name in recalls),
            f"{change['mrr']:+.3f}")
