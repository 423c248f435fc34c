"""Ingest jobs: uploads (or paths) expanded into units, processed in batches, each unit accounted once.

A job's inputs are expanded once into units: a file, an archive entry, or a table row (whose image
may be another file of the same job; that file is then not an item of its own). Units are processed
in batches by whichever runner holds the job's lease; a runner that dies loses the lease after
``MULTIMODAL_JOB_LEASE_S`` and the next one continues with the units still pending. Items are keyed
by content hash (or a row's id), so a batch processed twice updates rather than duplicates.

A runner that dies (killed for memory, say) leaves its batch's units pending with one more attempt
counted: they are then processed one at a time, and a unit that killed ``MULTIMODAL_JOB_MAX_ATTEMPTS``
runners fails with that reason, so a poisonous file cannot keep a job running forever. A job that is
cancelled, failed or done is never run again by a task that arrives late; a person's retry queues it anew.

Each job owns a folder under ``MULTIMODAL_UPLOAD_ROOT`` (``files_dir``, a random name) for its upload
copies and extracted archives; `job_files_release` deletes what nothing can read any more.
"""
import logging
import os
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.move import file_move_safe
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import get_valid_filename

from ..errors import UserInputError
from ..models import Corpus, IngestJob, IngestUnit
from ..readers.archives import zip_extract_safely
from ..readers.multipart_names import upload_name_note
from ..readers.sniffing import content_kind, file_head
from ..readers.tabular import ROLES, table_read
from ..retrieval import indexes
from ..row_updates import rows_update
from .background import BrokerUnavailable, broker_check, task_dispatch
from .corpora import corpus_get_or_create
from .ingest import IngestReport, ProductRow, Source, batches_ingest, files_discover, text_limits

logger = logging.getLogger(__name__)
FAILURES_SHOWN = 1000
# A knowledge base's rows are written (looked up, inserted, their vectors upserted) this many encode
# batches at a time: a write has fixed costs (queries, a vector store round trip, the lease, progress)
# which, paid for every encode batch of 32 short texts, cost about half as much as encoding them.
ROW_BATCHES_PER_WRITE = 8
MAX_NAME_BYTES, MAX_SUFFIX_BYTES = 255, 16  # a file name on disk; the longest extension kept as it is


class JobBusy(Exception):
    """Another runner holds the job's lease; try again after ``retry_in_s``."""

    def __init__(self, retry_in_s: float):
        super().__init__(f"job is being processed elsewhere; retry in {retry_in_s:.0f} s")
        self.retry_in_s = retry_in_s


class JobStopped(Exception):
    """The job is no longer to be run here: cancelled, failed, or finished by another runner."""


def job_dir(job: IngestJob) -> Path:
    return Path(settings.MULTIMODAL_UPLOAD_ROOT) / job.files_dir


def job_create_from_uploads(*, corpus_name: str, files: list, user=None, column_mapping: dict | None = None) -> IngestJob:
    """Store uploaded files for the workers and queue a job; returns before any file is read.

    Raises BrokerUnavailable (nothing stored) if the workers' broker does not answer. If the broker
    drops between the check and the commit, the job stays queued and the periodic re-queue
    (`jobs_requeue`) hands it out once the broker answers again.
    """
    if not files:
        raise UserInputError("no files: choose files, zip archives or CSV/XLSX tables to upload")
    total_bytes = sum(upload.size for upload in files)
    if total_bytes > settings.MULTIMODAL_MAX_UPLOAD_MB * 1024 * 1024:
        raise UserInputError(f"the upload is {total_bytes:,} bytes; the limit is {settings.MULTIMODAL_MAX_UPLOAD_MB} MB")
    broker_check()
    corpus = corpus_get_or_create(name=corpus_name)
    mapping = _mapping_clean(column_mapping)
    directory = None
    try:
        with transaction.atomic():
            job = IngestJob.objects.create(corpus=corpus, created_by=user, column_mapping=mapping)
            directory = job_dir(job)
            (directory / "uploads").mkdir(parents=True, exist_ok=True)
            for index, upload in enumerate(files):
                display_name = Path(upload.name).name
                target = directory / "uploads" / _stored_name(index, display_name)
                _upload_keep(upload, target)
                note = upload_name_note(upload)  # a name that was not UTF-8, decoded on the way in
                job.inputs.append({"name": display_name, "path": str(target), **({"note": note} if note else {})})
            job.save(update_fields=["inputs"])
            job_enqueue(job)
    except BaseException:
        if directory is not None:  # the job was not stored: neither are its files
            shutil.rmtree(directory, ignore_errors=True)
        raise
    return job


