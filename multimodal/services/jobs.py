"""Ingest jobs: uploads (or paths) expanded into units, processed in batches, each unit accounted once.

A job's inputs are expanded once into units: a file, an archive entry, or a table row (whose image
may be another file of the same job; that file is then not an item of its own). Units are processed
in batches by whichever runner holds the job's lease; a runner that dies loses the lease after
``MULTIMODAL_JOB_LEASE_S`` and the next one continues with the units still pending. Items are keyed
by content hash (or a row's id), so a batch processed twice updates rather than duplicates.
"""
import logging
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import get_valid_filename

from .. import indexes
from ..archives import zip_extract_safely
from ..errors import UserInputError
from ..models import Corpus, IngestJob, IngestUnit
from ..multipart_names import upload_name_note
from ..row_updates import rows_update
from ..sniffing import content_kind, file_head
from ..tabular import ROLES, table_read
from .background import task_dispatch, task_dispatch_on_commit
from .corpora import corpus_get_or_create
from .ingest import IngestReport, ProductRow, Source, files_discover, sources_ingest_batch, text_limits

logger = logging.getLogger(__name__)
FAILURES_SHOWN = 1000
# A knowledge base's rows are written (looked up, inserted, their vectors upserted) this many encode
# batches at a time: a write has fixed costs (queries, a vector store round trip, the lease, progress)
# which, paid for every encode batch of 32 short texts, cost about half as much as encoding them.
ROW_BATCHES_PER_WRITE = 8


class JobBusy(Exception):
    """Another runner holds the job's lease; try again after ``retry_in_s``."""

    def __init__(self, retry_in_s: float):
        super().__init__(f"job is being processed elsewhere; retry in {retry_in_s:.0f} s")
        self.retry_in_s = retry_in_s


def job_dir(job: IngestJob) -> Path:
    return Path(settings.MULTIMODAL_UPLOAD_ROOT) / str(job.pk)


def job_create_from_uploads(*, corpus_name: str, files: list, user=None, column_mapping: dict | None = None) -> IngestJob:
    """Store uploaded files for the workers and queue a job; returns before any file is read."""
    if not files:
        raise UserInputError("no files: choose files, zip archives or CSV/XLSX tables to upload")
    total_bytes = sum(upload.size for upload in files)
    if total_bytes > settings.MULTIMODAL_MAX_UPLOAD_MB * 1024 * 1024:
        raise UserInputError(f"the upload is {total_bytes:,} bytes; the limit is {settings.MULTIMODAL_MAX_UPLOAD_MB} MB")
    corpus = corpus_get_or_create(name=corpus_name)
    mapping = _mapping_clean(column_mapping)
    with transaction.atomic():
        job = IngestJob.objects.create(corpus=corpus, created_by=user, column_mapping=mapping)
        directory = job_dir(job) / "uploads"
        directory.mkdir(parents=True, exist_ok=True)
        for index, upload in enumerate(files):
            display_name = Path(upload.name).name
            target = directory / f"{index:05d}-{get_valid_filename(display_name) or 'file'}"
            with open(target, "wb") as handle:
                for chunk in upload.chunks():
                    handle.write(chunk)
            note = upload_name_note(upload)  # a name that was not UTF-8, decoded on the way in
            job.inputs.append({"name": display_name, "path": str(target), **({"note": note} if note else {})})
        job.save(update_fields=["inputs"])
        job_enqueue(job)
    return job


def job_create_from_paths(*, corpus: Corpus, paths: list[str], user=None, column_mapping: dict | None = None) -> IngestJob:
    """A job over files on this machine (directories recursively); missing paths become failures."""
    found, missing = files_discover(paths)
    inputs = [{"name": str(path), "path": str(path.resolve())} for path in found]
    inputs += [{"name": failure.name, "path": "", "error": failure.reason} for failure in missing]
    return IngestJob.objects.create(
        corpus=corpus, created_by=user, inputs=inputs, column_mapping=_mapping_clean(column_mapping)
    )


def _mapping_clean(column_mapping: dict | None) -> dict:
    mapping = {role: (column_mapping or {}).get(role, "").strip() for role in ROLES}
    return {role: column for role, column in mapping.items() if column}


def job_enqueue(job: IngestJob) -> None:
    """Hand the job to a worker once the current transaction commits (so the worker sees it)."""
    from ..tasks import ingest_job_run

    task_dispatch_on_commit(ingest_job_run, job.pk)


