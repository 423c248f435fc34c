from django.core.management.base import BaseCommand, CommandError

from ... import store
from ...services.duplicates import duplicate_groups, duplicates_find
from ..corpora import corpora_named
from ..progress import progress_bar


class Command(BaseCommand):
    help = (
        "Fingerprint the pictures and product rows ingested before near-duplicate groups existed (or, with "
        "--recompute, every one of them, their groups made again from scratch) and put each in its groups: "
        "copies of the same picture or row, and similar shots (MULTIMODAL_DUPLICATE_* settings). Ingest does "
        "this for new items. Pictures are read from their kept files, vectors from the store."
    )

    def add_arguments(self, parser):
        parser.add_argument("--corpus", action="append", default=None, metavar="NAME",
                            help="only this corpus (repeatable); default: every corpus")
        parser.add_argument("--recompute", action="store_true",
                            help="fingerprint and group every picture and row again (after changing the thresholds)")

    def handle(self, *args, corpus, recompute, **options):
        corpora = corpora_named(corpus)
        with progress_bar(description="fingerprint and group", stream=self.stderr) as update:
            try:
                processed = duplicates_find(corpora=corpora, recompute=recompute,
                                            on_progress=lambda done, total: update(done, total=total))
            except store.StoreUnavailable as exc:
                raise CommandError(f"{exc}; try again once the vector store answers") from None
        self.stdout.write(f"{processed} item{'s' if processed != 1 else ''} fingerprinted and grouped")
        for level, label in (("same", "copies"), ("similar", "similar shots")):
            counts = [duplicate_groups(level=level, corpus=found, limit=0)[1] for found in (corpora or [None])]
            total = sum(counts)
            self.stdout.write(f"{total} group{'s' if total != 1 else ''} of {label}")