def _upload_keep(upload, target: Path) -> None:
    """Put an uploaded file at ``target``: Django's temporary file is moved (one copy on disk, not two)."""
    if hasattr(upload, "temporary_file_path"):
        file_move_safe(upload.temporary_file_path(), str(target))
        return
    with open(target, "wb") as handle:
        for chunk in upload.chunks():
            handle.write(chunk)


def _stored_name(index: int, display_name: str) -> str:
    """An upload's file name on disk: numbered, safe characters, within the 255 bytes a name may take.

    A name of 100 CJK characters (fine on Windows) is 300 bytes in UTF-8: its stem is cut, its
    extension kept; the job shows the name as sent.
    """
    try:
        safe = get_valid_filename(display_name)
    except SuspiciousFileOperation:  # nothing usable left ("", ".", "..")
        safe = "file"
    prefix = f"{index:05d}-"
    stem, suffix = os.path.splitext(safe)
    if len(suffix.encode()) > MAX_SUFFIX_BYTES:
        stem, suffix = safe, ""
    budget = MAX_NAME_BYTES - len(prefix) - len(suffix.encode())
    stem = stem.encode()[:budget].decode(errors="ignore")  # never half a character
    return f"{prefix}{stem or 'file'}{suffix}"


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
    """Hand the job to a worker once the current transaction commits (so the worker sees it).

    If the broker refuses it then, the job stays queued for `jobs_requeue` (the commit cannot be undone).
    """
    transaction.on_commit(lambda: _job_dispatch(job.pk, raise_unavailable=False))


def _job_dispatch(job_id: int, *, raise_unavailable: bool = True) -> None:
    from ..tasks import ingest_job_run

    try:
        task_dispatch(ingest_job_run, job_id)
    except BrokerUnavailable:
        if raise_unavailable:
            raise
        logger.warning("job %s stays queued: the broker did not take it; it is queued again when it answers", job_id)
        return
    IngestJob.objects.filter(pk=job_id).update(dispatched_at=timezone.now())


def job_run(
    *,
    job_id: int,
    runner: str | None = None,
    batch_size: int | None = None,
    on_progress: Callable[[IngestJob], None] | None = None,
) -> IngestJob:
    """Process every pending unit of the job, then flush the collection and mark the job done.

    ``runner`` names this run (the lease owner): unique per run, so a redelivered task never takes
    over the lease of the run it replaces before that lease expires. Raises JobBusy if another
    runner holds the job. Safe to call again after a crash; a job that is no longer queued or
    running (cancelled, failed, done) is returned as it is. When the job has finished, its upload
    copies are released (`job_files_release`).
    """
    runner = runner or uuid.uuid4().hex
    batch_size = batch_size or settings.MULTIMODAL_ENCODE_BATCH_SIZE
    try:
        _lease_take(job_id, runner)
        try:
            _job_process(job_id, runner=runner, batch_size=batch_size, on_progress=on_progress)
        finally:
            IngestJob.objects.filter(pk=job_id, lease_owner=runner).update(lease_owner="", lease_expires_at=None)
    except JobStopped:
        pass  # cancelled (or finished elsewhere) meanwhile: what this run recorded stays
    job = IngestJob.objects.select_related("corpus").get(pk=job_id)
    job_files_release(job=job)
    return job