def job_run(
    *,
    job_id: int,
    runner: str | None = None,
    batch_size: int | None = None,
    on_progress: Callable[[IngestJob], None] | None = None,
) -> IngestJob:
    """Process every pending unit of the job, then flush the collection and mark the job done.

    Raises JobBusy if another runner holds the job. Safe to call again after a crash.
    """
    runner = runner or uuid.uuid4().hex
    batch_size = batch_size or settings.MULTIMODAL_ENCODE_BATCH_SIZE
    _lease_take(job_id, runner)
    try:
        job = IngestJob.objects.select_related("corpus").get(pk=job_id)
        if job.status == IngestJob.Status.DONE:
            return job
        job.status = IngestJob.Status.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.finished_at = None
        job.error = ""
        job.save(update_fields=["status", "started_at", "finished_at", "error"])
        if not job.expanded:
            _job_expand(job)
        if on_progress:
            on_progress(job)
        while True:
            _lease_take(job_id, runner)
            units = _batch_next(job, batch_size)
            if not units:
                break
            report = IngestReport()
            sources_ingest_batch(corpus=job.corpus, sources=[_unit_source(unit) for unit in units], report=report,
                                 heartbeat=_lease_keeper(job_id, runner), encode_batch_size=batch_size)
            _units_record(job, units, report)
            if on_progress:
                on_progress(job)
        indexes.indexes_flush([job.corpus_id])
        _job_counts_refresh(job)
        job.status = IngestJob.Status.DONE
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "finished_at"])
        return job
    finally:
        IngestJob.objects.filter(pk=job_id, lease_owner=runner).update(lease_owner="", lease_expires_at=None)


def job_fail(*, job_id: int, reason: str) -> None:
    """Mark a job failed as a whole (its units keep their own outcomes)."""
    IngestJob.objects.filter(pk=job_id).update(
        status=IngestJob.Status.FAILED, error=reason, finished_at=timezone.now(), lease_owner="", lease_expires_at=None
    )


def job_retry_failed(*, job: IngestJob) -> int:
    """Put the job's failed units (those that were read at all) back in the queue; returns how many."""
    with transaction.atomic():
        count = job.units.filter(status=IngestUnit.Status.FAILED, retryable=True).update(
            status=IngestUnit.Status.PENDING, reason=""
        )
        if count or job.status == IngestJob.Status.FAILED:
            job.status = IngestJob.Status.QUEUED
            job.finished_at = None
            job.save(update_fields=["status", "finished_at"])
            _job_counts_refresh(job)
            job_enqueue(job)
    return count


def jobs_resume() -> list[int]:
    """Queue every job that is not finished (after a worker restart); returns their ids."""
    from ..tasks import ingest_job_run

    job_ids = list(
        IngestJob.objects.filter(status__in=[IngestJob.Status.QUEUED, IngestJob.Status.RUNNING]).values_list("pk", flat=True)
    )
    for job_id in job_ids:
        task_dispatch(ingest_job_run, job_id)
    return job_ids


def _lease_take(job_id: int, runner: str) -> None:
    now = timezone.now()
    taken = IngestJob.objects.filter(pk=job_id).filter(
        Q(lease_owner="") | Q(lease_owner=runner) | Q(lease_expires_at__lt=now)
    ).update(lease_owner=runner, lease_expires_at=now + timedelta(seconds=settings.MULTIMODAL_JOB_LEASE_S))
    if not taken:
        expires = IngestJob.objects.filter(pk=job_id).values_list("lease_expires_at", flat=True).first()
        if expires is None and not IngestJob.objects.filter(pk=job_id).exists():
            raise IngestJob.DoesNotExist(f"no ingest job {job_id}")
        raise JobBusy(max((expires - now).total_seconds(), 0) + 1 if expires else 1)


def _lease_keeper(job_id: int, runner: str) -> Callable[[], None]:
    """A heartbeat for long work inside a batch: renews the lease every quarter lease at most.

    Raises JobBusy if another runner took the job meanwhile; the batch is then abandoned.
    """
    renewed_at = time.monotonic()

    def keep() -> None:
        nonlocal renewed_at
        if time.monotonic() - renewed_at >= settings.MULTIMODAL_JOB_LEASE_S / 4:
            _lease_take(job_id, runner)
            renewed_at = time.monotonic()

    return keep


