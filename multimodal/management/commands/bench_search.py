import json

from django.core.management.base import BaseCommand

from ...benchmarks import search_benchmark
from ..progress import progress_bar


class Command(BaseCommand):
    help = (
        "Ingest N generated items (half images, half texts) into a throw-away corpus with the "
        "configured encoder, time text queries end to end (encode/search/total, p50/p95), and "
        "compare the store's search time with an exact numpy scan of the same vectors."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", type=int, default=1000, help="items to generate (default 1000)")
        parser.add_argument("--queries", type=int, default=50, help="text queries to time (default 50)")
        parser.add_argument("--keep", action="store_true", help="keep the generated corpus afterwards")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the figures as JSON")

    def handle(self, *args, items, queries, keep, as_json, **options):
        with progress_bar(total=items, description="generate + ingest", stream=self.stderr) as update:
            figures = search_benchmark(
                items=items, queries=queries, keep=keep,
                on_progress=lambda processed, so_far: update(processed, landed=so_far.landed, failed=len(so_far.failures)),
            )
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        product, baseline = figures["product_ms"], figures["numpy_exact_search_ms"]
        self.stdout.write(f"encoder {figures['encoder']}, {figures['items']} items, {figures['queries']} text queries")
        self.stdout.write(f"ingest: {figures['ingest_items_per_s']:.0f} items/s")
        for name in ("encode", "search", "total"):
            self.stdout.write(f"{name:>7}: p50 {product[name]['p50']:8.2f} ms   p95 {product[name]['p95']:8.2f} ms")
        self.stdout.write(
            f"baseline exact numpy search: p50 {baseline['p50']:.3f} ms "
            f"(store search / baseline = {product['search']['p50'] / max(baseline['p50'], 1e-6):.0f}x)"
        )
