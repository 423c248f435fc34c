from contextlib import ExitStack

from django.core.management.base import BaseCommand, CommandError

from ... import store
from ...services.store_sync import SHOWN_IDS, store_check
from ..corpora import corpora_named
from ..progress import progress_bar


class Command(BaseCommand):
    help = (
        "Compare the vector store with the database (the source of truth), both ways: items without "
        "vectors (an ingest whose store writes failed) and vectors whose items are gone (deleted while "
        "the store was down), per collection, plus deletions queued while the store was down. Exits "
        "with status 1 when anything drifted, unless --repair made it agree: --repair applies the "
        "queued deletions, re-embeds the items without vectors from their stored originals and deletes "
        "the orphan vectors. The periodic run (Celery beat, MULTIMODAL_STORE_CHECK_INTERVAL_S) repairs."
    )

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true",
                            help="fix what drifted (re-embed missing items, delete orphan vectors)")
        parser.add_argument("--corpus", action="append", default=None, metavar="NAME",
                            help="only this corpus's items and vectors (repeatable); orphans of deleted "
                                 "corpora are found only without it")

    def handle(self, *args, repair, corpus, **options):
        corpora = corpora_named(corpus)
        with ExitStack() as bars:
            current = {}

            def progress(stage: str, done: int, total: int) -> None:
                if current.get("stage") != stage:
                    bars.close()
                    current["stage"] = stage
                    unit = "vector" if stage.startswith("list ") else "item"
                    current["update"] = bars.enter_context(
                        progress_bar(description=stage, stream=self.stderr, total=total, unit=unit))
                current["update"](done, total=total)

            try:
                drift = store_check(repair=repair, corpora=corpora, progress=progress)
            except store.StoreUnavailable as exc:
                raise CommandError(f"{exc}; nothing was checked, try again once it answers") from None
        for checked in drift.collections:
            missing = f"{checked.missing.size} items without vectors" if checked.checks_missing else "missing items not looked for"
            self.stdout.write(f"{checked.name} ({checked.role}): {checked.items_with_vectors} items with vectors, "
                              f"{missing}, {checked.orphans.size} items' vectors without rows")
            for label, ids in (("without vectors", checked.missing), ("vectors without rows", checked.orphans)):
                if ids.size:
                    shown = ", ".join(str(item_id) for item_id in ids[:SHOWN_IDS].tolist())
                    more = f" and {ids.size - SHOWN_IDS} more" if ids.size > SHOWN_IDS else ""
                    self.stdout.write(f"  {label}: items {shown}{more}")
        for name in drift.orphan_collections:
            self.stdout.write(f"{name}: a collection no index build uses" + (" (dropped)" if repair else ""))
        for name in drift.skipped_collections:
            self.stdout.write(f"{name}: an older schema's collection, not checked")
        self.stdout.write(drift.summary())
        for failure in drift.failures:
            self.stdout.write(f"  NOT RE-EMBEDDED {failure.name}: {failure.reason}")
        if not drift.in_step:
            raise CommandError("the vector store does not match the database" if repair else
                               "the vector store does not match the database: run check_store --repair")