def _batch_next(job: IngestJob, batch_size: int) -> list[IngestUnit]:
    """The next pending units in order, as many as are written together.

    A unit that reads a file (an image, a text file, a row with a picture) is held decoded until its
    batch is written, so a batch has at most ``batch_size`` of them. A recording makes a batch of
    its own: transcribing one takes as long as encoding hundreds of images, so the job's progress
    moves after each. Rows without a picture weigh little, and up to ``ROW_BATCHES_PER_WRITE``
    encode batches of them are written together.
    """
    pending = job.units.filter(status=IngestUnit.Status.PENDING).order_by("pk")
    units = list(pending[:batch_size * ROW_BATCHES_PER_WRITE])
    batch, files = [], 0
    for unit in units:
        if unit.row is None or unit.path:
            if _is_recording(unit):
                return batch or [unit]
            if files == batch_size:
                break
            files += 1
        batch.append(unit)
    return batch


def _is_recording(unit: IngestUnit) -> bool:
    if unit.row is not None or not unit.path:
        return False
    try:
        return content_kind(unit.name, file_head(Path(unit.path))) == "audio"
    except OSError:
        return False  # reading will fail and say why


def _job_counts_refresh(job: IngestJob) -> None:
    """Count the job's units afresh (it reads them all: after expanding, retrying and at the end)."""
    units = job.units
    job.total = units.count()
    job.done = units.filter(status=IngestUnit.Status.DONE).count()
    job.failed = units.filter(status=IngestUnit.Status.FAILED).count()
    job.save(update_fields=["total", "done", "failed"])


def _units_record(job: IngestJob, units: list[IngestUnit], report: IngestReport) -> None:
    """Record each unit's outcome and move the job's counts by as many, in one transaction.

    Only units still pending are recorded and counted: a runner that lost the lease during a batch
    the next runner has recorded meanwhile changes nothing. Counting the batch (rather than all the
    job's units again) keeps a batch's cost the same however large the job is.
    """
    reasons = {failure.key: failure.reason for failure in report.failures}
    # A unit that landed altered (text cut, another encoding) keeps what changed as its reason.
    warnings = {warning.key: warning.reason for warning in report.warnings}
    by_status: dict[str, list[IngestUnit]] = {IngestUnit.Status.DONE: [], IngestUnit.Status.FAILED: []}
    for unit in units:
        if unit.pk in report.items:
            unit.item_id, unit.created_item = report.items[unit.pk]
            # A note from expanding the job (a file name decoded) stays, with what ingesting changed.
            unit.status = IngestUnit.Status.DONE
            unit.reason = "; ".join(note for note in (unit.reason, warnings.get(unit.pk)) if note)
        else:
            unit.status = IngestUnit.Status.FAILED
            unit.reason = reasons.get(unit.pk, "no outcome was recorded")
        by_status[unit.status].append(unit)
    fields = ["item", "created_item", "status", "reason", "updated_at"]
    pending = {"status": IngestUnit.Status.PENDING}
    with transaction.atomic():
        done = rows_update(by_status[IngestUnit.Status.DONE], fields, only_if=pending)
        failed = rows_update(by_status[IngestUnit.Status.FAILED], fields, only_if=pending)
        IngestJob.objects.filter(pk=job.pk).update(done=F("done") + done, failed=F("failed") + failed)
    job.done += done
    job.failed += failed


def _unit_source(unit: IngestUnit) -> Source:
    path = Path(unit.path) if unit.path else None
    if unit.row is not None:
        row = unit.row
        return Source(name=unit.name, key=unit.pk, row=ProductRow(
            title=row["title"], description=row["description"], specs=row["specs"], specs_text=row["specs_text"],
            external_id=row["external_id"], image_name=row["image_ref"], read_image=path.read_bytes if path else None,
            notes=tuple(row.get("notes", ())),
        ))
    try:
        size = path.stat().st_size
    except OSError:
        size = None  # reading will fail and say why
    return Source(name=unit.name, read=path.read_bytes, size=size, key=unit.pk)


