"""Writing many vectors to the store beside other work (bench_scale's fill).

Imports nothing but the settings and the store, so a spawned worker needs no Django app setup.
"""
import math
import multiprocessing
import os
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from django.conf import settings

from .. import store

# Imports in flight at once: the caller need not wait for one to end (~3 s of the server's work per 30k 512-d
# rows) before handing over the next.
IMPORTS_AT_ONCE = 2
# The most rows one bulk load takes: about one segment of the local server's (it seals one at ~230k 512-d rows).
LOAD_ROWS_MAX = 200_000


class VectorWriters:
    """Vectors written to the store (`VectorCollection.load`) beside the caller's own work, at most one load
    per writer pending.

    An engine that imports files (the local server) takes rows by the hundred thousand, from threads:
    its work is the server's. Otherwise the rows are upserted, which pymilvus packs row by row in Python
    (about a quarter of a millisecond each at 512-d): in a thread that would share one core with the
    caller's database work, so a server elsewhere gets ``processes`` worker processes (each its own
    interpreter and client), and Milvus Lite, which one process owns, a thread.
    """

    def __init__(self, collection: store.VectorCollection, *, processes: int):
        self.collection = collection
        self.imports = collection.loads_files()
        if self.imports or processes < 1 or not store.engine_status().shared:
            self.limit = IMPORTS_AT_ONCE if self.imports else 1
            self.pool = ThreadPoolExecutor(max_workers=self.limit)
        else:
            self.limit = processes
            self.pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_writer_start, initargs=(str(settings.MILVUS_URI),))
        self.pending: deque = deque()

    def rows_per_load(self, added: int, batch_size: int) -> int:
        """How many rows to gather before a load when ``added`` rows come ``batch_size`` at a time: a batch
        when rows are upserted; for imports, about a quarter of the fill (loading overlaps the rest of
        it), at most a segment's worth (each import makes segments of its own)."""
        if not self.imports:
            return batch_size
        return min(LOAD_ROWS_MAX, max(batch_size, math.ceil(added / 4)))

    def ready(self) -> None:
        """Wait until every writer process has started and connected to the store (a spawned interpreter
        takes seconds to import its way there: a fill's clock starts after, as ingest's starts with a
        running worker)."""
        if not isinstance(self.pool, ProcessPoolExecutor):
            return
        started: set[int] = set()
        while len(started) < self.limit:
            # A process takes tasks only once its initializer has connected: the pids that answer are ready.
            started.update(future.result() for future in [self.pool.submit(os.getpid) for _ in range(self.limit)])
            if len(started) < self.limit:
                time.sleep(0.05)

    def write(self, columns: store.VectorColumns) -> None:
        while len(self.pending) >= self.limit:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(vectors_load, self.collection.name, self.collection.dim, columns))

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


def vectors_load(name: str, dim: int, columns: store.VectorColumns) -> int:
    """Load one batch of vectors through the store (in whichever process runs this)."""
    # Stored is enough: the fill waits for every index (and so for reads) once, at its end.
    return store.VectorCollection(name, dim).load(columns, readable=False)
