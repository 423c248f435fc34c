from django.core.management.base import BaseCommand, CommandError

from ...models import Corpus, Item
from ...services.indexing import items_reindex
from ...services.store_sync import store_check
from ..progress import progress_bar


class Command(BaseCommand):
    help = (
        "Rebuild the vectors in Milvus from the database (the source of truth) with the configured "
        "encoder: after changing the model or the index settings, or to repair a lost vector store. "
        "Vectors whose items are gone (deleted while the store was down) are deleted too, and deletions "
        "queued while it was down are applied (as check_store --repair does)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--corpus", help="only items of this corpus")
        parser.add_argument("--drop", action="store_true", help="recreate the collection first (needed after changing MILVUS_INDEX_TYPE)")
        parser.add_argument("--batch-size", type=int, default=None, help="items encoded together")

    def handle(self, *args, corpus, drop, batch_size, **options):
        items = Item.objects.all()
        if corpus:
            items = items.filter(corpus__name=corpus)
            if not items.exists():
                raise CommandError(f"no items in a corpus named '{corpus}'")
        if drop and corpus:
            raise CommandError("--drop recreates the whole collection; use it without --corpus")
        with progress_bar(total=items.count(), description="reindex", stream=self.stderr) as update:
            report = items_reindex(
                items=items, drop=drop, batch_size=batch_size,
                on_progress=lambda processed, so_far: update(processed, landed=so_far.landed, failed=len(so_far.failures)),
            )
        self.stdout.write(f"{report.updated} items reindexed, {len(report.failures)} failed")
        for failure in report.failures:
            self.stdout.write(f"  FAILED {failure.name}: {failure.reason}")
        drift = store_check(repair=True, reembed=False,
                            corpora=Corpus.objects.filter(name=corpus) if corpus else None)
        self.stdout.write(f"{drift.orphans_deleted} items' orphan vectors deleted (their rows are gone), "
                          f"{drift.pending_applied} queued deletions applied")
