from django.core.management.base import BaseCommand, CommandError

from ...errors import UserInputError
from ...services.corpora import corpus_get_or_create
from ...services.ingest import items_ingest, sources_from_paths
from ..progress import progress_bar


class Command(BaseCommand):
    help = (
        "Index image files (jpg, png, webp, gif, bmp, tiff) and text files (.txt, .md: one item per "
        "file) found in PATHs (directories recursively) into a corpus. Re-ingesting a file updates "
        "its item. Prints how many items landed and which files failed, and why."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
        parser.add_argument("--corpus", default="default", help="corpus name, created if new (default: default)")
        parser.add_argument("--batch-size", type=int, default=None, help="items encoded together (default: settings)")

    def handle(self, *args, paths, corpus, batch_size, **options):
        try:
            target = corpus_get_or_create(name=corpus)
        except UserInputError as exc:
            raise CommandError(str(exc)) from None
        sources, missing = sources_from_paths(paths)
        with progress_bar(total=len(sources), description=f"ingest into {target.name}", stream=self.stderr) as update:
            report = items_ingest(corpus=target, sources=sources, batch_size=batch_size, on_progress=update)
        report.failures[:0] = missing
        self.stdout.write(
            f"{report.landed} items landed in corpus '{target.name}' "
            f"({report.created} new, {report.updated} updated), {len(report.failures)} failed"
        )
        for failure in report.failures:
            self.stdout.write(f"  FAILED {failure.name}: {failure.reason}")
        if report.failures and not report.landed:
            raise CommandError("nothing was ingested")
