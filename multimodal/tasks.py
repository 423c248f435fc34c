"""Celery tasks: thin wrappers that load ids and call a service (eager when no broker is set)."""
import logging

import redis.exceptions
from celery import shared_task
from celery.signals import worker_ready
from django.db import OperationalError

from . import store
from .errors import UserInputError
from .services.adapters import adapter_train, index_build_run
from .services.jobs import JobBusy, job_fail, job_run, jobs_resume

logger = logging.getLogger(__name__)
# Errors that say a service is briefly unreachable, not that the job is wrong: retry with backoff.
TRANSIENT_ERRORS = (store.StoreUnavailable, redis.exceptions.ConnectionError, OperationalError, ConnectionError, TimeoutError)
MAX_RETRIES = 8


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def ingest_job_run(self, job_id: int) -> None:
    try:
        job_run(job_id=job_id, runner=self.request.id)
    except JobBusy as busy:
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


@worker_ready.connect
def resume_unfinished_jobs(**kwargs) -> None:
    """A worker that starts picks up jobs a stopped or killed worker left unfinished."""
    resumed = jobs_resume()
    if resumed:
        logger.info("resuming ingest jobs %s", resumed)
