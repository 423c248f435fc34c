"""Celery tasks: thin wrappers that load ids and call a service (eager when no broker is set)."""
from celery import shared_task

from .models import Corpus
from .services.ingest import items_ingest, sources_from_paths


@shared_task
def ingest_paths(corpus_id: int, paths: list[str]) -> dict:
    """Ingest files found under ``paths`` (on the worker's filesystem) into the corpus."""
    corpus = Corpus.objects.get(pk=corpus_id)
    sources, missing = sources_from_paths(paths)
    report = items_ingest(corpus=corpus, sources=sources)
    report.failures[:0] = missing
    return report.as_dict()
