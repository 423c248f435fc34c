"""Which engine ``MILVUS_URI`` names, and the one pymilvus client per engine and process.

- ``local:DIR`` (the default, DIR = ``data/milvus``): a Milvus standalone server the product runs
  itself over DIR (`local_server`), shared by every process on the machine.
- ``http(s)://host:port``: a Milvus server someone else runs (docker compose, a cluster, a cloud).
- a filesystem path: Milvus Lite embedded in this process (one process per data folder; tests, tiny
  corpora).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from .local_server import LocalServer, LocalServerError
from .types import EngineStatus, StoreUnavailable

LOCAL_PREFIX = "local:"


class Engine:
    """Where the vectors live. ``flushes``: whether a flush after a batch of writes pays for itself;
    ``lists_segments``: whether it says which segments its searches read (and under which index)."""

    name = ""
    flushes = False
    lists_segments = True

    def __init__(self, uri: str):
        self.uri = uri

    def address(self) -> str:
        """What pymilvus connects to; an engine the product runs is started first if it is down."""
        return self.uri

    def start(self, on_wait=None) -> None:
        """Make the engine answer (starting it when the product runs it); ``on_wait()`` is called while waiting."""
        client()

    def status(self) -> EngineStatus:
        return EngineStatus(engine=self.name, uri=self.uri, address=self.uri, running=True)

    def gone(self) -> bool:
        """Whether the engine's process has ended and connecting again would start a new one (a local
        server that was stopped or crashed). A server that is alive but not answering is not gone:
        waiting for a new one to start would not help it."""
        return False

    def stop(self) -> bool:
        """Stop the engine if the product runs it; False when there was nothing to stop."""
        return False

    def incarnation(self) -> str | None:
        """Which start of the engine answers now, when the product can tell (a local server it runs): a
        client opened against another start is replaced, and the collections it loaded are opened again."""
        return None

    def import_folder(self) -> Path | None:
        """A folder on this machine whose files the engine can import (bulk loads), or None when it reads no
        files of ours (Milvus Lite; a server elsewhere, whose object storage this process cannot write)."""
        return None

    def unavailable(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"the vector store ({self.name} at {self.uri}) failed: {_first_line(exc)}",
                                engine=self.name)

    @contextmanager
    def serving(self):
        """The engine answering other processes while the block runs; yields the MILVUS_URI they use."""
        yield self.uri


class LiteEngine(Engine):
    name = "milvus-lite"
    # Lite brute-forces rows that were never flushed: a flush after ingest keeps searches fast.
    flushes = True
    lists_segments = False

    def status(self) -> EngineStatus:
        opened = self.uri in _clients
        return EngineStatus(engine=self.name, uri=self.uri, address=self.uri, running=opened, shared=False,
                            pid=os.getpid() if opened else None,
                            detail="embedded in the process that opens it" if opened else "not opened by this process")

    def unavailable(self, exc: Exception) -> StoreUnavailable:
        if any(sign in str(exc) for sign in ("Open local milvus failed", "Failed to start MilvusLite", "holds the lock")):
            return StoreUnavailable(
                f"Milvus Lite at {self.uri} is open in another process, and Lite serves one process at a time. "
                f"Leave MILVUS_URI unset to use the local Milvus server that the site, commands and workers "
                f"share, or set MILVUS_URI=http://HOST:PORT to use a Milvus server.", engine=self.name,
            )
        return super().unavailable(exc)

    @contextmanager
    def serving(self):
        """Lite serves one process: other processes reach the same folder through `milvus-lite server`."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "milvus-lite"), "server", "--data-dir", self.uri, "--host", "127.0.0.1",
             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        address = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while not _answers(address):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise StoreUnavailable(f"milvus-lite server over {self.uri} did not start (is the folder open "
                                           f"in another process?)")
                time.sleep(0.3)
            yield address
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=20)


