"""Handing work to the Celery workers, or, with no broker, to a thread of this process."""
import threading

from django.conf import settings
from django.db import connection, transaction


def task_dispatch(task, *args) -> None:
    """Run ``task(*args)`` on a worker; with no broker, beside this process so a request returns at once
    (or inline, when MULTIMODAL_JOBS_IN_THREAD is off, as in tests)."""
    if settings.CELERY_TASK_ALWAYS_EAGER and settings.MULTIMODAL_JOBS_IN_THREAD:
        def run() -> None:
            try:
                task.apply(args=args)
            finally:
                connection.close()

        threading.Thread(target=run, name=f"{task.name}{list(args)}", daemon=True).start()
    else:
        task.delay(*args)


def task_dispatch_on_commit(task, *args) -> None:
    """`task_dispatch` once the current transaction commits, so the worker sees the rows it is given."""
    transaction.on_commit(lambda: task_dispatch(task, *args))