def _job_process(job_id: int, *, runner: str, batch_size: int, on_progress) -> None:
    job = IngestJob.objects.select_related("corpus").get(pk=job_id)
    started = IngestJob.objects.filter(pk=job_id, status__in=IngestJob.ACTIVE).update(
        status=IngestJob.Status.RUNNING, started_at=job.started_at or timezone.now(), finished_at=None, error="",
    )
    if not started:
        raise JobStopped
    job.refresh_from_db()
    if not job.expanded:
        _job_expand_counted(job)
    if on_progress:
        on_progress(job)
    unrecorded: list[list[IngestUnit]] = []  # taken (their attempts counted), outcomes not yet recorded

    def batches():
        after = 0  # the batch before is still being encoded: its units are pending, and not taken again
        while True:
            _lease_take(job_id, runner)
            units = _batch_next(job, batch_size, after_pk=after)
            if not units:
                return
            _units_attempts_add(units, 1)
            unrecorded.append(units)
            after = units[-1].pk
            yield units, IngestReport()

    def recorded(batch, report: IngestReport) -> None:
        units = batch[0]
        _units_record(job, units, report)
        unrecorded.remove(units)
        if on_progress:
            on_progress(job)

    try:
        batches_ingest(corpus=job.corpus, batches=batches(), report_of=lambda batch: batch[1], on_saved=recorded,
                       sources_of=lambda batch: [_unit_source(unit) for unit in batch[0]],
                       # A unit a dead run left is worked on with nothing beside it: if it kills this run too, no
                       # other unit is counted against.
                       alone=lambda batch: any(unit.attempts for unit in batch[0]),
                       heartbeat=_lease_keeper(job_id, runner), encode_batch_size=batch_size)
    except BaseException:
        for units in unrecorded:  # this run did not die: the try does not count against them
            _units_attempts_add(units, -1)
        raise
    indexes.indexes_flush([job.corpus_id])
    _job_counts_refresh(job)
    IngestJob.objects.filter(pk=job_id, status=IngestJob.Status.RUNNING).update(
        status=IngestJob.Status.DONE, finished_at=timezone.now()
    )


def _job_expand_counted(job: IngestJob) -> None:
    """`_job_expand`, failing the job instead once reading its uploads has killed as many runs as allowed."""
    limit = settings.MULTIMODAL_JOB_MAX_ATTEMPTS
    if job.expand_attempts >= limit:
        job_fail(job_id=job.pk, reason=f"worker died {job.expand_attempts} times while reading the uploaded files "
                                       "(out of memory?)")
        raise JobStopped
    IngestJob.objects.filter(pk=job.pk).update(expand_attempts=F("expand_attempts") + 1)
    try:
        _job_expand(job)  # writes expand_attempts back as it was: a run that finishes does not count
    except BaseException:
        IngestJob.objects.filter(pk=job.pk).update(expand_attempts=F("expand_attempts") - 1)
        raise


def job_fail(*, job_id: int, reason: str) -> None:
    """Mark a job failed as a whole (its units keep their own outcomes); a cancelled job stays cancelled."""
    IngestJob.objects.filter(pk=job_id, status__in=IngestJob.ACTIVE).update(
        status=IngestJob.Status.FAILED, error=reason, finished_at=timezone.now(), lease_owner="", lease_expires_at=None
    )
    job = IngestJob.objects.filter(pk=job_id).first()
    if job is not None:
        job_files_release(job=job)


def job_cancel(*, job: IngestJob) -> bool:
    """Stop a queued or running job for good; returns False (and changes nothing) if it had finished.

    Units already recorded stay (their items too); the batch a runner is writing is recorded, and
    nothing after it runs. Its upload copies are deleted at once, or by the runner as it stops.
    """
    cancelled = IngestJob.objects.filter(pk=job.pk, status__in=IngestJob.ACTIVE).update(
        status=IngestJob.Status.CANCELLED, finished_at=timezone.now()
    )
    job.refresh_from_db()
    if cancelled:
        job_files_release(job=job)
    return bool(cancelled)