def _job_expand(job: IngestJob) -> None:
    """Turn the job's inputs into units, once: archives extracted, tables read row by row."""
    files, tables, rejected = [], [], []
    renamed: dict[Path, str] = {}  # files whose names had to be decoded: how
    for index, entry in enumerate(job.inputs):
        name = entry["name"]
        if entry.get("error"):
            rejected.append((name, entry["error"]))
            continue
        path = Path(entry["path"])
        if entry.get("note"):
            renamed[path] = entry["note"]
        try:
            kind = content_kind(name, file_head(path))
        except OSError as exc:
            rejected.append((name, f"could not be read ({exc.strerror or exc})"))
            continue
        if kind == "zip":
            _archive_expand(name, path, job_dir(job) / "extracted" / f"{index:05d}", files, tables, rejected, renamed)
        elif kind == "table":
            tables.append((name, path))
        else:
            files.append((name, path))
    consumed: set[Path] = set()
    row_units, table_summaries = [], []
    image_lookup = _image_lookup(files)
    for name, path in tables:
        try:
            table = table_read(path, name=Path(name).name, mapping=job.column_mapping or None,
                               max_rows=settings.MULTIMODAL_MAX_TABLE_ROWS, limits=text_limits())
        except UserInputError as exc:
            rejected.append((name, str(exc).removeprefix(f"{Path(name).name}: ")))
            continue
        notes = ([renamed[path]] if path in renamed else []) + table.notes
        table_summaries.append({"name": name, "headers": table.headers, "mapping": table.mapping.as_dict(),
                                "rows": len(table.rows), "notes": notes})
        for row in table.rows:
            image_path = image_lookup(row.image_ref, relative_to=name) if row.image_ref else None
            if image_path:
                consumed.add(image_path)
            row_units.append(IngestUnit(job=job, name=f"{name} line {row.line}", path=str(image_path or ""), row={
                "title": row.title, "description": row.description, "specs": row.specs,
                "specs_text": row.specs_text, "external_id": row.external_id, "image_ref": row.image_ref,
                "notes": list(row.notes),
            }))
        rejected += [(f"{name} line {failure.line}", failure.reason) for failure in table.failures]
    units = [IngestUnit(job=job, name=name, path=str(path), reason=renamed.get(path, ""))
             for name, path in files if path not in consumed]
    units += row_units
    units += [IngestUnit(job=job, name=name, status=IngestUnit.Status.FAILED, reason=reason, retryable=False)
              for name, reason in rejected]
    with transaction.atomic():
        IngestUnit.objects.bulk_create(units, batch_size=500)
        job.expanded = True
        job.tables = table_summaries
        job.save(update_fields=["expanded", "tables"])
        _job_counts_refresh(job)


def _archive_expand(name: str, path: Path, destination: Path, files: list, tables: list, rejected: list,
                    renamed: dict) -> None:
    try:
        entries, failures = zip_extract_safely(
            path, destination,
            max_entries=settings.MULTIMODAL_MAX_ARCHIVE_ENTRIES,
            max_total_bytes=settings.MULTIMODAL_MAX_ARCHIVE_MB * 1024 * 1024,
            max_entry_bytes=settings.MULTIMODAL_MAX_FILE_MB * 1024 * 1024,
            max_ratio=settings.MULTIMODAL_MAX_ARCHIVE_RATIO,
        )
    except UserInputError as exc:
        rejected.append((name, str(exc).removeprefix(f"{Path(name).name}: ").removeprefix(f"{name}: ")))
        return
    rejected += [(f"{name}/{failure.name}", failure.reason) for failure in failures]
    for entry in entries:
        entry_name = f"{name}/{entry.name}"
        if entry.note:
            renamed[entry.path] = entry.note
        kind = content_kind(entry.name, file_head(entry.path))
        if kind == "zip":
            rejected.append((entry_name, "archives inside archives are not expanded"))
        elif kind == "table":
            tables.append((entry_name, entry.path))
        else:
            files.append((entry_name, entry.path))


def _image_lookup(files: list[tuple[str, Path]]) -> Callable[..., Path | None]:
    """Find a table's image reference among the job's files.

    Tried in order: relative to the table's own folder (or archive), the full name, the path inside
    its archive, and the base name when only one file has it.
    """
    by_name: dict[str, Path] = {}
    by_basename: dict[str, list[Path]] = {}
    for name, path in files:
        by_name[name] = path
        if "/" in name:  # "upload.zip/photos/a.jpg" can be referenced as "photos/a.jpg"
            by_name.setdefault(name.split("/", 1)[1], path)
        by_basename.setdefault(Path(name).name, []).append(path)

    def lookup(reference: str, *, relative_to: str) -> Path | None:
        reference = reference.strip().replace("\\", "/")
        while reference.startswith("./"):
            reference = reference[2:]
        beside_table = str(Path(relative_to).parent / reference)
        for candidate in (beside_table, reference):
            if candidate in by_name:
                return by_name[candidate]
        candidates = by_basename.get(Path(reference).name, [])
        return candidates[0] if len(candidates) == 1 else None

    return lookup
