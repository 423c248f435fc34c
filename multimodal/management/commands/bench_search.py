import json

from django.core.management.base import BaseCommand, CommandError

from ...benchmarks.pipeline import QUERY_SHAPES, search_benchmark
from ...retrieval.fusion import MODES
from ..progress import progress_bar

STAGES = ("encode", "keyword", "search", "fusion", "explain", "hydrate", "total")


class Command(BaseCommand):
    help = (
        "Ingest N generated items (half images, half texts) into a throw-away corpus with the "
        "configured encoder, then time 1-, 2- and 3-part queries (text; text + image; text + image "
        "- text) in each fusion mode end to end, stage by stage (p50/p95: encode per modality, "
        "keyword, Milvus search per part, fusion, explain, hydrate), and compare the store's search "
        "with an exact numpy scan of the same vectors in the same run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=1000, help="items to generate (default 1000)")
        parser.add_argument("--queries", type=int, default=20, help="queries per shape and mode (default 20)")
        parser.add_argument("--parts", default="1,2,3", help="query sizes to time, of 1,2,3 (default all)")
        parser.add_argument("--fusion", default=",".join(MODES), help=f"modes to time (default {','.join(MODES)})")
        parser.add_argument("--keep", action="store_true", help="keep the generated corpus afterwards")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the figures as JSON")

    def handle(self, *args, items, queries, parts, fusion, keep, as_json, **options):
        try:
            part_counts = [int(value) for value in parts.split(",") if value.strip()]
        except ValueError:
            raise CommandError(f"--parts: '{parts}' is not a comma-separated list of 1, 2, 3") from None
        modes = [value.strip() for value in fusion.split(",") if value.strip()]
        if not part_counts or set(part_counts) - set(QUERY_SHAPES):
            raise CommandError(f"--parts: use some of {', '.join(map(str, QUERY_SHAPES))}")
        if not modes or set(modes) - set(MODES):
            raise CommandError(f"--fusion: use some of {', '.join(MODES)}")
        if items < 1 or queries < 1:
            raise CommandError("--items and --queries must be at least 1")
        with progress_bar(total=items, description="generate + ingest", stream=self.stderr) as update:
            figures = search_benchmark(
                items=items, queries=queries, part_counts=part_counts, modes=modes, keep=keep,
                on_progress=lambda processed, so_far: update(processed, landed=so_far.landed, failed=len(so_far.failures)),
            )
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        self.stdout.write(f"encoder {figures['encoder']}, {figures['items']} items ({figures['vectors']} vectors), "
                          f"{figures['queries_per_shape']} queries per row; p50 in ms")
        self.stdout.write(f"ingest: {figures['ingest_items_per_s']:.0f} items/s")
        self.stdout.write(f"{'query':<40}" + "".join(f"{stage:>9}" for stage in STAGES) + f"{'fus+hyd':>9}")
        for shape, stages in figures["shapes"].items():
            p50 = {name: values["p50"] for name, values in stages.items()}
            row = "".join(f"{p50[stage]:9.2f}" if stage in p50 else f"{'-':>9}" for stage in STAGES)
            self.stdout.write(f"{shape:<40}{row}{p50.get('fusion', 0) + p50.get('hydrate', 0):9.2f}")
            details = [f"{name} {value:.2f}" for name, value in p50.items() if "." in name]
            self.stdout.write(f"{'':<4}{'; '.join(details)}")
        baseline = figures["numpy_exact_search_ms"]
        one_part = next((stages for shape, stages in figures["shapes"].items() if shape.startswith("1 part")), None)
        line = f"baseline exact numpy search over the same vectors: p50 {baseline['p50']:.3f} ms"
        if one_part:
            line += f" (1-part store search / baseline = {one_part['search']['p50'] / max(baseline['p50'], 1e-6):.0f}x)"
        self.stdout.write(line)
