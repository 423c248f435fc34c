"""Real Redis, PostgreSQL and Celery worker processes on loopback, for end-to-end tests."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, *, timeout_s: float, what: str, interval_s: float = 0.2):
    """Call ``check`` until it returns a truthy value; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # the service is not up yet
            last_error = exc
        time.sleep(interval_s)
    raise TimeoutError(f"{what} did not happen within {timeout_s} s (last error: {last_error})")


def ingest_peaks_rss_mb(folders: list[Path], data_dir: Path) -> list[int]:
    """The peak RSS (MB) of one process after each of its `manage.py ingest FOLDER` commands, run in turn on
    ``folders`` as a person would, on its own data folder (Milvus Lite), with the tiny random CLIP model and OCR
    off (memory tests measure decoding, not Tesseract): what each folder adds to the peak of the ones before,
    at the cost of one start (~10 s), not one per folder."""
    run_env = {key: value for key, value in os.environ.items() if key not in ("DJANGO_TEST_DB", "MILVUS_URI")}
    run_env |= {"MULTIMODAL_DATA_DIR": str(data_dir), "MILVUS_URI": str(data_dir / "lite.db"),
                "MULTIMODAL_CLIP_MODEL": "tiny-random", "CELERY_BROKER_URL": "", "MULTIMODAL_OCR": "0",
                "DJANGO_SETTINGS_MODULE": "searchsite.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=run_env, check=True, timeout=300)
    script = ("import io, resource, sys, django; django.setup(); from django.core.management import call_command\n"
              "for folder in sys.argv[1:]:\n"
              "    call_command('ingest', folder, '--corpus', 'photos', stdout=io.StringIO())\n"
              "    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, flush=True)")
    result = subprocess.run([sys.executable, "-c", script, *map(str, folders)], cwd=ROOT, env=run_env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    return [int(line) for line in result.stdout.split()[-len(folders):]]


class CommandSession:
    """One process of the site (``manage.py``'s settings, ``env``) running management commands in turn.

    ``run("search", "chair", "--json")`` is ``manage.py search chair --json``: the same argument parsing
    (``call_command`` with strings), the system checks, the output. After each command the process lets go of
    what an exiting command lets go of: its vector store clients, Milvus Lite's lock (Lite admits one process
    at a time) and its database connections. It keeps what a long-running site process keeps, its imports
    and its loaded encoder: ~10 s per command, which a test running many commands pays once.
    """

    _LOOP = (
        "import contextlib, io, json, os, sys, traceback\n"
        "protocol = os.fdopen(os.dup(1), 'w')\n"
        "os.dup2(2, 1)  # a library's own prints go to the log, never into a reply\n"
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "from django.db import connections\n"
        "from multimodal import store\n"
        "for line in sys.stdin:\n"
        "    out, err, ok = io.StringIO(), io.StringIO(), True\n"
        "    try:\n"
        "        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):\n"
        "            call_command(*json.loads(line), stdout=out, stderr=err, skip_checks=False)\n"
        "    except BaseException:\n"
        "        ok = False\n"
        "        err.write(traceback.format_exc())\n"
        "    finally:\n"
        "        store.close_all()\n"
        "        lite = sys.modules.get('milvus_lite.server_manager')\n"
        "        if lite:  # Milvus Lite's lock, which it lets go of at exit\n"
        "            lite.server_manager_instance.release_all()\n"
        "        connections.close_all()\n"
        "    protocol.write(json.dumps({'ok': ok, 'stdout': out.getvalue(), 'stderr': err.getvalue()}) + '\\n')\n"
        "    protocol.flush()\n"
    )

    def __init__(self, env: dict[str, str], log_path: Path):
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-c", self._LOOP], cwd=ROOT,
                                        env={**env, "DJANGO_SETTINGS_MODULE": "searchsite.settings"},
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                        start_new_session=True)
        self.log_path = log_path

    def run(self, *args: str) -> str:
        """The command's standard output; a failed command fails the test with its error."""
        self.process.stdin.write(json.dumps(args) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the command process died:\n{self.log_path.read_text(errors='replace')[-3000:]}"
        reply = json.loads(line)
        assert reply["ok"], reply["stdout"] + reply["stderr"]
        return reply["stdout"]

    def close(self) -> None:
        _stop(self.process)
        self.log.close()


def _stop(process: subprocess.Popen, sig=signal.SIGTERM, timeout_s: float = 20) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def redis_binary() -> str:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (apt-get install -y redis-server; .ci/run does this)"
    return binary


class RedisServer:
    """A throw-away redis-server on a free loopback port, which a test may stop and start again.

    ``command`` (binary, port) -> argv; by default no persistence: a restart empties it.
    """

    def __init__(self, command=None):
        self.port = free_port()
        self.command = command or (lambda binary, port: [binary, "--port", str(port), "--bind", "127.0.0.1",
                                                         "--save", "", "--appendonly", "no"])
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis(port=self.port)

    def start(self) -> "RedisServer":
        self.process = subprocess.Popen(self.command(redis_binary(), self.port), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: self.client().ping(), timeout_s=20, what="redis-server answering PING")
        return self

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def redis_server():
    """A throw-away redis-server on a free loopback port; yields its URL."""
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.stop()


class CeleryWorker:
    """A real ``celery worker`` process (prefork, one child) with the given environment.

    Its main process imports the encoder's libraries (torch, open_clip: ~8 s of CPU) before it forks the child,
    so a child that replaces a killed one takes over at once instead of importing them again.
    """

    def __init__(self, env: dict[str, str], log_path: Path, extra_args: tuple[str, ...] = ()):
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.extra_args = extra_args  # e.g. --beat
        self.process: subprocess.Popen | None = None

    def start(self) -> "CeleryWorker":
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "searchsite", "worker", "--pool=prefork", "--concurrency=1",
             "--loglevel=info", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--include=multimodal.encoders.open_clip_backend", *self.extra_args],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        return self

    def kill(self) -> None:
        """SIGKILL the worker and its children at once: no clean shutdown, no acknowledgements."""
        _stop(self.process, signal.SIGKILL)
        self.log.close()

    def stop(self) -> None:
        _stop(self.process, signal.SIGTERM)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def _postgres_binary(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)), None)
    assert found, f"{name} is not installed (apt-get install -y postgresql; .ci/run does this)"
    return str(found)


@contextmanager
def postgres_server():
    """A throw-away PostgreSQL cluster on a free loopback port; yields its DATABASE_URL.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user the
    Debian package creates (in a folder of its own under the system's temp folder, which that user
    can reach; pytest's are private to root).
    """
    folder, as_owner = Path(tempfile.mkdtemp(prefix="searchsite-pg-")), []
    if os.geteuid() == 0:
        import pwd

        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    port, data = free_port(), folder / "data"
    subprocess.run([*as_owner, _postgres_binary("initdb"), "-D", str(data), "-A", "trust", "-U", "searchsite",
                    "-E", "UTF8", "--locale=C.UTF-8"], check=True, capture_output=True)
    ctl = [*as_owner, _postgres_binary("pg_ctl"), "-D", str(data), "-l", str(folder / "server.log")]
    subprocess.run([*ctl, "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off", "-w",
                    "start"], check=True, capture_output=True)
    try:
        subprocess.run([*as_owner, _postgres_binary("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U",
                        "searchsite", "searchsite"], check=True, capture_output=True)
        yield f"postgres://searchsite@127.0.0.1:{port}/searchsite"
    finally:
        subprocess.run([*ctl, "-m", "fast", "-w", "stop"], check=False, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
