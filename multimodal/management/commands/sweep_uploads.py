from django.core.management.base import BaseCommand

from ...services.uploads_sweep import uploads_sweep
from ..progress import progress_bar


class Command(BaseCommand):
    help = (
        "Delete upload files nothing will read again, under MULTIMODAL_UPLOAD_ROOT: each finished job's "
        "copies but those a retry of its failed files reads (those too after MULTIMODAL_JOB_FILES_KEEP_H "
        "hours, and all of a cancelled job's), folders and temporary upload files left by killed requests "
        "(untouched for MULTIMODAL_UPLOAD_ORPHAN_GRACE_MIN minutes), and query uploads past "
        "MULTIMODAL_QUERY_UPLOAD_TTL_H. Celery beat runs the same sweep every MULTIMODAL_UPLOAD_SWEEP_S "
        "seconds, and workers when they start; prints what it freed."
    )

    def handle(self, *args, **options):
        with progress_bar(description="sweep job folders", stream=self.stderr, unit="folder") as update:
            report = uploads_sweep(on_progress=lambda done, total: update(done, total=total))
        self.stdout.write(report.summary())
