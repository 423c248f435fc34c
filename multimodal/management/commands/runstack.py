import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from ... import store

READY_TIMEOUT_S = 90


def redis_command(binary: str, port: int, data_dir: Path) -> list[str]:
    """redis-server on loopback with an append-only file in ``data_dir``: queued tasks survive a restart."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", "",
            "--appendonly", "yes", "--appendfsync", "everysec"]


class Command(BaseCommand):
    help = (
        "Start the whole local stack for development: redis-server (its queue kept in an append-only "
        "file under MULTIMODAL_DATA_DIR/redis, so queued jobs survive a restart), the vector store (the local "
        "Milvus server of MILVUS_URI, started if it is down; a milvus-lite server when MILVUS_URI is "
        "a Milvus Lite folder), a Celery worker (with beat: stale jobs re-queued, uploads swept) and "
        "the web server, all on loopback, their output "
        "prefixed by name. Ctrl-C (or SIGTERM) stops them all (the local Milvus server only if this "
        "command started it)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
        parser.add_argument("--redis-port", type=int, default=6379, help="redis port (default 6379)")
        parser.add_argument("--concurrency", type=int, default=1, help="worker processes (default 1)")

    def handle(self, *args, port, redis_port, concurrency, **options):
        redis_binary = shutil.which("redis-server")
        if not redis_binary:
            raise CommandError("redis-server is not installed: apt-get install -y redis-server")
        self.stdout.write(f"[milvus] starting the vector store ({settings.MILVUS_URI}) ...")
        with store.engine_serving() as milvus_uri:
            status = store.engine_status()
            self.stdout.write(f"[milvus] {status.engine} answering at {status.address or milvus_uri}")
            self._run(port, redis_port, concurrency, redis_binary, milvus_uri)
        self.stdout.write("[milvus] done")

    def _run(self, port: int, redis_port: int, concurrency: int, redis_binary: str, milvus_uri: str) -> None:
        env = {
            **os.environ,
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "MILVUS_URI": milvus_uri,
            "PYTHONUNBUFFERED": "1",
        }
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        self.processes: list[tuple[str, subprocess.Popen]] = []
        stopping = threading.Event()
        # Set explicitly: a stack started in the background inherits SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        try:
            self._start("redis", redis_command(redis_binary, redis_port, Path(settings.DATA_DIR) / "redis"), env)
            self._wait_for_redis(redis_port)
            self._start("worker", [sys.executable, "-m", "celery", "-A", "searchsite", "worker", "--beat",
                                   "--loglevel=info", f"--concurrency={concurrency}"], env)
            self._start("web", [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"], env)
            self.stdout.write(f"stack up: http://127.0.0.1:{port}/  (Ctrl-C stops everything)")
            self.stdout.write(f"other commands on this stack: export CELERY_BROKER_URL={env['CELERY_BROKER_URL']} "
                              f"MILVUS_URI={env['MILVUS_URI']}")
            while not stopping.is_set():
                for name, process in self.processes:
                    if process.poll() is not None:
                        raise CommandError(f"{name} exited with code {process.returncode}; stopping the stack")
                stopping.wait(0.5)
        finally:
            self._stop_all()

    def _start(self, name: str, command: list[str], env: dict) -> None:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   start_new_session=True, cwd=settings.BASE_DIR)
        self.processes.append((name, process))
        threading.Thread(target=self._relay, args=(name, process), daemon=True).start()

    def _relay(self, name: str, process: subprocess.Popen) -> None:
        for line in iter(process.stdout.readline, b""):
            self.stdout.write(f"[{name:<6}] {line.decode(errors='replace').rstrip()}")

    def _wait_for_redis(self, redis_port: int) -> None:
        import redis

        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=redis_port).ping()
                return
            except redis.exceptions.ConnectionError:  # not up yet
                time.sleep(0.3)
        raise CommandError(f"redis did not come up within {READY_TIMEOUT_S} s")

    def _stop_all(self) -> None:
        """Stop in reverse order of start (web first, redis last), each politely, then firmly."""
        for name, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            self.stdout.write(f"[{name:<6}] stopped")
