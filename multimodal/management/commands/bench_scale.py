import json
from contextlib import ExitStack
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...benchmarks.scale import FILTERS, growth, scale_benchmark
from ..progress import progress_bar
from ..tables import table_format


class Command(BaseCommand):
    help = (
        "Fill a throw-away corpus with synthetic items (database rows, their keyword index and clustered "
        "vectors of the configured encoder's dimension, no encoding) at each of --items sizes, grown one "
        "from the other, in each --engine; then time, warm, p50/p95: 1-, 2- and 3-part queries end to end "
        "stage by stage, the store's search alone (as the product asks: the fusion depth; and for the top "
        "10 only) with its recall@10 against an exact numpy scan of the same vectors, faiss HNSW and numpy "
        "exact over them, the keyword channel alone (rare word, common word, product code), hydration alone "
        "and filtered searches (corpus, kind, date range, spec), with the RSS of this process and of the "
        "engine's. The corpus is deleted afterwards unless --keep."
    )

    def add_arguments(self, parser):
        parser.add_argument("--items", default="10000,100000,1000000",
                            help="comma-separated corpus sizes, grown in order (default 10000,100000,1000000)")
        parser.add_argument("--engine", action="append", dest="engines", metavar="URI",
                            help="a MILVUS_URI to measure (a path: Milvus Lite; http://host:port: a server); "
                                 "repeatable; default: the configured MILVUS_URI")
        parser.add_argument("--queries", type=int, default=50, help="queries per figure (default 50)")
        parser.add_argument("--batch", type=int, default=10_000, help="items written per batch (default 10000)")
        parser.add_argument("--writers", type=int, default=2,
                            help="processes upserting vectors to a remote server while rows are written (default 2; "
                                 "0: a thread, as always with Milvus Lite; the local server imports them from "
                                 "files instead)")
        parser.add_argument("--faiss-items", type=int, default=200_000,
                            help="build the faiss HNSW baseline up to this many items (default 200000; 0: never): "
                                 "its build takes ~1.6 ms per 512-d vector on two cores")
        parser.add_argument("--index-timeout", type=float, default=1800,
                            help="seconds to wait for the engine to index a size (default 1800)")
        parser.add_argument("--keep", action="store_true", help="keep the generated corpus afterwards")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the figures as JSON")
        parser.add_argument("--out", type=Path, metavar="FILE",
                            help="also write the figures as JSON to FILE, rewritten after each size is measured "
                                 "(an interrupted run keeps what it measured)")

    def handle(self, *args, items, engines, queries, batch, writers, faiss_items, index_timeout, keep, as_json, out,
               **options):
        try:
            sizes = [int(value) for value in items.split(",") if value.strip()]
        except ValueError:
            raise CommandError(f"--items: '{items}' is not a comma-separated list of numbers") from None
        if not sizes or min(sizes) < 20 or sizes != sorted(set(sizes)):
            raise CommandError("--items: give increasing sizes of at least 20 items")
        if queries < 1 or batch < 1 or writers < 0:
            raise CommandError("--queries and --batch must be at least 1, --writers at least 0")
        # One bar per engine: the previous engine's closes when the next one starts filling.
        with ExitStack() as bar_stack:
            update = []

            def fill_start(uri, total):
                bar_stack.close()
                update[:] = [bar_stack.enter_context(progress_bar(total=total, description=f"fill {uri}",
                                                                  stream=self.stderr))]

            figures = scale_benchmark(
                sizes=sizes, engines=engines or [str(settings.MILVUS_URI)], queries=queries, batch_size=batch,
                writers=writers, faiss_items=faiss_items, keep=keep, index_timeout_s=index_timeout,
                on_fill_start=fill_start, on_progress=lambda done: update[0](done),
                on_measured=(lambda report: _json_write(out, report)) if out else None,
            )
        if out:
            _json_write(out, figures)
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        self.stdout.write(report_format(figures))


def _json_write(path: Path, figures: dict) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(figures, indent=2))
    partial.replace(path)  # never a half-written file


