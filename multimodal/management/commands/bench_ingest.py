import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...benchmarks.pipeline import csv_ingest_benchmark, ingest_benchmark
from ..progress import progress_bar


class Command(BaseCommand):
    help = (
        "Time ingest against the bare encoder on the same inputs, with the same batch size, in the same "
        "run (aim: ratio >= 0.7). By default: generate N photo-like JPEGs and ingest them as a job. With "
        "--csv ROWS: generate a CSV knowledge base of ROWS products (sku, title, description, specs), "
        "ingest it in this process as `manage.py ingest` does, time the bare text encoder on the same "
        "product texts taking turns with the job batch by batch, and print the rates over the first and "
        "last 10% of rows (ingest should not slow down as the corpus grows). Image jobs run in-process "
        "through the task's code, or on the Celery workers with --worker."
    )

    def add_arguments(self, parser):
        parser.add_argument("--images", type=int, default=200, help="images to generate (default 200)")
        parser.add_argument("--size", type=int, default=320, help="image side in pixels (default 320)")
        parser.add_argument("--csv", type=int, default=None, metavar="ROWS",
                            help="benchmark a generated CSV knowledge base of ROWS rows instead of images")
        parser.add_argument("--batch-size", type=int, default=settings.MULTIMODAL_ENCODE_BATCH_SIZE,
                            help="encode batch size for both the job and the baseline (default: the setting)")
        parser.add_argument("--worker", action="store_true",
                            help="images: send the job to the Celery workers (needs CELERY_BROKER_URL and a "
                                 "running worker on the same database and MILVUS_URI, e.g. `manage.py runstack`)")
        parser.add_argument("--keep", action="store_true", help="keep the benchmark corpus afterwards")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the figures as JSON")

    def handle(self, *args, images, size, csv, batch_size, worker, keep, as_json, **options):
        if worker and settings.CELERY_TASK_ALWAYS_EAGER:
            raise CommandError("--worker needs CELERY_BROKER_URL set (no broker: tasks would run here)")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        if csv is not None:
            if worker:
                raise CommandError("--worker is for the image benchmark: --csv takes turns with the job in this process")
            if csv < 1:
                raise CommandError("--csv must be at least 1 row")
            if csv > settings.MULTIMODAL_MAX_TABLE_ROWS:
                raise CommandError(f"--csv {csv}: ingest refuses tables over MULTIMODAL_MAX_TABLE_ROWS "
                                   f"({settings.MULTIMODAL_MAX_TABLE_ROWS}) rows")
            figures = self._measure(csv_ingest_benchmark, total=csv, description="ingest CSV",
                                    rows=csv, batch_size=batch_size, keep=keep)
        else:
            if images < 2:
                raise CommandError("--images must be at least 2 (one warms the runner up)")
            self.stderr.write("generating images and timing the bare encoder ...")
            figures = self._measure(ingest_benchmark, total=images - 1, description="ingest job", images=images,
                                    size=size, batch_size=batch_size, via_worker=worker, keep=keep)
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2))
        elif csv is not None:
            self._csv_report(figures)
        else:
            self._images_report(figures)

    def _measure(self, benchmark, *, total: int, description: str, **arguments) -> dict:
        """Run ``benchmark`` with a progress bar fed by its job."""
        with progress_bar(total=total, description=description, stream=self.stderr) as update:
            return benchmark(**arguments, on_progress=lambda job: update(
                job.processed, total=job.total or None, landed=job.done, failed=job.failed))

    def _job_report(self, label: str, job: dict) -> None:
        self.stdout.write(f"{label}: {job['done']} done, {job['failed']} failed in {job['seconds']:.2f} s "
                          f"= {job['items_per_s']:.1f} items/s")
        for name, reason in job["failures"]:
            self.stdout.write(f"  failed: {name}: {reason}")

    def _images_report(self, figures: dict) -> None:
        self.stdout.write(f"encoder {figures['encoder']}, {figures['images']} JPEGs of {figures['size']}x"
                          f"{figures['size']}, batch {figures['batch_size']}, runner: {figures['runner']}")
        self._job_report("job", figures["job"])
        self.stdout.write(f"bare encoder (pre-decoded): {figures['bare_encoder_items_per_s']:.1f} items/s  "
                          f"-> ratio {figures['ratio_vs_bare_encoder']:.2f}")
        self.stdout.write(f"decode + encode:            {figures['decode_and_encode_items_per_s']:.1f} items/s  "
                          f"-> ratio {figures['ratio_vs_decode_and_encode']:.2f}")

    def _csv_report(self, figures: dict) -> None:
        self.stdout.write(f"encoder {figures['encoder']}, CSV knowledge base of {figures['rows']} rows (sku, title, "
                          f"description, specs), encode batch {figures['batch_size']}, in-process as `ingest` runs it")
        job = figures["job"]
        self._job_report("ingest", job)
        self.stdout.write(f"first 10% of rows: {job['first_10pct_items_per_s']:.1f} items/s, ratio "
                          f"{job['first_10pct_ratio_vs_bare_encoder']:.2f}; last 10%: {job['last_10pct_items_per_s']:.1f} "
                          f"items/s, ratio {job['last_10pct_ratio_vs_bare_encoder']:.2f}")
        self.stdout.write(f"bare text encoder on the same {figures['bare_encoder_rows']} product texts, taking turns: "
                          f"{figures['bare_encoder_items_per_s']:.1f} items/s  -> ratio {figures['ratio_vs_bare_encoder']:.2f}")
