import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ...benchmarks import ingest_benchmark
from ..progress import progress_bar


class Command(BaseCommand):
    help = (
        "Generate N photo-like JPEGs, ingest them as a job (in-process through the task's code, or "
        "on the Celery workers with --worker), and compare the job's items/s with the bare encoder's "
        "throughput on the same images in the same run. Aim: ratio >= 0.7."
    )

    def add_arguments(self, parser):
        parser.add_argument("--images", type=int, default=200, help="images to generate (default 200)")
        parser.add_argument("--size", type=int, default=320, help="image side in pixels (default 320)")
        parser.add_argument("--batch-size", type=int, default=settings.MULTIMODAL_ENCODE_BATCH_SIZE,
                            help="encode batch size for both the job and the baseline (default: the setting)")
        parser.add_argument("--worker", action="store_true",
                            help="send the job to the Celery workers (needs CELERY_BROKER_URL and a running "
                                 "worker on the same database and MILVUS_URI, e.g. `manage.py runstack`)")
        parser.add_argument("--keep", action="store_true", help="keep the benchmark corpus afterwards")
        parser.add_argument("--json", action="store_true", dest="as_json", help="print the figures as JSON")

    def handle(self, *args, images, size, batch_size, worker, keep, as_json, **options):
        if images < 2:
            raise CommandError("--images must be at least 2 (one warms the runner up)")
        if worker and settings.CELERY_TASK_ALWAYS_EAGER:
            raise CommandError("--worker needs CELERY_BROKER_URL set (no broker: tasks would run here)")
        self.stderr.write("generating images and timing the bare encoder ...")
        with progress_bar(total=images - 1, description="ingest job", stream=self.stderr) as update:
            figures = ingest_benchmark(
                images=images, size=size, batch_size=batch_size, via_worker=worker, keep=keep,
                on_progress=lambda job: update(job.processed, total=job.total or None, landed=job.done,
                                               failed=job.failed),
            )
        if as_json:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        job = figures["job"]
        self.stdout.write(f"encoder {figures['encoder']}, {figures['images']} JPEGs of {size}x{size}, "
                          f"batch {batch_size}, runner: {figures['runner']}")
        self.stdout.write(f"job: {job['done']} done, {job['failed']} failed in {job['seconds']:.2f} s "
                          f"= {job['items_per_s']:.1f} items/s")
        for name, reason in job["failures"]:
            self.stdout.write(f"  failed: {name}: {reason}")
        self.stdout.write(f"bare encoder (pre-decoded): {figures['bare_encoder_items_per_s']:.1f} items/s  "
                          f"-> ratio {figures['ratio_vs_bare_encoder']:.2f}")
        self.stdout.write(f"decode + encode:            {figures['decode_and_encode_items_per_s']:.1f} items/s  "
                          f"-> ratio {figures['ratio_vs_decode_and_encode']:.2f}")