def job_retry_failed(*, job: IngestJob) -> int:
    """Put the job's failed units (those that were read at all) back in the queue; returns how many.

    A cancelled job is not run again (its files are gone). Raises BrokerUnavailable (nothing
    changed) if there is something to retry and the workers' broker does not answer.
    """
    if job.status == IngestJob.Status.CANCELLED:
        return 0
    retryable = job.units.filter(status=IngestUnit.Status.FAILED, retryable=True)
    if retryable.exists() or job.status == IngestJob.Status.FAILED:
        broker_check()
    with transaction.atomic():
        count = retryable.update(status=IngestUnit.Status.PENDING, reason="", attempts=0)
        if count or job.status == IngestJob.Status.FAILED:
            job.status = IngestJob.Status.QUEUED
            job.finished_at = None
            job.error = ""
            job.expand_attempts = 0  # a person asked again: the runs that died on its uploads are forgiven
            job.save(update_fields=["status", "finished_at", "error", "expand_attempts"])
            _job_counts_refresh(job)
            job_enqueue(job)
    return count


def jobs_requeue(*, stale_only: bool) -> list[int]:
    """Hand queued and running jobs to the workers again; returns their ids.

    A worker that starts hands out every one (``stale_only=False``): the runner of a running one
    may have died with it, and a copy that finds it held waits for the lease. The periodic run
    (``stale_only=True``) hands out those no live runner holds whose last hand-out is older than
    ``MULTIMODAL_JOBS_REQUEUE_S``: their task was lost (a broker restarted without its queue, a
    hand-out the broker refused). A job still waiting its turn may so be handed out twice; the
    second copy finds it finished or held and does nothing.
    """
    jobs = IngestJob.objects.filter(status__in=IngestJob.ACTIVE)
    if stale_only:
        now = timezone.now()
        handed_out_before = now - timedelta(seconds=settings.MULTIMODAL_JOBS_REQUEUE_S)
        jobs = jobs.filter(Q(lease_owner="") | Q(lease_expires_at__lt=now)).filter(
            Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=handed_out_before)
        )
    job_ids = list(jobs.order_by("pk").values_list("pk", flat=True))
    for job_id in job_ids:
        _job_dispatch(job_id)
    return job_ids


def job_files_release(*, job: IngestJob) -> int:
    """Delete what of the job's folder nothing will read again; returns the bytes freed.

    A queued or running job, or one a runner still holds, keeps everything. A cancelled job keeps
    nothing, nor does a finished one once ``MULTIMODAL_JOB_FILES_KEEP_H`` have passed (its failed
    units then stop being retryable). Until then a finished (done or failed) job keeps the files a
    retry of its failed (or still pending) units reads: every upload if it failed before reading them.
    """
    now = timezone.now()
    if job.status in IngestJob.ACTIVE or (job.lease_owner and job.lease_expires_at and job.lease_expires_at > now):
        return 0
    directory = job_dir(job)
    kept_until = (job.finished_at or now) + timedelta(hours=settings.MULTIMODAL_JOB_FILES_KEEP_H)
    if job.status == IngestJob.Status.CANCELLED or kept_until <= now:
        job.units.filter(status=IngestUnit.Status.FAILED, retryable=True).update(retryable=False)
        return tree_remove(directory)
    if not job.expanded:
        return 0
    needed = job.units.filter(Q(status=IngestUnit.Status.PENDING) | Q(status=IngestUnit.Status.FAILED, retryable=True))
    return tree_prune(directory, keep={os.path.normpath(path) for path in needed.exclude(path="")
                                       .values_list("path", flat=True)})


def tree_remove(directory: Path) -> int:
    """Delete ``directory`` and all it holds; returns the bytes freed (0 if it was not there)."""
    freed = tree_prune(directory, keep=set())
    shutil.rmtree(directory, ignore_errors=True)
    return freed


