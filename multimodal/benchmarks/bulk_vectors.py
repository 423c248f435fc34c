"""Writing many vectors to the store from worker processes, beside other work (bench_scale's fill).

Imports nothing but the settings and the store, so a spawned worker needs no Django app setup.
"""
import multiprocessing
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from django.conf import settings

from .. import store


class VectorWriters:
    """Batches of vectors written to the store beside the caller's own work, at most one per writer pending.

    pymilvus packs every row in Python (about a quarter of a millisecond each for 512 floats), so in
    a thread the writes would share one core with the database's. A server engine gets worker
    processes (each its own interpreter and client); Milvus Lite, which one process owns, a thread.
    """

    def __init__(self, collection: store.VectorCollection, *, processes: int):
        self.collection = collection
        in_process = processes < 1 or not store.engine_status().shared
        self.pool = ThreadPoolExecutor(max_workers=1) if in_process else ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context("spawn"), initializer=_writer_start,
            initargs=(str(settings.MILVUS_URI),))
        self.limit = 1 if in_process else processes
        self.pending: deque = deque()

    def ready(self) -> None:
        """Wait until every writer process has started and connected to the store (a spawned interpreter
        takes seconds to import its way there: a fill's clock starts after, as ingest's starts with a
        running worker)."""
        if self.limit == 1:
            return
        started: set[int] = set()
        while len(started) < self.limit:
            # A process takes tasks only once its initializer has connected: the pids that answer are ready.
            started.update(future.result() for future in [self.pool.submit(os.getpid) for _ in range(self.limit)])
            if len(started) < self.limit:
                time.sleep(0.05)

    def write(self, **batch) -> None:
        while len(self.pending) >= self.limit:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(vectors_write, self.collection.name, self.collection.dim, **batch))

    def __enter__(self) -> "VectorWriters":
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(cancel_futures=True)


def _writer_start(uri: str) -> None:
    """A writer process is a fresh interpreter (spawned: never forked from one holding gRPC channels)
    that needs the settings alone, pointed at the caller's engine; it connects before taking work."""
    settings.MILVUS_URI = uri
    store.engine_start()


def vectors_write(name: str, dim: int, *, corpus_id: int, item_ids, kinds, created_at, vectors) -> int:
    """Upsert one batch of text vectors through the store (in whichever process runs this)."""
    return store.VectorCollection(name, dim).upsert([
        store.VectorRecord(item_id=int(item_id), corpus_id=corpus_id, kind=kind, modality="text", vector=vector,
                           created_at=created)
        for item_id, kind, created, vector in zip(item_ids, kinds, created_at, vectors)
    ])
