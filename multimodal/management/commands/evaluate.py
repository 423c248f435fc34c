import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...encoders import EncoderLoadError
from ...errors import UserInputError
from ...learning.metrics import NDCG_K, RECALL_KS
from ...models import Adapter, Corpus
from ...retrieval.fusion import MODES
from ...services.evaluation import evaluation_run, queries_from_corpus, queries_read, queries_write
from ..progress import progress_bar
from ..tables import table_format


class Command(BaseCommand):
    help = (
        "Measure search quality: run the queries of a JSONL file (one a line: text, image, voice, item or "
        "weighted parts, with the ids or file names of the relevant items) through the product's search "
        "and print recall@1/5/10, MRR, nDCG@10 and latency p50/p95, overall and per query modality. "
        "Or build the queries from a corpus's own pairs (--from-corpus: each product description or "
        "caption asks for its image, the Flickr30k/COCO text->image protocol)."
    )

    def add_arguments(self, parser):
        parser.add_argument("queries", nargs="?", type=Path, metavar="QUERIES", help="JSONL query file")
        parser.add_argument("--from-corpus", metavar="NAME", help="make caption->image queries from this corpus's pairs")
        parser.add_argument("--holdout-of", type=int, metavar="VERSION",
                            help="with --from-corpus: only the pairs this adapter version held out from training")
        parser.add_argument("--write-queries", type=Path, metavar="FILE", help="also save the queries as a JSONL file")
        parser.add_argument("--corpus", default="", help="search only these corpora (comma-separated), whatever a line says")
        parser.add_argument("--fusion", choices=MODES, help="fusion mode for every query, whatever a line says")
        parser.add_argument("--depth", type=int, default=10,
                            help="results fetched per query, as a user's page: MRR counts ranks up to it (default 10: MRR@10)")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the report as JSON")

    def handle(self, *args, queries, from_corpus, holdout_of, write_queries, corpus, fusion, depth, as_json, **options):
        if bool(queries) == bool(from_corpus):
            raise CommandError("give a QUERIES file or --from-corpus NAME (one of the two)")
        if not max(max(RECALL_KS), NDCG_K) <= depth <= settings.MULTIMODAL_MAX_TOP_K:
            raise CommandError(f"--depth must be between {max(max(RECALL_KS), NDCG_K)} and {settings.MULTIMODAL_MAX_TOP_K}")
        try:
            if queries:
                query_set = queries_read(queries)
            else:
                source = Corpus.objects.filter(name=from_corpus).first()
                if source is None:
                    raise CommandError(f"--from-corpus: no corpus named '{from_corpus}'")
                adapter = None
                if holdout_of is not None:
                    adapter = Adapter.objects.filter(corpus=source, version=holdout_of).first()
                    if adapter is None:
                        raise CommandError(f"--holdout-of: corpus '{from_corpus}' has no adapter version {holdout_of}")
                query_set = queries_from_corpus(source, holdout_of=adapter)
            if write_queries:
                queries_write(query_set, write_queries)
            with progress_bar(total=len(query_set), description="evaluate", stream=self.stderr, unit="query") as update:
                report = evaluation_run(queries=query_set, corpus=corpus or None, fusion=fusion, depth=depth,
                                        on_progress=update)
        except (UserInputError, EncoderLoadError) as exc:
            raise CommandError(str(exc)) from None
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
            return
        indexes = ", ".join(f"{name}: {live}" for name, live in report["indexes"].items())
        self.stdout.write(f"{report['queries']} queries, top {report['depth']} each; encoder {report['encoder']}; "
                          f"searched in {indexes}")
        self.stdout.write(evaluation_table(report["groups"]))


def evaluation_table(groups: dict) -> str:
    headers = ["queries", "modality", *(f"R@{k}" for k in RECALL_KS), "MRR", f"nDCG@{NDCG_K}", "p50 ms", "p95 ms"]
    rows = [
        [group["queries"], name, *(group[f"recall@{k}"] for k in RECALL_KS), group["mrr"], group[f"ndcg@{NDCG_K}"],
         f"{group['latency_p50_ms']:.1f}", f"{group['latency_p95_ms']:.1f}"]
        for name, group in groups.items()
    ]
    return table_format(headers, rows)