def tree_prune(directory: Path, *, keep: set[str]) -> int:
    """Delete every file under ``directory`` whose normalised path is not in ``keep``, then empty folders."""
    freed = 0
    for folder, subfolders, names in os.walk(directory, topdown=False):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.normpath(path) in keep:
                continue
            try:
                size = os.lstat(path).st_size
                os.unlink(path)
                freed += size
            except FileNotFoundError:  # removed by a concurrent sweep
                pass
        if folder != str(directory):
            try:
                os.rmdir(folder)
            except OSError:  # still holds kept files
                pass
    return freed


def _lease_take(job_id: int, runner: str) -> None:
    """Take or renew the job's lease for ``runner``.

    Raises JobStopped if the job is no longer queued or running, JobBusy if another runner holds it.
    """
    now = timezone.now()
    taken = IngestJob.objects.filter(pk=job_id, status__in=IngestJob.ACTIVE).filter(
        Q(lease_owner="") | Q(lease_owner=runner) | Q(lease_expires_at__lt=now)
    ).update(lease_owner=runner, lease_expires_at=now + timedelta(seconds=settings.MULTIMODAL_JOB_LEASE_S))
    if not taken:
        state = IngestJob.objects.filter(pk=job_id).values("status", "lease_expires_at").first()
        if state is None:
            raise IngestJob.DoesNotExist(f"no ingest job {job_id}")
        if state["status"] not in IngestJob.ACTIVE:
            raise JobStopped
        expires = state["lease_expires_at"]
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


def _batch_next(job: IngestJob, batch_size: int, *, after_pk: int = 0) -> list[IngestUnit]:
    """The next pending units in order after ``after_pk`` (those up to it are being worked on), as many as
    are written together.

    A unit that reads a file (an image, a text file, a row with a picture) is held decoded until its
    batch is written, so a batch has at most ``batch_size`` of them. A recording, a video or a
    document makes a batch of its own: transcribing one (or cutting a video, reading a long PDF's
    pages) takes as long as encoding hundreds of images, so the job's progress moves after each,
    and a document's page renderings are not held beside a batch of others. Rows without a picture weigh little, and up to ``ROW_BATCHES_PER_WRITE``
    encode batches of them are written together.

    A unit a dead runner left (``attempts``) is processed alone, so it takes no other unit down with
    it; one that has killed ``MULTIMODAL_JOB_MAX_ATTEMPTS`` runs fails here with that reason.
    """
    pending = job.units.filter(status=IngestUnit.Status.PENDING, pk__gt=after_pk).order_by("pk")
    _units_give_up(job, pending)
    units = list(pending[:batch_size * ROW_BATCHES_PER_WRITE])
    batch, files = [], 0
    for unit in units:
        if unit.attempts:
            return batch or [unit]
        if unit.row is None or unit.path:
            if _is_processed_alone(unit):
                return batch or [unit]
            if files == batch_size:
                break
            files += 1
        batch.append(unit)
    return batch


def _units_give_up(job: IngestJob, pending) -> None:
    limit = settings.MULTIMODAL_JOB_MAX_ATTEMPTS
    with transaction.atomic():
        failed = pending.filter(attempts__gte=limit).update(
            status=IngestUnit.Status.FAILED, reason=f"worker died {limit} times while processing this file (out of memory?)"
        )
        if failed:
            IngestJob.objects.filter(pk=job.pk).update(failed=F("failed") + failed)
    job.failed += failed


def _units_attempts_add(units: list[IngestUnit], step: int) -> None:
    """Count (or uncount) a run on the units, committed at once: a run that dies cannot take it back."""
    IngestUnit.objects.filter(pk__in=[unit.pk for unit in units]).update(attempts=F("attempts") + step)


def _is_processed_alone(unit: IngestUnit) -> bool:
    """Recordings, videos and documents: each takes long (and a document's pages are held in memory)."""
    if unit.row is not None or not unit.path:
        return False
    try:
        return content_kind(unit.name, file_head(Path(unit.path))) in ("audio", "video", "document")
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
    # "attempts" as loaded, before this run counted itself: a run that records an outcome did not die.
    fields = ["item", "created_item", "status", "reason", "attempts", "updated_at"]
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
        job.save(update_fields=["expanded", "tables", "expand_attempts"])
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
