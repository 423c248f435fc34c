"""Celery tasks: thin wrappers that load ids and call a service (eager when no broker is set)."""
import logging
import os
import uuid

import redis.exceptions
from celery import shared_task
from celery.signals import worker_ready
from django.db import OperationalError

from . import store
from .errors import UserInputError
from .services.adapter_activation import index_build_run
from .services.adapter_training import adapter_train
from .services.jobs import JobBusy, job_fail, job_run, jobs_requeue
from .services.uploads_sweep import uploads_sweep
from .services.store_sync import store_check

logger = logging.getLogger(__name__)
# Errors that say a service is briefly unreachable, not that the job is wrong: retry with backoff.
TRANSIENT_ERRORS = (store.StoreUnavailable, redis.exceptions.ConnectionError, OperationalError, ConnectionError, TimeoutError)
MAX_RETRIES = 8


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def ingest_job_run(self, job_id: int) -> None:
    # The lease owner is this delivery, not the task: a message redelivered after its worker died
    # keeps the task id, and must wait for the dead run's lease to lapse (that is how deaths are counted).
    runner = f"{self.request.id}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    try:
        job_run(job_id=job_id, runner=runner)
    except JobBusy as busy:
        if self.request.is_eager:  # an eager retry would run again at once, in a loop: jobs_requeue comes back later
            return
        raise self.retry(countdown=busy.retry_in_s, max_retries=None) from None
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= MAX_RETRIES:
            job_fail(job_id=job_id, reason=f"gave up after {MAX_RETRIES} retries: {exc}")
            return
        raise self.retry(exc=exc, countdown=min(2 ** self.request.retries, 300)) from None
    except Exception as exc:
        job_fail(job_id=job_id, reason=f"{type(exc).__name__}: {exc}")
        raise


@shared_task(acks_late=True, reject_on_worker_lost=True)
def adapter_train_task(adapter_id: int) -> None:
    try:
        adapter_train(adapter_id=adapter_id)
    except UserInputError as exc:  # recorded on the adapter and shown on its page; a retry would fail the same way
        logger.info("adapter %s was not trained: %s", adapter_id, exc)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def index_build_task(build_id: int) -> None:
    index_build_run(build_id=build_id)


@shared_task
def store_check_task() -> str:
    """The periodic ``check_store --repair`` (CELERY_BEAT_SCHEDULE): what drifted, and what was done about it."""
    try:
        drift = store_check(repair=True)
    except store.StoreUnavailable as exc:  # the next run tries again; queued deletions wait in the database
        logger.warning("store check skipped: %s", exc)
        return f"skipped: {exc}"
    summary = drift.summary()
    logger.log(logging.WARNING if drift.found else logging.INFO, "store check: %s", summary)
    return summary


@shared_task
def jobs_requeue_task() -> list[int]:
    """The periodic re-queue (CELERY_BEAT_SCHEDULE): jobs whose task was lost go to the workers again."""
    requeued = jobs_requeue(stale_only=True)
    if requeued:
        logger.warning("ingest jobs %s had no task in the queue: queued again", requeued)
    return requeued


@shared_task
def uploads_sweep_task() -> str:
    """The periodic upload sweep (CELERY_BEAT_SCHEDULE): see services/uploads_sweep.py."""
    summary = uploads_sweep().summary()
    logger.info("upload sweep: %s", summary)
    return summary


@worker_ready.connect
def resume_unfinished_jobs(**kwargs) -> None:
    """A worker that starts picks up jobs a stopped or killed worker left unfinished, and sweeps uploads."""
    resumed = jobs_requeue(stale_only=False)
    if resumed:
        logger.info("resuming ingest jobs %s", resumed)
    logger.info("upload sweep: %s", uploads_sweep().summary())
