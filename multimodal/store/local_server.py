"""A Milvus standalone server that the product runs itself, over one data folder.

``MILVUS_URI=local:DIR`` (the default: ``data/milvus``) means: the vectors live in a real Milvus
standalone server (the binary the PyPI package ``milvus`` ships, with an embedded etcd and local
storage) whose files are all under DIR. The first process that needs the store starts it, detached
in a session of its own so that it outlives that command and serves the site, every management
command and the Celery workers at once; later processes find it through ``DIR/server.json``. A lock
file serialises starting and stopping, so two commands started together start one server.
It runs until ``manage.py milvus stop`` (or ``runstack``, which stops what it started).

The server process is ``DIR/bin/milvus run standalone`` itself, not the package's ``milvus-server``
wrapper: signalling the wrapper leaves the real server running orphaned.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import random
import signal
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

STATE_FILE = "server.json"
PORTS_FILE = "ports.json"  # the ports last used, kept across stops: a restart keeps them when free
LOCK_FILE = "server.lock"
LOG_FILE = "logs/server.log"
DEFAULT_PROXY_PORT = 19530
PORT_BLOCK = 32  # ports reserved in the plan of one server (its parts, its etcd pair, its metrics)
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 5.0
PORT_ATTEMPTS = 3  # starts tried when another server takes the chosen gRPC port meanwhile
# Milvus settings the product's server starts with (Milvus reads SECTION_KEY environment variables over its
# milvus.yaml); the same variable in the environment wins. Milvus seals a segment once it holds
# sealProportion of maxSize (512 MB): 0.23 by default, ~60k 512-d rows, so a million items were
# searched as 15 HNSW graphs, each rebuilt again as compaction merged them. At 0.9 (~230k rows) a
# 200k-item corpus was 2 segments instead of 5: its searches 19.1 ms p50 instead of 22.6, top-10
# recall 1.000 instead of 0.963, its fill 3,300 items/s instead of 2,760 (same machine, one run
# after the other); the last segment's index is built later, in one go (130 s instead of 88 s).
# A growing segment is written out each time its buffer fills (16 MB by default): a 230k-row segment
# left ~24 stats files, past the count at which the server rewrites a segment and indexes it again
# (at 1M: each sealed segment twice, searches slowed by the rebuilds). 64 MB writes it in ~7.
# The query coordinator serves new sealed segments and new indexes when it next updates its target, every 10 s
# by default: an imported segment (`VectorCollection.load`) was readable 14.5 s after its import ended, 2.5 s
# at 1 s, for 0.036 instead of 0.033 of a core while idle (same machine, one collection loaded).
SERVER_SETTINGS = {"DATACOORD_SEGMENT_SEALPROPORTION": "0.9", "DATANODE_SEGMENT_INSERTBUFSIZE": str(64 * 2 ** 20),
                   "QUERYCOORD_UPDATENEXTTARGETINTERVAL": "1"}


# The last state file read per data folder: (its mtime in ns, "pid:started_at").
_incarnations: dict[Path, tuple[int, str]] = {}


class LocalServerError(RuntimeError):
    """The local server could not be started or stopped; the message says why and where to look."""


class _PortTaken(LocalServerError):
    """The server came up but another process answers on its gRPC port."""

    def __init__(self, port: int):
        super().__init__(f"the local Milvus server's port {port} is taken by another process")
        self.port = port


@dataclass(frozen=True)
class ServerState:
    pid: int
    port: int
    metrics_port: int
    version: str
    started_at: float

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class LocalServer:
    """The Milvus standalone server for ``data_dir``; ``port`` pins its gRPC port (else a free one)."""

    def __init__(self, data_dir: str | Path, *, port: int | None = None):
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.port = port

    # --- reading -------------------------------------------------------------------------------------
    def state(self) -> ServerState | None:
        """The recorded server, if its process is alive and is ours (a stale file after a reboot is not)."""
        try:
            recorded = ServerState(**json.loads((self.data_dir / STATE_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        return recorded if self._is_ours(recorded.pid) else None

    def incarnation(self) -> str | None:
        """Which start of the server is recorded now ("pid:started_at"), None when none is: cheap enough
        to ask before every store call (one stat; the file is read again only when it changed)."""
        path = self.data_dir / STATE_FILE
        try:
            changed = path.stat().st_mtime_ns
        except OSError:
            return None
        cached = _incarnations.get(path)
        if cached is None or cached[0] != changed:
            try:
                recorded = json.loads(path.read_text())
                cached = (changed, f"{recorded['pid']}:{recorded['started_at']}")
            except (OSError, ValueError, KeyError, TypeError):
                return None
            _incarnations[path] = cached
        return cached[1]

    def running(self) -> ServerState | None:
        """The server's state when it is up and answering health checks."""
        state = self.state()
        return state if state is not None and _healthy(state.metrics_port) else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    # --- starting and stopping ---------------------------------------------------------------------
    def ensure_running(self, *, timeout_s: float = START_TIMEOUT_S, on_wait=None) -> ServerState:
        """The running server, started first if nobody has (waiting for one that another process starts)."""
        state = self.running()
        if state is not None:
            return state
        with self._locked():
            state = self.state()
            if state is None:
                return self._start(timeout_s=timeout_s, on_wait=on_wait)
            starting_for_s = max(timeout_s - (time.time() - state.started_at), 0.0)
            if not starting_for_s:  # up for long, now silent (overloaded, paused): waiting would hold every caller
                raise LocalServerError(f"the local Milvus server (pid {state.pid}) is running but not answering; "
                                       f"its log: {self.log_path}")
            # Started by another process a moment ago: wait for it to answer.
            return self._wait_healthy(state, timeout_s=starting_for_s, on_wait=on_wait)

    def stop(self, *, timeout_s: float = STOP_TIMEOUT_S) -> bool:
        """Stop the server (politely, then firmly); False when none was running."""
        with self._locked():
            state = self.state()
            (self.data_dir / STATE_FILE).unlink(missing_ok=True)
            if state is None:
                return False
            _signal_group(state.pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while self._is_ours(state.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if self._is_ours(state.pid):
                _signal_group(state.pid, signal.SIGKILL)
                while self._is_ours(state.pid):
                    time.sleep(0.1)
            return True

    def _start(self, *, timeout_s: float, on_wait) -> ServerState:
        try:
            import milvus
        except ImportError:
            raise LocalServerError("the local Milvus server needs the 'milvus' package (pip install -r "
                                   "requirements.txt)") from None
        self.data_dir.mkdir(parents=True, exist_ok=True)
        previous = self._ports_used() or _ports_fresh(milvus.MilvusServerConfig(data_dir=str(self.data_dir)))
        if self.port is not None:
            if not _port_free(self.port):
                raise LocalServerError(f"port {self.port} (MILVUS_LOCAL_PORT) is taken by another program: "
                                       f"free it or choose another port")
            previous["proxy_port"] = self.port
        for _ in range(PORT_ATTEMPTS):
            try:
                return self._launch(milvus, previous, timeout_s=timeout_s, on_wait=on_wait)
            except _PortTaken as taken:
                if self.port is not None:
                    raise LocalServerError(f"port {self.port} (MILVUS_LOCAL_PORT) was taken by another program "
                                           f"while the server started: free it or choose another port") from None
                previous["proxy_port"] = taken.port + 1
        raise LocalServerError(f"the local Milvus server found its port taken {PORT_ATTEMPTS} times while starting "
                               f"(other servers starting at once?); try again")

    def _launch(self, milvus, previous: dict[str, int], *, timeout_s: float, on_wait) -> ServerState:
        """Start the server on ports searched upwards from ``previous`` and wait until it answers."""
        config = milvus.MilvusServerConfig(data_dir=str(self.data_dir))
        # Each port is searched upwards from the one used last time (or the fresh plan) for a free one.
        for key, port in previous.items():
            if key != "metrics_port":
                config.set(key, int(port))
        # The embedded etcd also listens on the port after its own (its peer port).
        config.set("etcd_port", _free_pair(int(previous["etcd_port"])))
        try:
            config.resolve()  # settles the ports and writes configs/milvus.yaml
            self._etcd_configure(int(config.get("etcd_port")))
            milvus._initialize_data_files(config.base_data_dir)  # unpacks the binary (once per folder)
        except (RuntimeError, OSError) as exc:
            raise LocalServerError(f"could not prepare the local Milvus server in {self.data_dir}: {exc}") from None
        metrics_port = _free_port(int(previous["metrics_port"]))
        ports = {key: int(config.get(key)) for key in config.configurable_items if key.endswith("_port")}
        (self.data_dir / PORTS_FILE).write_text(json.dumps({**ports, "metrics_port": metrics_port}))
        executable = self.data_dir / "bin" / "milvus"
        env = {
            **SERVER_SETTINGS,
            **os.environ,
            "DEPLOY_MODE": "STANDALONE",
            "METRICS_PORT": str(metrics_port),
            "MILVUS_RUN_DIR": str(self.data_dir / "run"),
            "LD_LIBRARY_PATH": f"{executable.parent}:{os.environ.get('LD_LIBRARY_PATH', '')}",
        }
        logger.info("starting the local Milvus server over %s (port %s; ready in about 10 s)", self.data_dir,
                    config.get("proxy_port"))
        started = time.monotonic()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            process = subprocess.Popen(
                [str(executable), "run", "standalone"], cwd=self.data_dir, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        state = ServerState(pid=process.pid, port=int(config.get("proxy_port")), metrics_port=metrics_port,
                            version=milvus.__version__, started_at=time.time())
        (self.data_dir / STATE_FILE).write_text(json.dumps(state.__dict__))
        try:
            state = self._wait_healthy(state, timeout_s=timeout_s, on_wait=on_wait, process=process)
            logger.info("local Milvus server answering after %.1f s (pid %s)", time.monotonic() - started, state.pid)
            return state
        except LocalServerError:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
            (self.data_dir / STATE_FILE).unlink(missing_ok=True)
            raise

    def _wait_healthy(self, state: ServerState, *, timeout_s: float, on_wait, process=None) -> ServerState:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            exited = process.poll() if process is not None else (None if self._is_ours(state.pid) else -1)
            if exited is not None:
                raise LocalServerError(f"the local Milvus server exited during start-up (code {exited}); "
                                       f"its log: {self.log_path}\n{self._log_tail()}")
            if _healthy(state.metrics_port) and _accepts(state.port):
                if not _listens(state.pid, state.port):
                    # Free when the ports were chosen, taken since by a server starting beside this one (its
                    # proxy binds last): this one would stay up without a port and its clients reach the other.
                    raise _PortTaken(state.port)
                return state
            if on_wait:
                on_wait()
            time.sleep(0.25)
        raise LocalServerError(f"the local Milvus server did not answer within {timeout_s:.0f} s; "
                               f"its log: {self.log_path}\n{self._log_tail()}")

    # --- helpers -----------------------------------------------------------------------------------
    @contextmanager
    def _locked(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.data_dir / LOCK_FILE, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _is_ours(self, pid: int) -> bool:
        """Alive, and running this folder's binary (pids are reused after a reboot)."""
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return False
        return state != "Z" and Path(command) == self.data_dir / "bin" / "milvus"

    def _etcd_configure(self, port: int) -> None:
        """Give the embedded etcd its own client and peer ports (``port``, ``port + 1``).

        Without a config file of its own it listens on etcd's defaults (2379 and 2380) whatever
        milvus.yaml says, so a second server on the machine would fail to start.
        """
        etcd_config = self.data_dir / "configs" / "etcd.yaml"
        etcd_config.write_text(
            f"name: local\ndata-dir: {self.data_dir / 'data' / 'etcd.data'}\n"
            f"listen-client-urls: http://127.0.0.1:{port}\nadvertise-client-urls: http://127.0.0.1:{port}\n"
            f"listen-peer-urls: http://127.0.0.1:{port + 1}\ninitial-advertise-peer-urls: http://127.0.0.1:{port + 1}\n"
            f"initial-cluster: local=http://127.0.0.1:{port + 1}\nlog-level: warn\n"
        )
        milvus_config = self.data_dir / "configs" / "milvus.yaml"
        text = milvus_config.read_text()
        etcd_section = "\netcd:\n"
        if etcd_section not in text:
            raise LocalServerError(f"unexpected Milvus configuration template: no etcd section in {milvus_config}")
        milvus_config.write_text(text.replace(etcd_section, f"{etcd_section}  config:\n    path: {etcd_config}\n", 1))

    def _ports_used(self) -> dict[str, int]:
        try:
            return {key: int(value) for key, value in json.loads((self.data_dir / PORTS_FILE).read_text()).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _healthy(metrics_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/healthz", timeout=2) as response:
            return b"OK" in response.read()
    except (OSError, ValueError):
        return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` listens on ``port`` (True when that cannot be read: not ours to judge)."""
    import psutil

    try:
        return any(connection.status == psutil.CONN_LISTEN and connection.laddr.port == port
                   for connection in psutil.Process(pid).net_connections("tcp"))
    except psutil.AccessDenied:
        return True
    except psutil.NoSuchProcess:
        return False


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _ports_fresh(config) -> dict[str, int]:
    """Ports for a folder's first start: the proxy on Milvus's default, its other parts in a block at a
    random place in the high range. Searching upwards from Milvus's defaults, two servers on one machine
    interleave their parts' ports, and one restarting after the other took its old ports mixes them up."""
    base = random.randrange(20_000, 60_000, PORT_BLOCK)
    inner = sorted(key for key in config.configurable_items
                   if key.endswith("_port") and key not in ("proxy_port", "etcd_port"))
    ports = {key: base + index for index, key in enumerate(inner)}
    return ports | {"proxy_port": DEFAULT_PROXY_PORT, "etcd_port": base + PORT_BLOCK - 4,
                    "metrics_port": base + PORT_BLOCK - 2}


def _free_pair(start: int) -> int:
    """The first port from ``start`` up that is free together with the next one."""
    port = start
    while not (_port_free(port) and _port_free(port + 1)):
        port += 2
    return port


def _free_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass
