"""Handing work to the Celery workers, or, with no broker, to a thread of this process."""
import logging
import threading
import time

import kombu.exceptions
from django.conf import settings
from django.db import connection, transaction

logger = logging.getLogger(__name__)
# Publishing gives a broker that stopped answering this many quick tries, not Celery's default wait.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}


# In-process mode: when each periodic task is next due (monotonic seconds), see in_process_maintenance.
_maintenance_due = {"jobs_requeue_task": 0.0, "uploads_sweep_task": 0.0}
_maintenance_lock = threading.Lock()


class BrokerUnavailable(Exception):
    """The task queue (the Celery broker) does not answer: work handed to it now would be lost."""

    def __init__(self, cause: Exception | None = None):
        super().__init__("the job queue (the Celery broker) is not answering, so nothing was queued; "
                         "try again in a minute")
        self.cause = cause


def broker_check() -> None:
    """Raise BrokerUnavailable within seconds if a broker is configured and does not answer.

    Asked before committing work that only a worker can do, so a job is never stored unqueued.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    from searchsite.celery import app

    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                   timeout=settings.CELERY_BROKER_CONNECTION_TIMEOUT)
    except (kombu.exceptions.OperationalError, OSError) as exc:
        raise BrokerUnavailable(exc) from exc


def task_dispatch(task, *args) -> None:
    """Run ``task(*args)`` on a worker; with no broker, beside this process so a request returns at once
    (or inline, when MULTIMODAL_JOBS_IN_THREAD is off, as in tests).

    Raises BrokerUnavailable if the broker does not take the task.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER and settings.MULTIMODAL_JOBS_IN_THREAD:
        def run() -> None:
            try:
                task.apply(args=args)
            finally:
                connection.close()

        threading.Thread(target=run, name=f"{task.name}{list(args)}", daemon=True).start()
        return
    try:
        task.apply_async(args=args, retry_policy=PUBLISH_RETRY_POLICY)
    except (kombu.exceptions.OperationalError, OSError) as exc:
        raise BrokerUnavailable(exc) from exc


def task_dispatch_on_commit(task, *args) -> None:
    """`task_dispatch` once the current transaction commits, so the worker sees the rows it is given."""
    transaction.on_commit(lambda: task_dispatch(task, *args))


def in_process_maintenance(**kwargs) -> None:
    """Without a broker, what Celery beat does for the workers, done by the site (a request_started receiver).

    Jobs then run in threads of the web process, which nothing restarts them in if it dies: on the
    first request of a process, then every ``MULTIMODAL_JOBS_REQUEUE_S``, stale jobs are handed out
    again, and uploads are swept on the first request, then every ``MULTIMODAL_UPLOAD_SWEEP_S``; in a
    thread, so the request does not wait.
    """
    if not (settings.CELERY_TASK_ALWAYS_EAGER and settings.MULTIMODAL_JOBS_IN_THREAD):
        return
    from .. import tasks

    now = time.monotonic()
    intervals = {"jobs_requeue_task": settings.MULTIMODAL_JOBS_REQUEUE_S,
                 "uploads_sweep_task": settings.MULTIMODAL_UPLOAD_SWEEP_S}
    with _maintenance_lock:
        due = [name for name, at in _maintenance_due.items() if at <= now]
        for name in due:
            _maintenance_due[name] = now + intervals[name]
    for name in due:
        task_dispatch(getattr(tasks, name))