def report_format(figures: dict) -> str:
    kernel = figures["numpy_kernel"]
    lines = [f"encoder {figures['encoder']} ({figures['dim']}-d), database {figures['database']}, "
             f"{figures['queries']} warm queries per figure; times in ms (p50 / p95)",
             f"numpy kernel: {kernel['library']} {kernel['version']} {kernel['architecture']}, "
             f"{kernel['threads']} threads, OPENBLAS_CORETYPE={kernel['openblas_coretype'] or 'unset'}"]
    for engine in figures["engines"]:
        lines += ["", f"engine {engine['engine']} at {engine['uri']}"]
        lines.append(table_format(["figure", *(f"{size['items']:,}" for size in engine["sizes"])],
                                  _rows(engine["sizes"])))
        ratios = growth(engine)
        if ratios:
            lines.append("store p50 growth: " + ", ".join(f"{before:,}→{after:,} x{ratio:.2f}"
                                                          for before, after, ratio in ratios))
        if "delete_s" in engine:
            lines.append(f"corpus deleted in {engine['delete_s']:.1f} s, {engine['items_left']} items left")
        else:
            lines.append(f"corpus {engine['corpus']} kept")
    return "\n".join(lines)


def _both(figure: dict | None) -> str | None:
    return None if figure is None else f"{figure['p50']:.2f} / {figure['p95']:.2f}"


def _rows(sizes: list[dict]) -> list[list]:
    def row(label, pick):
        return [label, *(pick(size) for size in sizes)]

    def rss(value):
        return None if value is None else f"{value:,.0f}"

    rows = [
        row("fill items/s (db + keyword + vectors)", lambda size: f"{size['fill']['items_per_s']:,.0f}"),
        row("keyword index rows", lambda size: size["fill"]["keyword_rows"]),
        row("vectors in store", lambda size: size["fill"]["vectors_in_store"]),
        row("index wait s", lambda size: f"{size['fill']['index_wait_s']:.1f}"
            + ("" if size["fill"].get("index_complete", True) else " (timed out: index incomplete)")),
    ]
    for shape in sizes[0]["end_to_end"]:
        for stage in ("total", "encode", "keyword", "search", "fusion", "explain", "hydrate"):
            label = f"end to end, {shape} parts" if stage == "total" else f"  {stage}"
            rows.append(row(label, lambda size, shape=shape, stage=stage: _both(size["end_to_end"][shape].get(stage))))
    rows += [
        row("store search alone, as the product asks", lambda size: _both(size["store"])),
        row("store recall@10, as the product asks", lambda size: f"{size['store']['recall_at_10']:.3f}"),
        row("store search alone, top 10 only", lambda size: _both(size["store_top10"])),
        row("store recall@10, top 10 only", lambda size: f"{size['store_top10']['recall_at_10']:.3f}"),
        row("faiss HNSW", lambda size: _both(size.get("faiss_hnsw"))),
        row("faiss recall@10",
            lambda size: f"{size['faiss_hnsw']['recall_at_10']:.3f}" if "faiss_hnsw" in size else None),
        row("numpy exact", lambda size: _both(size["numpy_exact"])),
    ]
    for probe in sizes[0]["keyword"]:
        rows.append(row(f"keyword alone, {probe}", lambda size, probe=probe: _both(size["keyword"][probe])))
    rows.append(row("hydrate alone (10 results)", lambda size: _both(size["hydrate"])))
    for name in FILTERS:
        rows.append(row(f"filtered by {name}, end to end", lambda size, name=name: _both(size["filtered"][name])))
        for stage in ("keyword", "search"):
            rows.append(row(f"  {stage}", lambda size, name=name, stage=stage: _both(size["filtered"][name].get(stage))))
    rows += [
        row("RSS this process MB", lambda size: rss(size["memory"]["process_mb"])),
        row("  of which baselines MB", lambda size: rss(size["memory"]["baselines_mb"])),
        row("RSS engine MB", lambda size: "in process" if size["memory"]["engine_in_process"]
            else rss(size["memory"]["engine_mb"])),
    ]
    return rows

