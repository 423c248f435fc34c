"""The upload sweep: what lies under MULTIMODAL_UPLOAD_ROOT that nothing will read again goes.

Run by the ``sweep_uploads`` command, by Celery beat every ``MULTIMODAL_UPLOAD_SWEEP_S`` and when a
worker starts (without a broker: when the site serves its first request). It deletes

- of each job's folder what `job_files_release` says nothing needs (a finished job keeps only what a
  retry of its failed files reads, for ``MULTIMODAL_JOB_FILES_KEEP_H``; a cancelled one nothing);
- folders no job owns (an upload whose request was killed, or whose transaction rolled back) and
  Django's temporary upload files, once untouched for ``MULTIMODAL_UPLOAD_ORPHAN_GRACE_MIN``: an
  upload still arriving keeps writing them, and its job row is not visible before it commits;
- query uploads past their keep (`query_uploads_prune`).
"""
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from django.conf import settings

from ..models import IngestJob
from .jobs import job_files_release, tree_remove
from .query_uploads import query_uploads_prune

LOOKUP_CHUNK = 500  # folder names asked of the database at once
TEMP_MARK = ".upload"  # Django's temporary upload files are named tmpXXXX.upload[.ext]


@dataclass
class SweepReport:
    job_folders_released: int = 0
    orphan_folders: int = 0
    temporary_files: int = 0
    query_files: int = 0
    bytes_freed: int = 0

    def summary(self) -> str:
        return (f"{self.bytes_freed / 1024 / 1024:.1f} MB freed: {self.job_folders_released} job folders trimmed, "
                f"{self.orphan_folders} orphan folders, {self.temporary_files} temporary upload files and "
                f"{self.query_files} query uploads deleted")


def uploads_sweep(*, on_progress: Callable[[int, int], None] | None = None) -> SweepReport:
    """Delete what nothing will read again (see the module); ``on_progress(done, total)`` per job folder."""
    root = Path(settings.MULTIMODAL_UPLOAD_ROOT)
    report = SweepReport()
    untouched_since = time.time() - settings.MULTIMODAL_UPLOAD_ORPHAN_GRACE_MIN * 60
    folders = _job_folders(root)
    names = list(folders)
    jobs = {}
    for start in range(0, len(names), LOOKUP_CHUNK):
        jobs.update((job.files_dir, job) for job in IngestJob.objects.filter(files_dir__in=names[start:start + LOOKUP_CHUNK]))
    for done, (name, folder) in enumerate(folders.items(), start=1):
        job = jobs.get(name)
        if job is not None:
            freed = job_files_release(job=job)
            report.job_folders_released += bool(freed)
            report.bytes_freed += freed
        elif _newest_change(folder) < untouched_since:
            report.orphan_folders += 1
            report.bytes_freed += tree_remove(folder)
        if on_progress:
            on_progress(done, len(folders))
    temporary = Path(settings.FILE_UPLOAD_TEMP_DIR) if settings.FILE_UPLOAD_TEMP_DIR else None
    for path in temporary.iterdir() if temporary and temporary.is_dir() else ():
        try:
            stat = path.stat()
            if TEMP_MARK in path.name and path.is_file() and stat.st_mtime < untouched_since:
                path.unlink()
                report.temporary_files += 1
                report.bytes_freed += stat.st_size
        except FileNotFoundError:  # its request finished meanwhile
            pass
    files, freed = query_uploads_prune()
    report.query_files += files
    report.bytes_freed += freed
    return report


def _job_folders(root: Path) -> dict[str, Path]:
    """Job folders by the name jobs keep (``files_dir``): ``jobs/<token>``, and ``<id>`` from before tokens."""
    folders = {}
    if (root / "jobs").is_dir():
        folders.update((f"jobs/{path.name}", path) for path in (root / "jobs").iterdir() if path.is_dir())
    if root.is_dir():
        folders.update((path.name, path) for path in root.iterdir() if path.is_dir() and path.name.isdigit())
    return folders


def _newest_change(folder: Path) -> float:
    newest = 0.0
    for directory, _, names in os.walk(folder):
        for path in [directory, *(os.path.join(directory, name) for name in names)]:
            try:
                newest = max(newest, os.lstat(path).st_mtime)
            except FileNotFoundError:
                pass
    return newest
