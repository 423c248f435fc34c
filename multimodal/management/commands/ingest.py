import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...errors import UserInputError
from ...models import IngestJob
from ...readers.tabular import ROLES
from ...selectors import job_summary
from ...services.background import BrokerUnavailable, broker_check
from ...services.corpora import corpus_get_or_create
from ...services.jobs import job_create_from_paths, job_enqueue, job_run
from ..progress import progress_bar

POLL_S = 0.5


class Command(BaseCommand):
    help = (
        "Index files found in PATHs (directories recursively) into a corpus: images (jpg, png, webp, "
        "gif, bmp, tiff), text files (.txt, .md: one item per file), recordings (wav, flac, mp3, ogg/opus, "
        "m4a, webm) and the sound of videos (transcribed and split into timed, searchable segments), zip "
        "archives of those, and CSV/XLSX knowledge bases (one product per row). Runs in this process, or on the workers "
        "with --async. Re-ingesting updates items. Prints how many items landed and which failed, and why."
    )

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
        parser.add_argument("--corpus", default="default", help="corpus name, created if new (default: default)")
        parser.add_argument("--batch-size", type=int, default=None, help="items encoded together (default: settings)")
        parser.add_argument("--async", action="store_true", dest="use_workers",
                            help="queue the job for the Celery workers (needs CELERY_BROKER_URL) and follow it")
        parser.add_argument("--no-wait", action="store_true", help="with --async: print the job id and return")
        for role in ROLES:
            parser.add_argument(f"--{role}-column", default="", metavar="HEADER",
                                help=f"table column holding the {role} (default: guessed from the header)")

    def handle(self, *args, paths, corpus, batch_size, use_workers, no_wait, **options):
        if use_workers and settings.CELERY_TASK_ALWAYS_EAGER:
            raise CommandError("--async needs a broker: set CELERY_BROKER_URL (e.g. redis://127.0.0.1:6379/0) and start a worker")
        try:
            if use_workers:
                broker_check()
            target = corpus_get_or_create(name=corpus)
        except (UserInputError, BrokerUnavailable) as exc:
            raise CommandError(str(exc)) from None
        mapping = {role: options[f"{role}_column"] for role in ROLES}
        job = job_create_from_paths(corpus=target, paths=paths, column_mapping=mapping)
        with progress_bar(description=f"ingest into {target.name}", stream=self.stderr) as update:
            def show(current: IngestJob) -> None:
                update(current.processed, total=current.total, landed=current.done, failed=current.failed)

            if use_workers:
                job_enqueue(job)
                if no_wait:
                    self.stdout.write(f"queued job {job.pk}")
                    return
                job = self._follow(job, show)
            else:
                job = job_run(job_id=job.pk, batch_size=batch_size, on_progress=show)
        self._report(job)

    def _follow(self, job: IngestJob, show) -> IngestJob:
        while job.status in IngestJob.ACTIVE:
            time.sleep(POLL_S)
            job.refresh_from_db()
            show(job)
        return job

    def _report(self, job: IngestJob) -> None:
        summary = job_summary(job)
        self.stdout.write(
            f"{summary['done']} items landed in corpus '{job.corpus.name}' "
            f"({summary['created']} new, {summary['done'] - summary['created']} updated), {summary['failed']} failed"
        )
        for failure in summary["failures"]:
            self.stdout.write(f"  FAILED {failure['name']}: {failure['reason']}")
        for warning in summary["warnings"]:
            self.stdout.write(f"  CHANGED {warning['name']}: {warning['reason']}")
        if job.status == IngestJob.Status.FAILED:
            raise CommandError(f"job {job.pk} failed: {job.error}")
        if job.status == IngestJob.Status.CANCELLED:
            raise CommandError(f"job {job.pk} was cancelled")
        if summary["failed"] and not summary["done"]:
            raise CommandError("nothing was ingested")