class LocalEngine(Engine):
    name = "milvus-local"

    def __init__(self, uri: str):
        super().__init__(uri)
        self.server = LocalServer(uri[len(LOCAL_PREFIX):] or settings.DATA_DIR / "milvus",
                                  port=settings.MILVUS_LOCAL_PORT)

    def address(self, on_wait=None) -> str:
        try:
            return self.server.ensure_running(on_wait=on_wait).address
        except LocalServerError as exc:
            raise StoreUnavailable(str(exc), engine=self.name) from None

    def start(self, on_wait=None) -> None:
        self.address(on_wait=on_wait)
        client()

    def status(self) -> EngineStatus:
        state = self.server.running()
        if state is None:
            return EngineStatus(engine=self.name, uri=self.uri, address="", running=False,
                                detail=f"not running; data in {self.server.data_dir}")
        return EngineStatus(engine=self.name, uri=self.uri, address=state.address, running=True, pid=state.pid,
                            version=state.version, detail=f"data in {self.server.data_dir}, log {self.server.log_path}")

    def gone(self) -> bool:
        return self.server.state() is None

    def incarnation(self) -> str | None:
        return self.server.incarnation()

    def stop(self) -> bool:
        return self.server.stop()

    def import_folder(self) -> Path:
        # The server stores on this machine's disk (local storage) and reads an import's files by absolute path.
        return self.server.data_dir / "import"

    @contextmanager
    def serving(self):
        """The local server, started if it is down; stopped afterwards only if it was started here."""
        started_here = self.server.running() is None
        self.address()
        try:
            yield self.uri
        finally:
            if started_here:
                self.stop()


class RemoteEngine(Engine):
    name = "milvus-server"


def engine_for(uri: str) -> Engine:
    if uri.startswith(LOCAL_PREFIX):
        return LocalEngine(uri)
    if "://" in uri:
        return RemoteEngine(uri)
    return LiteEngine(uri)


def current() -> Engine:
    return engine_for(str(settings.MILVUS_URI))


# The open client per engine URI, with the engine's incarnation it was opened against.
_clients: dict[str, tuple[object, str | None]] = {}
_clients_lock = threading.RLock()


def client():
    """The process-wide pymilvus client for the configured engine (connecting, or starting it, once).

    A local server that another process restarted since (on other ports, maybe) gets a new client.
    """
    from pymilvus import MilvusClient

    uri = str(settings.MILVUS_URI)
    engine = engine_for(uri)
    incarnation = engine.incarnation()
    with _clients_lock:
        if uri in _clients and incarnation is not None and _clients[uri][1] not in (None, incarnation):
            client_forget(uri)
        if uri not in _clients:
            with translated(engine):
                address = engine.address()  # may start the server: ask which start answers after that
                # Dedicated: pymilvus otherwise shares one connection per address for the whole process and
                # closing a client leaves it open, so a client dropped after a failure would not connect again.
                _clients[uri] = (MilvusClient(uri=address, token=settings.MILVUS_TOKEN or "", dedicated=True,
                                              timeout=settings.MILVUS_CONNECT_TIMEOUT_S), engine.incarnation())
        return _clients[uri][0]


def client_forget(uri: str) -> None:
    """Drop a client whose engine failed, so the next call connects again (restarting a local server)."""
    with _clients_lock:
        stale = _clients.pop(uri, None)
    if stale is not None:
        try:
            stale[0].close()
        except Exception:  # it is broken already; closing is a courtesy
            pass


def close_all() -> None:
    """Close every open client (tests switch data folders; Lite releases its lock here)."""
    with _clients_lock:
        for open_client, _ in _clients.values():
            open_client.close()
        _clients.clear()


@contextmanager
def translated(engine: Engine | None = None):
    """pymilvus and engine errors leave the store as StoreUnavailable, naming the engine.

    gRPC's own errors count too: pymilvus passes a call's deadline (``timeout=``) through as one.
    """
    import grpc
    from pymilvus.exceptions import MilvusException

    try:
        yield
    except StoreUnavailable:
        raise
    except (MilvusException, grpc.RpcError, ConnectionError, TimeoutError, LocalServerError) as exc:
        engine = engine or current()
        if not isinstance(engine, LiteEngine):
            client_forget(engine.uri)
        raise engine.unavailable(exc) from exc


def _answers(address: str) -> bool:
    from pymilvus import MilvusClient

    try:
        MilvusClient(uri=address, timeout=2).list_collections()
        return True
    except Exception:  # not up yet
        return False


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:500]
