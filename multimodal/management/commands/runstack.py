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

READY_TIMEOUT_S = 90


class Command(BaseCommand):
    help = (
        "Start the whole local stack for development: redis-server, a milvus-lite server (over the "
        "same data directory as the embedded default), a Celery worker and the web server, all on "
        "loopback, their output prefixed by name. Ctrl-C (or SIGTERM) stops them all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
        parser.add_argument("--redis-port", type=int, default=6379, help="redis port (default 6379)")
        parser.add_argument("--milvus-port", type=int, default=19530, help="milvus-lite server port (default 19530)")
        parser.add_argument("--concurrency", type=int, default=1, help="worker processes (default 1)")

    def handle(self, *args, port, redis_port, milvus_port, concurrency, **options):
        redis_binary = shutil.which("redis-server")
        if not redis_binary:
            raise CommandError("redis-server is not installed: apt-get install -y redis-server")
        bin_dir = Path(sys.executable).parent
        milvus_dir = Path(settings.MILVUS_URI) if "://" not in settings.MILVUS_URI else settings.DATA_DIR / "milvus.db"
        env = {
            **os.environ,
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
            "MILVUS_URI": f"http://127.0.0.1:{milvus_port}",
            "PYTHONUNBUFFERED": "1",
        }
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        self.processes: list[tuple[str, subprocess.Popen]] = []
        stopping = threading.Event()
        # Set explicitly: a stack started in the background inherits SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stopping.set())
        try:
            self._start("redis", [redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], env)
            self._start("milvus", [str(bin_dir / "milvus-lite"), "server", "--data-dir", str(milvus_dir),
                                   "--host", "127.0.0.1", "--port", str(milvus_port)], env)
            self._wait_for_services(redis_port, env["MILVUS_URI"])
            self._start("worker", [sys.executable, "-m", "celery", "-A", "searchsite", "worker", "--loglevel=info",
                                   f"--concurrency={concurrency}"], env)
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

    def _wait_for_services(self, redis_port: int, milvus_uri: str) -> None:
        import redis
        from pymilvus import MilvusClient

        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=redis_port).ping()
                MilvusClient(uri=milvus_uri).list_collections()
                return
            except Exception:  # not up yet
                time.sleep(0.3)
        raise CommandError(f"redis or milvus did not come up within {READY_TIMEOUT_S} s")

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
