import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...benchmarks.encoding import encode_benchmark
from ...encoders.runtime import PRECISIONS, RUNTIMES


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
        "ViT-B-32:random) for real-size figures offline; recall with real weights: `evaluate` per runtime."
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
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the figures as JSON")

    def handle(self, *args, runtimes, texts, images, image_side, batch_size, repeats, queries, as_json, **options):
        pairs = [_runtime_pair(value.strip()) for value in runtimes.split(",") if value.strip()]
        if min(texts, images, batch_size, repeats, queries) < 1 or image_side < 8:
            raise CommandError("--texts, --images, --batch-size, --repeats and --queries must be at least 1, "
                               "--image-side at least 8")
        try:
            figures = encode_benchmark(spec=settings.MULTIMODAL_CLIP_MODEL, runtimes=pairs, texts=texts, images=images,
                                       image_side=image_side, batch_size=batch_size, repeats=repeats, queries=queries,
                                       on_step=lambda message: self.stderr.write(f"... {message}"))
        except RuntimeError as exc:
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
        header = ("runtime", "texts/s", "x torch", "images/s", "x torch", "text cos mean/min", "image cos mean/min",
                  "query p50 ms", "load s", "export s", "peak RSS MB")
        lines = [header]
        for row in figures["rows"]:
            lines.append((
                f"{row['runtime']} {row['precision']}", f"{row['texts_per_s']:.1f}", f"{row['texts_ratio']:.2f}",
                f"{row['images_per_s']:.1f}", f"{row['images_ratio']:.2f}",
                f"{row['text_cosine']['mean']:.4f}/{row['text_cosine']['min']:.4f}",
                f"{row['image_cosine']['mean']:.4f}/{row['image_cosine']['min']:.4f}",
                f"{row['query_ms_p50']:.1f}", f"{row['load_s']:.1f}", f"{row['export_s']:.1f}",
                f"{row['peak_rss_mb']:.0f}",
            ))
        widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
        for line in lines:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
